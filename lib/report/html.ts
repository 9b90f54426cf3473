/**
 * The self-contained HTML report (`irqsim report <results.json> --html out.html`, docs/contract.md):
 * per scenario and variant the verdict, expectation, schedules and key metrics; per finding its
 * kind, headline, kernel-style splat, replay command, an SVG timeline of the stretch that led to
 * it (when the finding carries one) and an SVG picture of the machine at the failing step. No network: inline CSS, a few lines of inline JS, no external fonts or scripts.
 * Every string from the JSON is escaped. Deterministic: the same results give the same page.
 */
import type { RunJson } from './json';
import type { ContextState } from '../kernel/show-state';
import type { FindingJson } from './json';
import type { RunOptionsJson } from './run-options';
import type { TimelineInstant, TimelineJson, TimelineSlice } from './timeline';

/** One scenario's hunt, as `irqsim hunt <scenario> --json` prints it. */
export interface ScenarioResults {
  scenario: { id: string; name: string; file?: string; hash?: string };
  options?: Record<string, unknown>;
  runs: RunJson[];
}

/** What `irqsim hunt <scenario> --json` or `irqsim hunt all --json` prints. */
export type HuntResults = ScenarioResults | { scenarios: ScenarioResults[] };

export interface HtmlOptions {
  /** Page title (default "irqsim report"). */
  title?: string;
  /** Per scenario id, the metrics its claim is about (ScenarioDef.keyMetrics); shown first. */
  keyMetrics?: Record<string, string[]>;
}

/** The metrics every run has, shown after a scenario's own key metrics. */
const BASE_METRICS = ['schedules', 'steps', 'preemptions', 'interrupts', 'maxVirtualTimeNs'];

/** Escape text for HTML and SVG content and attribute values. */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** The scenarios of either JSON shape. */
export function scenariosOf(results: HuntResults): ScenarioResults[] {
  if (results && typeof results === 'object' && Array.isArray((results as { scenarios?: unknown }).scenarios)) return (results as { scenarios: ScenarioResults[] }).scenarios;
  if (results && typeof results === 'object' && Array.isArray((results as ScenarioResults).runs)) return [results as ScenarioResults];
  throw new Error('not irqsim hunt --json output: expected {scenario, options, runs} or {scenarios: [...]}');
}

function formatMetric(v: number | undefined): string {
  if (v === undefined) return '-';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/** Hunt coverage as `key=value` pairs; nested objects flatten to dotted keys, lists show a few items. */
function coverageText(c: Record<string, unknown>, prefix = ''): string {
  return Object.entries(c)
    .map(([k, v]) => {
      const key = `${prefix}${k}`;
      if (v === null || v === undefined) return `${key}=-`;
      if (typeof v === 'number') return `${key}=${formatMetric(v)}`;
      if (Array.isArray(v)) return `${key}=[${v.slice(0, 3).map(String).join(', ')}${v.length > 3 ? `, … ${v.length - 3} more` : ''}]`;
      if (typeof v === 'object') return coverageText(v as Record<string, unknown>, `${key}.`);
      return `${key}=${String(v)}`;
    })
    .join(' ');
}

function expectText(e: RunJson['expect'] | undefined): string {
  if (!e) return 'none declared';
  const parts: string[] = [];
  if (e.findings?.length) parts.push(`findings: ${e.findings.join(', ')}`);
  if (e.absent?.length) parts.push(`absent: ${e.absent.join(', ')}`);
  if (e.clean) parts.push('clean');
  if (e.metrics?.length) parts.push(`metrics: ${e.metrics.join(', ')}`);
  return parts.length ? parts.join('; ') : 'none declared';
}

/** Stable, safe id fragment for anchors. */
function slug(...parts: (string | number)[]): string {
  return parts.map((p) => String(p).replace(/[^A-Za-z0-9_-]+/g, '_')).join('-');
}

function findingTitle(f: FindingJson): string {
  return f.subkind ? `${f.kind} / ${f.subkind}` : f.kind;
}

const CSS = `
:root{--fg:#1d2330;--muted:#5b6475;--bg:#fff;--panel:#f5f7fa;--line:#d5dae3;--ok:#18794e;--bad:#c0362c;--warn:#b35c00;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
*{box-sizing:border-box}
body{margin:0;padding:1.5rem 2rem 4rem;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:1.6rem;margin:0 0 .8rem}h2{font-size:1.3rem;margin:2.2rem 0 .4rem;padding-top:.6rem;border-top:2px solid var(--line)}
h3{font-size:1.1rem;margin:1.4rem 0 .4rem}h4{font-size:1rem;margin:0 0 .4rem}
code,pre,.mono{font-family:var(--mono);font-size:12.5px}
pre{background:var(--panel);border:1px solid var(--line);border-radius:4px;padding:.6rem .8rem;overflow-x:auto;white-space:pre;margin:.3rem 0 .6rem}
table{border-collapse:collapse;margin:.4rem 0 .8rem}th,td{border:1px solid var(--line);padding:.2rem .6rem;text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:0 .5rem;border-radius:3px;font-weight:600;font-size:12px;color:#fff}
.verdict.as-expected{background:var(--ok)}.verdict.unexpected{background:var(--bad)}
.clean{color:var(--ok);font-weight:600}.muted{color:var(--muted)}
.finding{border:1px solid var(--line);border-left:4px solid var(--warn);border-radius:4px;padding:.8rem 1rem;margin:.8rem 0 1.2rem}
.finding .kind{display:inline-block;background:var(--warn);color:#fff;border-radius:3px;padding:0 .45rem;margin-right:.4rem;font-size:12px}
.confirmed{color:var(--ok);font-weight:600}.notconfirmed{color:var(--warn);font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.3rem 0 .6rem}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;word-break:break-all}
.cmd{display:flex;gap:.4rem;align-items:flex-start}.cmd pre{flex:1;margin:0}
button.copy{font:12px system-ui,sans-serif;padding:.25rem .6rem;cursor:pointer}
.timeline{overflow-x:auto;margin:.4rem 0 .6rem}.timeline svg{display:block}
svg.tl .slice:hover,svg.tl .mark:hover{stroke:#1d2330;stroke-width:1.5}
details>summary{cursor:pointer;color:var(--muted)}
nav ul{margin:.2rem 0;padding-left:1.2rem}
`;

const JS = `
(function(){
  var buttons=document.querySelectorAll('button.copy');
  for(var i=0;i<buttons.length;i++){
    buttons[i].addEventListener('click',function(ev){
      var b=ev.currentTarget;var t=document.getElementById(b.getAttribute('data-for'));
      if(!t)return;var text=t.textContent||'';
      var show=function(s){b.textContent=s;setTimeout(function(){b.textContent='copy';},1500);};
      var select=function(){
        var r=document.createRange();r.selectNodeContents(t);var sel=window.getSelection();sel.removeAllRanges();sel.addRange(r);
        var ok=false;try{ok=document.execCommand('copy');}catch(e){}
        show(ok?'copied':'selected: press Ctrl+C');
      };
      if(navigator.clipboard&&navigator.clipboard.writeText){navigator.clipboard.writeText(text).then(function(){show('copied');},select);}else{select();}
    });
  }
})();
`;

/** Render hunt results (either JSON shape) as one self-contained HTML page. */
export function renderHtml(results: HuntResults, o: HtmlOptions = {}): string {
  const scenarios = scenariosOf(results);
  const title = o.title ?? 'irqsim report';
  const out: string[] = [];
  out.push('<!DOCTYPE html>');
  out.push('<html lang="en">');
  out.push('<head>');
  out.push('<meta charset="utf-8">');
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push(`<title>${escapeHtml(title)}</title>`);
  out.push(`<style>${CSS}</style>`);
  out.push('</head>');
  out.push('<body>');
  out.push(`<h1>${escapeHtml(title)}</h1>`);
  out.push(renderSummary(scenarios));
  for (const [si, s] of scenarios.entries()) out.push(renderScenario(s, si, o.keyMetrics?.[s.scenario.id] ?? []));
  out.push(`<script>${JS}</script>`);
  out.push('</body>');
  out.push('</html>');
  return `${out.join('\n')}\n`;
}

function renderSummary(scenarios: ScenarioResults[]): string {
  const rows: string[] = [];
  let total = 0;
  let unexpected = 0;
  let findings = 0;
  for (const [si, s] of scenarios.entries()) {
    for (const [ri, r] of s.runs.entries()) {
      total++;
      if (r.verdict !== 'as-expected') unexpected++;
      findings += r.findings.length;
      const kinds = r.findings.length ? r.findings.map((f, fi) => `<a href="#${slug('f', si, ri, fi)}">${escapeHtml(findingTitle(f))}</a>`).join(', ') : '<span class="clean">clean</span>';
      rows.push(
        `<tr><td><a href="#${slug('s', si)}">${escapeHtml(s.scenario.id)}</a></td><td><a href="#${slug('r', si, ri)}">${escapeHtml(r.variant)}</a></td>` +
          `<td>${verdictBadge(r.verdict)}</td><td>${escapeHtml(expectText(r.expect))}</td><td class="num">${escapeHtml(r.schedulesRun)}</td><td>${kinds}</td></tr>`,
      );
    }
  }
  const head = `<p class="summary">${scenarios.length} scenario(s), ${total} variant run(s), ${findings} finding(s); ` +
    (unexpected ? `<span class="verdict unexpected">${unexpected} unexpected</span>` : '<span class="verdict as-expected">all as expected</span>') + '</p>';
  return `${head}\n<table class="overview">\n<thead><tr><th>scenario</th><th>variant</th><th>verdict</th><th>expectation</th><th>schedules</th><th>findings</th></tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

function verdictBadge(v: string): string {
  const cls = v === 'as-expected' ? 'as-expected' : 'unexpected';
  return `<span class="verdict ${cls}">${escapeHtml(v)}</span>`;
}

function renderScenario(s: ScenarioResults, si: number, keyMetrics: string[]): string {
  const out: string[] = [];
  out.push(`<section class="scenario" id="${slug('s', si)}">`);
  out.push(`<h2>${escapeHtml(s.scenario.id)}: ${escapeHtml(s.scenario.name)}</h2>`);
  const facts: [string, string][] = [];
  if (s.scenario.file) facts.push(['file', s.scenario.file]);
  if (s.scenario.hash) facts.push(['hash', s.scenario.hash]);
  if (s.options) {
    const { params, ...rest } = s.options as Record<string, unknown> & { params?: Record<string, unknown> };
    // With per-variant records (runs[].options) this is only what the command line asked.
    facts.push([s.runs.some((r) => r.options) ? 'asked' : 'options', Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')]);
    if (params && typeof params === 'object') facts.push(['params', Object.entries(params).map(([k, v]) => `${k}=${String(v)}`).join(' ')]);
  }
  out.push(`<dl class="facts">${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd class="mono">${escapeHtml(v)}</dd>`).join('')}</dl>`);
  out.push(renderMetricsTable(s.runs, keyMetrics));
  for (const [ri, r] of s.runs.entries()) out.push(renderRun(s, r, si, ri));
  out.push('</section>');
  return out.join('\n');
}

/** Key metrics, one column per variant: the scenario's own, those the variants expect, then the base ones. */
function renderMetricsTable(runs: RunJson[], keyMetrics: string[]): string {
  if (!runs.length) return '';
  const names: string[] = [];
  const add = (n: string) => {
    if (!names.includes(n) && runs.some((r) => r.metrics && r.metrics[n] !== undefined)) names.push(n);
  };
  keyMetrics.forEach(add);
  for (const r of runs) (r.expect?.metrics ?? []).forEach(add);
  BASE_METRICS.forEach(add);
  if (!names.length) return '';
  const head = `<tr><th>metric</th>${runs.map((r) => `<th>${escapeHtml(r.variant)}</th>`).join('')}</tr>`;
  const body = names.map((n) => `<tr><td class="mono">${escapeHtml(n)}</td>${runs.map((r) => `<td class="num">${escapeHtml(formatMetric(r.metrics?.[n]))}</td>`).join('')}</tr>`);
  return `<table class="metrics">\n<thead>${head}</thead>\n<tbody>\n${body.join('\n')}\n</tbody>\n</table>`;
}

function renderRun(s: ScenarioResults, r: RunJson, si: number, ri: number): string {
  const out: string[] = [];
  out.push(`<section class="run" id="${slug('r', si, ri)}">`);
  out.push(`<h3>${escapeHtml(s.scenario.id)} / ${escapeHtml(r.variant)} ${verdictBadge(r.verdict)}</h3>`);
  const facts: [string, string][] = [
    ['expectation', expectText(r.expect)],
    ['schedules run', String(r.schedulesRun)],
  ];
  if (r.options && typeof r.options === 'object') facts.push(['ran with', optionsText(r.options as unknown as Record<string, unknown>)]);
  if (r.why) facts.push(['why', r.why]);
  if (r.coverage && typeof r.coverage === 'object' && Object.keys(r.coverage).length) facts.push(['coverage', coverageText(r.coverage)]);
  out.push(`<dl class="facts">${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`);
  const metrics = Object.entries(r.metrics ?? {});
  if (metrics.length) {
    out.push(`<details class="allmetrics"><summary>all ${metrics.length} metrics</summary>`);
    out.push(`<table><tbody>${metrics.map(([k, v]) => `<tr><td class="mono">${escapeHtml(k)}</td><td class="num">${escapeHtml(formatMetric(v))}</td></tr>`).join('')}</tbody></table>`);
    out.push('</details>');
  }
  if (!r.findings.length) out.push(`<p class="clean">clean: no finding in ${escapeHtml(r.schedulesRun)} schedule(s)</p>`);
  for (const [fi, f] of r.findings.entries()) out.push(renderFinding(f, slug('f', si, ri, fi)));
  out.push('</section>');
  return out.join('\n');
}

/** `key=value` pairs of an options record (objects as JSON). */
function optionsText(o: Record<string, unknown>): string {
  return Object.entries(o).map(([k, v]) => `${k}=${v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ');
}

function renderFinding(f: FindingJson, id: string): string {
  const out: string[] = [];
  out.push(`<article class="finding" id="${id}">`);
  out.push(`<h4><span class="kind">${escapeHtml(findingTitle(f))}</span>${escapeHtml(f.headline)}</h4>`);
  if (f.confirmed !== undefined) {
    const ok = /^confirmed\b/.test(f.confirmed);
    out.push(`<p class="${ok ? 'confirmed' : 'notconfirmed'}">lockdep prediction ${escapeHtml(f.confirmed)}</p>`);
  }
  // The report text first, as the kernel prints it; the pictures explain it after.
  out.push(`<pre class="splat">${escapeHtml(f.text)}</pre>`);
  // Time, machine state and timeline from one run: the traced replay of the (shrunk) schedule
  // when the timeline carries it, else the hunt's own finding.
  const run = f.timeline?.run;
  const shown = run && Array.isArray(run.cpuStates) && run.cpuStates.length ? { ...f, cpuStates: run.cpuStates } : f;
  const time = run && finite(run.time) ? `${run.time} ns${run.time !== f.time ? ` (in the replay drawn below; the hunt's schedule met it at ${f.time} ns)` : ''}` : `${f.time} ns`;
  const facts: [string, string][] = [
    ['fingerprint', f.fingerprint],
    ['iteration', String(f.iteration)],
    ['virtual time', time],
    ['cpus', f.cpus?.length ? f.cpus.map((c) => `CPU${c}`).join(', ') : '-'],
    ['occurrences', `${f.count} (${f.logged} logged)`],
  ];
  out.push(`<dl class="facts">${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd class="mono">${escapeHtml(v)}</dd>`).join('')}</dl>`);
  if (f.replay) {
    out.push('<div class="label">replay</div>');
    out.push(`<div class="cmd"><pre class="replay" id="${id}-replay">${escapeHtml(f.replay)}</pre><button class="copy" type="button" data-for="${id}-replay">copy</button></div>`);
  }
  out.push(`<dl class="facts"><dt>schedule</dt><dd class="mono">${escapeHtml(f.schedule || '-')}</dd>${f.shrunk ? `<dt>shrunk</dt><dd class="mono">${escapeHtml(f.shrunk)}</dd>` : ''}</dl>`);
  // Both pictures when there is a timeline: it shows how the CPUs got there (IRQ arrivals, IRQs-off
  // stretches, lock hold and spin times); the state diagram shows what it does not: each CPU's
  // held locks, wait-for edges and call stack at the failing step.
  const replayed = run ? ` of ${run.schedule}` : '';
  if (f.timeline) out.push(`<div class="label">timeline (traced replay${escapeHtml(replayed)})</div><div class="timeline">${renderTimelineSvg(f, `${id}-tl`)}</div>`);
  out.push(`<details class="state" open><summary>machine state at the failing step${run ? ' (same replay)' : ''}</summary><div class="timeline">${renderFindingSvg(shown, `${id}-svg`)}</div></details>`);
  out.push('</article>');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The SVG: the machine at the failing step, one lane per CPU. It reads only `cpuStates`, so an
// event-based timeline can replace this function without touching the page around it.

const CH = 7.2; // width of a 12px monospace character
const LINE = 16;
const W = 980;
const LABEL_W = 64;
const COLOURS: Record<string, string> = { task: '#3b6fb6', softirq: '#8a4fb8', hardirq: '#c0362c', nmi: '#6b1f1a' };

function clip(s: string, maxChars: number): string {
  return s.length <= maxChars ? s : `${s.slice(0, Math.max(0, maxChars - 1))}…`;
}

function contextKind(context: string): string {
  const k = context.split(/\s+/)[0];
  return k in COLOURS ? k : 'task';
}

/** The running context of each CPU (machineStates lists them first, CPU0 upwards), then the rest. */
export function splitStates(states: readonly ContextState[]): { running: ContextState[]; others: ContextState[] } {
  let n = 0;
  while (n < states.length && states[n].cpu === n) n++;
  return { running: states.slice(0, n), others: states.slice(n) };
}

function text(x: number, y: number, s: string, attrs = '', maxChars = Math.floor((W - x - 40) / CH)): string {
  const shown = clip(s, maxChars);
  const title = shown !== s ? `<title>${escapeHtml(s)}</title>` : '';
  return `<text x="${x}" y="${y}"${attrs ? ` ${attrs}` : ''}>${title}${escapeHtml(shown)}</text>`;
}

/**
 * An SVG state diagram of a finding at its failing step: a lane per CPU with its task, context
 * (task / softirq / hardirq), IRQs on or off, preempt_count, the locks held and what it waits
 * for, arrows from a waiting CPU to the CPU it waits on, then the tasks that are not running.
 */
export function renderFindingSvg(f: Pick<FindingJson, 'cpuStates' | 'cpus' | 'kind' | 'headline'>, id = 'state'): string {
  const marker = `${id}-arrow`;
  const { running, others } = splitStates(f.cpuStates ?? []);
  const involved = new Set(f.cpus ?? []);
  const parts: string[] = [];
  const laneY: number[] = [];
  let y = 8;
  const monoAttrs = 'font-family="ui-monospace,Menlo,Consolas,monospace" font-size="12"';
  if (!running.length) parts.push(text(8, y + 12, 'no CPU state recorded for this finding', 'fill="#5b6475"'));
  for (const s of running) {
    const lines: { text: string; fill: string }[] = [];
    for (const h of s.held) lines.push({ text: `holds ${h}`, fill: '#1d2330' });
    if (s.waitingFor) lines.push({ text: s.waitingFor, fill: '#c0362c' });
    if (s.stack.length) lines.push({ text: `at ${s.stack.join(' <- ')}`, fill: '#5b6475' });
    const h = 26 + lines.length * LINE + 6;
    laneY.push(y + 13);
    const hot = involved.has(s.cpu);
    parts.push(`<g class="lane" data-cpu="${s.cpu}">`);
    parts.push(`<rect x="0" y="${y}" width="${W}" height="${h}" rx="4" fill="${hot ? '#fff6ec' : '#f5f7fa'}" stroke="${hot ? '#b35c00' : '#d5dae3'}"/>`);
    parts.push(text(8, y + 18, `CPU${s.cpu}`, 'font-weight="bold"', 8));
    const kind = contextKind(s.context);
    const ctxLabel = `${s.task}/${s.pid} · ${s.context}`;
    const ctxW = Math.min(360, Math.ceil(ctxLabel.length * CH) + 14);
    parts.push(`<rect x="${LABEL_W}" y="${y + 5}" width="${ctxW}" height="18" rx="3" fill="${COLOURS[kind]}"/>`);
    parts.push(text(LABEL_W + 7, y + 18, ctxLabel, 'fill="#fff"', Math.floor((ctxW - 14) / CH)));
    let x = LABEL_W + ctxW + 8;
    const irqLabel = s.irqsDisabled ? 'IRQs off' : 'IRQs on';
    parts.push(`<rect x="${x}" y="${y + 5}" width="72" height="18" rx="3" fill="${s.irqsDisabled ? '#c0362c' : '#18794e'}"/>`);
    parts.push(text(x + 7, y + 18, irqLabel, 'fill="#fff"', 9));
    x += 80;
    parts.push(text(x, y + 18, `preempt_count ${s.preemptCount}`, 'fill="#5b6475"'));
    let ly = y + 26 + LINE - 4;
    for (const l of lines) {
      parts.push(text(LABEL_W, ly, l.text, `fill="${l.fill}"`));
      ly += LINE;
    }
    parts.push('</g>');
    y += h + 6;
  }
  // Wait-for arrows, drawn in the right margin: from a waiting CPU to each CPU its wait names.
  const arrows: string[] = [];
  for (const [i, s] of running.entries()) {
    if (!s.waitingFor) continue;
    const targets = [...new Set([...s.waitingFor.matchAll(/CPU(\d+)/g)].map((m) => Number(m[1])))];
    for (const t of targets) {
      if (t >= laneY.length) continue;
      const y1 = laneY[i];
      const y2 = laneY[t];
      const x0 = W - 14;
      if (t === i) {
        arrows.push(`<path d="M ${x0} ${y1 - 4} c 12 -10 12 18 0 8" fill="none" stroke="#c0362c" stroke-width="1.5" marker-end="url(#${marker})"/>`);
      } else {
        const bend = W - 14 - 18 - Math.abs(t - i) * 6;
        arrows.push(`<path d="M ${x0} ${y1} C ${bend} ${y1}, ${bend} ${y2}, ${x0} ${y2}" fill="none" stroke="#c0362c" stroke-width="1.5" marker-end="url(#${marker})"/>`);
      }
    }
  }
  if (others.length) {
    y += 4;
    parts.push(text(8, y + 12, 'not running:', 'font-weight="bold" fill="#5b6475"'));
    y += LINE + 2;
    const shown = others.slice(0, 16);
    for (const s of shown) {
      const what = [s.waitingFor ?? 'runnable', ...s.held.map((h) => `holds ${h}`)].join('; ');
      parts.push(text(16, y + 12, `CPU${s.cpu} ${s.task}/${s.pid} (${s.context}): ${what}`, `fill="${s.held.length ? '#1d2330' : '#5b6475'}"`));
      y += LINE;
    }
    if (others.length > shown.length) {
      parts.push(text(16, y + 12, `… and ${others.length - shown.length} more`, 'fill="#5b6475"'));
      y += LINE;
    }
  }
  const height = Math.max(y + 8, 30);
  const label = `machine state at the failing step: ${f.kind}: ${f.headline}`;
  return (
    `<svg class="state" width="${W + 16}" height="${height}" viewBox="0 0 ${W + 16} ${height}" role="img" aria-label="${escapeHtml(label)}" ${monoAttrs}>` +
    `<defs><marker id="${marker}" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 8 4 L 0 8 z" fill="#c0362c"/></marker></defs>` +
    parts.join('') +
    arrows.join('') +
    '</svg>'
  );
}

// ---------------------------------------------------------------------------------------------
// The timeline: what each CPU did in the window before the finding (FindingJson.timeline), as a
// group of rows per CPU under one time axis. Rows: instants (wakeups, IPIs, allocations), the
// running context (hardirq and softirq drawn inset over the task they interrupted), IRQs off,
// locks held or spun on, sleeping tasks. The finding is a dashed line across every row.

const TL_X0 = LABEL_W + 8; // left edge of the plot
const TL_X1 = W - 24; // right edge: room for the finding marker's flag
const TL_AXIS_H = 26;
const TL_MARKS_H = 10;
const TL_CTX_H = 20;
const TL_IRQ_H = 8;
const TL_BAR_H = 14;
const TL_GAP = 8;
const TL_CH = 6; // width of a 10px monospace character
/** Lanes that pack overlapping spans into sub-rows draw at most this many. */
const TL_MAX_SUBROWS = 6;

const TL_COLOURS: Record<TimelineSlice['kind'], string> = {
  task: '#3b6fb6',
  softirq: '#8a4fb8',
  hardirq: '#c0362c',
  idle: '#d5dae3',
  irqs_off: '#e06c5f',
  lock_hold: '#1f7a7a',
  lock_spin: '#e0a000',
  sleep: '#9aa5b8',
};
const TL_KIND_LABEL: Record<TimelineSlice['kind'], string> = {
  task: 'task',
  softirq: 'softirq',
  hardirq: 'hardirq',
  idle: 'idle',
  irqs_off: 'IRQs off',
  lock_hold: 'lock held',
  lock_spin: 'lock spin',
  sleep: 'asleep',
};
const TL_MARK_COLOURS: Record<TimelineInstant['kind'], string> = {
  finding: '#c0362c',
  wakeup: '#18794e',
  ipi: '#3b6fb6',
  alloc: '#b35c00',
  other: '#5b6475',
};

/** Virtual ns as a person reads it: ns below 1 µs, µs below 1 ms, then ms. */
export function formatNs(ns: number): string {
  const a = Math.abs(ns);
  if (a < 1000) return `${Number.isInteger(ns) ? ns : ns.toFixed(1)} ns`;
  if (a < 1e6) return `${trimZeros((ns / 1e3).toFixed(3))} µs`;
  return `${trimZeros((ns / 1e6).toFixed(3))} ms`;
}

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** SVG coordinates with one decimal, so the same input always prints the same text. */
function px(v: number): string {
  return String(Math.round(v * 10) / 10);
}

/** Tick positions for [start, end]: a 1-2-5 step giving about `target` ticks, and its unit. */
export function timeTicks(start: number, end: number, target = 8): { ticks: number[]; label: (t: number) => string } {
  const span = Math.max(end - start, 1);
  const raw = span / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const ticks: number[] = [];
  for (let t = Math.ceil(start / step) * step; t <= end + 1e-9 && ticks.length < 50; t += step) ticks.push(Math.round(t * 1e6) / 1e6);
  // The unit is the largest the step is a whole multiple of, so tick labels are whole numbers.
  const [div, unit] = step >= 1e6 ? [1e6, 'ms'] : step >= 1e3 ? [1e3, 'µs'] : [1, 'ns'];
  return { ticks, label: (t) => `${Math.round(t / div)} ${unit}` };
}

function finite(...xs: unknown[]): boolean {
  return xs.every((x) => typeof x === 'number' && Number.isFinite(x));
}

/** Greedy interval packing: the sub-row of each span, so spans in one sub-row never overlap. */
function packRows(spans: readonly TimelineSlice[]): number[] {
  const rowEnd: number[] = [];
  return spans.map((s) => {
    let r = rowEnd.findIndex((e) => e <= s.start);
    if (r < 0) r = rowEnd.length < TL_MAX_SUBROWS ? rowEnd.length : TL_MAX_SUBROWS - 1;
    rowEnd[r] = Math.max(rowEnd[r] ?? -Infinity, s.end);
    return r;
  });
}

/** Nesting depth of each context span: how many earlier spans of the same CPU enclose it. */
function nestDepths(spans: readonly TimelineSlice[]): number[] {
  return spans.map((s, i) => Math.min(2, spans.slice(0, i).filter((o) => o.start <= s.start && o.end >= s.end && !(o.start === s.start && o.end === s.end && o.kind === s.kind)).length));
}

function byTime(a: TimelineSlice, b: TimelineSlice): number {
  return a.start - b.start || b.end - a.end;
}

function sliceTitle(s: TimelineSlice): string {
  return `CPU${s.cpu} ${TL_KIND_LABEL[s.kind] ?? s.kind}: ${s.name}\n${formatNs(s.start)} → ${formatNs(s.end)} (${formatNs(s.end - s.start)})`;
}

/**
 * An SVG timeline of a finding: a group of rows per CPU (`<g class="cpu" data-cpu="N">`) under
 * a time axis, every slice and mark with a `<title>` tooltip, the finding as a dashed marker
 * line at the window's end titled with its headline, and a legend. Spans are clipped to the window; input that is
 * not a TimelineJson draws a one-line note instead of failing the page.
 */
export function renderTimelineSvg(f: Pick<FindingJson, 'timeline' | 'cpus' | 'kind' | 'headline'>, id = 'timeline'): string {
  const tl = f.timeline as TimelineJson | undefined;
  const monoAttrs = 'font-family="ui-monospace,Menlo,Consolas,monospace" font-size="10"';
  if (!tl || !finite(tl.start, tl.end) || !Array.isArray(tl.slices)) {
    return `<svg class="tl" width="${W + 16}" height="30" viewBox="0 0 ${W + 16} 30" role="img" aria-label="no timeline" ${monoAttrs}>${text(8, 20, 'no timeline recorded for this finding', 'fill="#5b6475"')}</svg>`;
  }
  const start = tl.start;
  const end = Math.max(tl.end, tl.start);
  const span = Math.max(end - start, 1);
  const x = (t: number) => TL_X0 + ((Math.min(Math.max(t, start), end) - start) / span) * (TL_X1 - TL_X0);
  const slices = tl.slices
    .filter((s) => s && finite(s.cpu, s.start, s.end) && s.end >= start && s.start <= end)
    .map((s) => ({ ...s, start: Math.max(s.start, start), end: Math.min(Math.max(s.end, s.start), end) }));
  const instants = (Array.isArray(tl.instants) ? tl.instants : []).filter((m) => m && finite(m.cpu, m.time) && m.time >= start && m.time <= end);
  const ncpu = Math.max(finite(tl.cpus) ? tl.cpus : 0, ...slices.map((s) => s.cpu + 1), ...instants.map((m) => m.cpu + 1), 1);
  const involved = new Set(f.cpus ?? []);

  const parts: string[] = [];
  const grid: string[] = [];
  let y = TL_AXIS_H;
  const rowLabel = (ry: number, h: number, s: string) => `<text x="${LABEL_W - 4}" y="${px(ry + h / 2 + 3.5)}" text-anchor="end" fill="#5b6475">${escapeHtml(s)}</text>`;
  const bar = (s: TimelineSlice, by: number, h: number, label: string) => {
    const x0 = x(s.start);
    const w = Math.max(x(s.end) - x0, 1.5);
    const maxChars = Math.floor((w - 6) / TL_CH);
    const shown = maxChars >= 3 ? `<text x="${px(x0 + 3)}" y="${px(by + h / 2 + 3.5)}" fill="${s.kind === 'idle' || s.kind === 'lock_spin' ? '#1d2330' : '#fff'}" pointer-events="none">${escapeHtml(clip(label, maxChars))}</text>` : '';
    return `<rect class="slice" data-kind="${escapeHtml(s.kind)}" data-name="${escapeHtml(s.name)}" x="${px(x0)}" y="${px(by)}" width="${px(w)}" height="${h}" rx="2" fill="${TL_COLOURS[s.kind] ?? '#5b6475'}"><title>${escapeHtml(sliceTitle(s))}</title></rect>${shown}`;
  };

  for (let cpu = 0; cpu < ncpu; cpu++) {
    const mine = slices.filter((s) => s.cpu === cpu);
    const ctx = mine.filter((s) => s.lane === 'context').sort(byTime);
    const irq = mine.filter((s) => s.lane === 'irqs_off').sort(byTime);
    const locks = mine.filter((s) => s.lane === 'lock').sort(byTime);
    const sleeps = mine.filter((s) => s.lane === 'sleep').sort(byTime);
    const lockRows = packRows(locks);
    const sleepRows = packRows(sleeps);
    const nLock = Math.max(1, ...lockRows.map((r) => r + 1));
    const nSleep = sleeps.length ? Math.max(...sleepRows.map((r) => r + 1)) : 0;
    const top = y;
    const marksY = top + 4;
    const ctxY = marksY + TL_MARKS_H;
    const irqY = ctxY + TL_CTX_H + 3;
    const lockY = irqY + TL_IRQ_H + 3;
    const sleepY = lockY + nLock * TL_BAR_H + 2;
    const bottom = sleepY + nSleep * TL_BAR_H + 4;
    const hot = involved.has(cpu);
    parts.push(`<g class="cpu" data-cpu="${cpu}">`);
    parts.push(`<rect x="0" y="${px(top)}" width="${W}" height="${px(bottom - top)}" rx="4" fill="${hot ? '#fff6ec' : '#f5f7fa'}" stroke="${hot ? '#b35c00' : '#d5dae3'}"/>`);
    parts.push(`<text x="6" y="${px(ctxY + 14)}" font-weight="bold" font-size="12">CPU${cpu}</text>`);
    parts.push(rowLabel(irqY - 1, TL_IRQ_H + 2, 'irqs off'));
    parts.push(rowLabel(lockY, TL_BAR_H, 'locks'));
    if (nSleep) parts.push(rowLabel(sleepY, TL_BAR_H, 'sleep'));
    const depths = nestDepths(ctx);
    for (const [i, s] of ctx.entries()) {
      const inset = depths[i] * 3;
      parts.push(bar(s, ctxY + inset, TL_CTX_H - 2 * inset, s.name));
    }
    for (const s of irq) parts.push(bar(s, irqY, TL_IRQ_H, ''));
    for (const [i, s] of locks.entries()) parts.push(bar(s, lockY + lockRows[i] * TL_BAR_H + 1, TL_BAR_H - 2, s.kind === 'lock_spin' && !/^spin/.test(s.name) ? `spin ${s.name}` : s.name));
    for (const [i, s] of sleeps.entries()) parts.push(bar(s, sleepY + sleepRows[i] * TL_BAR_H + 1, TL_BAR_H - 2, s.name));
    for (const m of instants.filter((i) => i.cpu === cpu)) parts.push(mark(m, x(m.time), marksY, ctxY + TL_CTX_H));
    parts.push('</g>');
    y = bottom + TL_GAP;
  }
  const plotBottom = y - TL_GAP;

  // Axis and grid: absolute virtual time, ticks in ns, µs or ms.
  const { ticks, label } = timeTicks(start, end);
  grid.push(`<line x1="${TL_X0}" y1="${TL_AXIS_H - 6}" x2="${TL_X1}" y2="${TL_AXIS_H - 6}" stroke="#5b6475"/>`);
  for (const t of ticks) {
    const tx = px(x(t));
    grid.push(`<line x1="${tx}" y1="${TL_AXIS_H - 10}" x2="${tx}" y2="${TL_AXIS_H - 6}" stroke="#5b6475"/>`);
    grid.push(`<text x="${tx}" y="${TL_AXIS_H - 13}" text-anchor="middle" fill="#5b6475">${escapeHtml(label(t))}</text>`);
  }
  const gridLines = ticks.map((t) => `<line x1="${px(x(t))}" y1="${TL_AXIS_H}" x2="${px(x(t))}" y2="${px(plotBottom)}" stroke="#1d2330" stroke-opacity="0.08"/>`);

  // The stretch where the machine was stuck (every thread waiting; the tracer's tail): shaded,
  // so bars that run through it read as "never released", not as time passing.
  const stuckAt = finite(tl.stuckAt) && (tl.stuckAt as number) < end ? Math.max(tl.stuckAt as number, start) : null;
  const stuck = stuckAt === null ? '' :
    `<g class="stuck"><title>${escapeHtml(`stuck from ${formatNs(stuckAt)}: no thread could run; what is held or spun on here is never released`)}</title>` +
    `<rect x="${px(x(stuckAt))}" y="${TL_AXIS_H}" width="${px(x(end) - x(stuckAt))}" height="${px(plotBottom - TL_AXIS_H)}" fill="#1d2330" fill-opacity="0.07"/>` +
    `<text x="${px(x(stuckAt) + 3)}" y="${TL_AXIS_H + 9}" fill="#5b6475" font-size="9">stuck</text></g>`;

  // The finding: a dashed line across every CPU at its time (the window's end unless the window
  // was widened past it, e.g. a finding at t=0), a flag on the axis.
  const at = finite(tl.at) ? Math.min(Math.max(tl.at as number, start), end) : end;
  const fx = px(x(at));
  const finding = `<g class="finding-marker" data-time="${at}"><title>${escapeHtml(`${f.kind} at ${formatNs(at)}: ${f.headline}`)}</title>` +
    `<line x1="${fx}" y1="${TL_AXIS_H - 6}" x2="${fx}" y2="${px(plotBottom)}" stroke="#c0362c" stroke-width="2" stroke-dasharray="5 3"/>` +
    `<path d="M ${fx} ${TL_AXIS_H - 6} l 6 -4 l -6 -4 z" fill="#c0362c"/>` +
    `<rect x="${px(Number(fx) - 4)}" y="${TL_AXIS_H - 6}" width="8" height="${px(plotBottom - TL_AXIS_H + 6)}" fill="transparent"/></g>`;

  const legendY = plotBottom + 8;
  const legend = renderTimelineLegend(legendY);
  const windowNote = `<text x="6" y="${px(legendY + 30)}" fill="#5b6475">${escapeHtml(`virtual time ${formatNs(start)} → ${formatNs(end)} (${formatNs(end - start)}); hover a bar or mark for details`)}</text>`;
  const height = legendY + 38;
  const aria = `timeline of CPUs 0-${ncpu - 1} from ${formatNs(start)} to ${formatNs(end)}, ending in ${f.kind}: ${f.headline}`;
  return (
    `<svg class="tl" id="${escapeHtml(id)}" width="${W + 16}" height="${px(height)}" viewBox="0 0 ${W + 16} ${px(height)}" role="img" aria-label="${escapeHtml(aria)}" ${monoAttrs}>` +
    grid.join('') +
    parts.join('') +
    gridLines.join('') +
    stuck +
    finding +
    legend +
    windowNote +
    '</svg>'
  );
}

/** A point event: a small shape above the context row, a thin tick down through it. */
function mark(m: TimelineInstant, mx: number, top: number, bottom: number): string {
  const c = TL_MARK_COLOURS[m.kind] ?? TL_MARK_COLOURS.other;
  const title = `<title>${escapeHtml(`CPU${m.cpu} ${m.kind}: ${m.name} at ${formatNs(m.time)}${m.text ? `\n${m.text}` : ''}`)}</title>`;
  const cx = px(mx);
  const shape =
    m.kind === 'wakeup' ? `<circle cx="${cx}" cy="${px(top + 4)}" r="3.5" fill="${c}"/>` :
    m.kind === 'ipi' ? `<path d="M ${px(mx - 4)} ${px(top)} h 8 l -4 8 z" fill="${c}"/>` :
    m.kind === 'finding' ? `<path d="M ${cx} ${px(top - 1)} l 5 5 l -5 5 l -5 -5 z" fill="${c}"/>` :
    `<rect x="${px(mx - 3.5)}" y="${px(top + 0.5)}" width="7" height="7" fill="${c}"/>`;
  return `<g class="mark" data-kind="${escapeHtml(m.kind)}">${title}${shape}<line x1="${cx}" y1="${px(top + 8)}" x2="${cx}" y2="${px(bottom)}" stroke="${c}" stroke-width="1"/></g>`;
}

function renderTimelineLegend(y: number): string {
  const items: [string, string, 'bar' | 'circle' | 'tri' | 'square' | 'line'][] = [
    ['task', TL_COLOURS.task, 'bar'],
    ['softirq', TL_COLOURS.softirq, 'bar'],
    ['hardirq', TL_COLOURS.hardirq, 'bar'],
    ['idle', TL_COLOURS.idle, 'bar'],
    ['IRQs off', TL_COLOURS.irqs_off, 'bar'],
    ['lock held', TL_COLOURS.lock_hold, 'bar'],
    ['lock spin', TL_COLOURS.lock_spin, 'bar'],
    ['asleep', TL_COLOURS.sleep, 'bar'],
    ['wakeup', TL_MARK_COLOURS.wakeup, 'circle'],
    ['IPI', TL_MARK_COLOURS.ipi, 'tri'],
    ['alloc/other', TL_MARK_COLOURS.alloc, 'square'],
    ['finding', TL_MARK_COLOURS.finding, 'line'],
  ];
  const out: string[] = ['<g class="legend">'];
  let lx = 6;
  for (const [name, c, shape] of items) {
    const cy = y + 6;
    if (shape === 'bar') out.push(`<rect x="${lx}" y="${cy - 5}" width="14" height="10" rx="2" fill="${c}"/>`);
    else if (shape === 'circle') out.push(`<circle cx="${lx + 7}" cy="${cy}" r="3.5" fill="${c}"/>`);
    else if (shape === 'tri') out.push(`<path d="M ${lx + 3} ${cy - 4} h 8 l -4 8 z" fill="${c}"/>`);
    else if (shape === 'square') out.push(`<rect x="${lx + 3.5}" y="${cy - 3.5}" width="7" height="7" fill="${c}"/>`);
    else out.push(`<line x1="${lx + 7}" y1="${cy - 6}" x2="${lx + 7}" y2="${cy + 6}" stroke="${c}" stroke-width="2" stroke-dasharray="3 2"/>`);
    out.push(`<text x="${lx + 18}" y="${cy + 3.5}" fill="#1d2330">${escapeHtml(name)}</text>`);
    lx += 18 + name.length * TL_CH + 14;
  }
  out.push('</g>');
  return out.join('');
}
