/**
 * The self-contained HTML report (`irqsim report <results.json> --html out.html`, CONTRACT.md):
 * per scenario and variant the verdict, expectation, schedules and key metrics; per finding its
 * kind, headline, kernel-style splat, replay command and an SVG picture of the machine at the
 * failing step. No network: inline CSS, a few lines of inline JS, no external fonts or scripts.
 * Every string from the JSON is escaped. Deterministic: the same results give the same page.
 */
import type { RunJson } from '../scenario/hunt';
import type { ContextState } from './cpu-state';
import type { FindingJson } from './json';

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
      var done=function(){b.textContent='copied';setTimeout(function(){b.textContent='copy';},1200);};
      if(navigator.clipboard&&navigator.clipboard.writeText){navigator.clipboard.writeText(text).then(done,function(){});}
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
    facts.push(['options', Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')]);
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
  if (r.why) facts.push(['why', r.why]);
  if (r.coverage && Object.keys(r.coverage).length) facts.push(['coverage', Object.entries(r.coverage).map(([k, v]) => `${k}=${formatMetric(v)}`).join(' ')]);
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

function renderFinding(f: FindingJson, id: string): string {
  const out: string[] = [];
  out.push(`<article class="finding" id="${id}">`);
  out.push(`<h4><span class="kind">${escapeHtml(findingTitle(f))}</span>${escapeHtml(f.headline)}</h4>`);
  if (f.confirmed !== undefined) {
    const ok = /^confirmed\b/.test(f.confirmed);
    out.push(`<p class="${ok ? 'confirmed' : 'notconfirmed'}">lockdep prediction ${escapeHtml(f.confirmed)}</p>`);
  }
  const facts: [string, string][] = [
    ['fingerprint', f.fingerprint],
    ['iteration', String(f.iteration)],
    ['virtual time', `${f.time} ns`],
    ['cpus', f.cpus?.length ? f.cpus.map((c) => `CPU${c}`).join(', ') : '-'],
    ['occurrences', `${f.count} (${f.logged} logged)`],
  ];
  out.push(`<dl class="facts">${facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd class="mono">${escapeHtml(v)}</dd>`).join('')}</dl>`);
  if (f.replay) {
    out.push('<div class="label">replay</div>');
    out.push(`<div class="cmd"><pre class="replay" id="${id}-replay">${escapeHtml(f.replay)}</pre><button class="copy" type="button" data-for="${id}-replay">copy</button></div>`);
  }
  out.push(`<dl class="facts"><dt>schedule</dt><dd class="mono">${escapeHtml(f.schedule || '-')}</dd>${f.shrunk ? `<dt>shrunk</dt><dd class="mono">${escapeHtml(f.shrunk)}</dd>` : ''}</dl>`);
  out.push(`<div class="timeline">${renderFindingSvg(f, `${id}-svg`)}</div>`);
  out.push(`<pre class="splat">${escapeHtml(f.text)}</pre>`);
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
