import { expect } from 'chai';
import { applyParams } from '../../lib/scenario/params';
import { escapeHtml, formatNs, renderFindingSvg, renderHtml, renderTimelineSvg, timeTicks, type ScenarioResults } from '../../lib/report/html';
import type { FindingJson } from '../../lib/report/json';
import { huntVariant, type RunJson } from '../../lib/scenario/hunt';
import { findScenario } from '../../lib/scenario/registry';
import { EVIL_LOCK, handMadeTimeline } from './fixtures/timeline';

/** What `irqsim hunt <id> --json` prints (lib/cli/main.ts cmdHunt), built in-process. */
function huntJson(id: string): ScenarioResults {
  const def = findScenario(id);
  const params = applyParams(def, []);
  const runs: RunJson[] = def.variants.map((v) => huntVariant(def, v, params, { hunt: {} }));
  return {
    scenario: { id: def.id, name: def.name, file: def.file },
    options: { seed: 0, strategy: 'random', iterations: def.options?.iterations ?? 1000, params },
    runs,
  };
}

/** The tags the renderer emits; anything else looking like a tag is a leak of unescaped text. */
const KNOWN = new Set(
  'html head meta title style body h1 h2 h3 h4 p span a table thead tbody tr th td section article dl dt dd div pre button details summary script svg defs marker path g rect text line circle'.split(' '),
);
const VOID = new Set(['meta']);

/** Every tag opened is closed in order; returns the problems found (empty when balanced). */
function tagProblems(html: string): string[] {
  const problems: string[] = [];
  // Raw-text elements: their content is not markup.
  const body = html.replace(/<(script|style)>[\s\S]*?<\/\1>/g, '<$1></$1>');
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z][A-Za-z0-9:-]*(?:="[^"<>]*")?)*)\s*(\/?)>|<!DOCTYPE html>|<!--[\s\S]*?-->/g;
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) {
    const between = body.slice(last, m.index);
    if (between.includes('<')) problems.push(`stray "<" before offset ${m.index}: ${JSON.stringify(between.slice(between.indexOf('<'), between.indexOf('<') + 40))}`);
    if (/&(?!(amp|lt|gt|quot|#39);)/.test(between)) problems.push(`unescaped "&" near offset ${m.index}`);
    last = re.lastIndex;
    if (!m[2]) continue;
    const [, close, rawName, , selfClose] = m;
    const name = rawName.toLowerCase();
    if (!KNOWN.has(name)) problems.push(`unexpected tag <${close}${rawName}>`);
    if (close) {
      const top = stack.pop();
      if (top !== name) problems.push(`</${name}> closes <${top ?? 'nothing'}>`);
    } else if (!selfClose && !VOID.has(name)) stack.push(name);
  }
  if (body.slice(last).includes('<')) problems.push('stray "<" at the end');
  if (stack.length) problems.push(`unclosed: ${stack.join(' > ')}`);
  return problems;
}

function allFindings(results: ScenarioResults[]): FindingJson[] {
  return results.flatMap((s) => s.runs.flatMap((r) => r.findings));
}

describe('HTML report (lib/report/html.ts)', () => {
  it('the tag-balance checker itself catches unclosed, misnested, unknown and stray markup', () => {
    expect(tagProblems('<p><span>x</span></p>')).to.deep.equal([]);
    expect(tagProblems('<p><span>x</p>')).to.not.deep.equal([]);
    expect(tagProblems('<div><p>x</div></p>')).to.not.deep.equal([]);
    expect(tagProblems('<pre><TASK></pre>')).to.not.deep.equal([]);
    expect(tagProblems('<pre>a < b</pre>')).to.not.deep.equal([]);
    expect(tagProblems('<pre>a & b</pre>')).to.not.deep.equal([]);
    expect(tagProblems('<pre>a &lt; b &amp; c</pre><svg><rect x="1"/></svg>')).to.deep.equal([]);
  });

  let s5: ScenarioResults;
  let s3: ScenarioResults;
  before(() => {
    s5 = huntJson('S5');
    s3 = huntJson('S3');
  });

  it('renders one scenario\'s hunt as a balanced, self-contained page', () => {
    const html = renderHtml(s5);
    expect(html.startsWith('<!DOCTYPE html>')).to.equal(true);
    expect(tagProblems(html)).to.deep.equal([]);
    expect(html).not.to.match(/https?:\/\//);
    expect(html).not.to.match(/\b(src|href)\s*=\s*"(?!#)/);
    expect(html).not.to.match(/@import|url\((?!#)/);
    expect(html).not.to.match(/<link\b/);
  });

  it('renders hunt-all output ({scenarios: [...]}) with every scenario, variant and verdict', () => {
    const html = renderHtml({ scenarios: [s5, s3] });
    expect(tagProblems(html)).to.deep.equal([]);
    expect(html).not.to.match(/https?:\/\//);
    for (const s of [s5, s3]) {
      expect(html).to.include(escapeHtml(`${s.scenario.id}: ${s.scenario.name}`));
      for (const r of s.runs) {
        expect(html).to.include(`${escapeHtml(s.scenario.id)} / ${escapeHtml(r.variant)} <span class="verdict`);
        expect(html).to.include(`>${r.verdict}</span>`);
      }
    }
  });

  it('shows each finding\'s headline, splat, replay command and shrunk schedule, escaped', () => {
    const results = [s5, s3];
    const html = renderHtml({ scenarios: results });
    const findings = allFindings(results);
    expect(findings.length).to.be.greaterThan(2);
    for (const f of findings) {
      expect(html).to.include(escapeHtml(f.headline));
      expect(html).to.include(`<pre class="splat">${escapeHtml(f.text)}</pre>`);
      expect(html).to.include(escapeHtml(f.replay));
      if (f.shrunk) expect(html).to.include(escapeHtml(f.shrunk));
      if (f.subkind) expect(html).to.include(escapeHtml(`${f.kind} / ${f.subkind}`));
    }
  });

  it('draws one SVG per finding, with a lane per CPU', () => {
    const results = [s5, s3];
    const html = renderHtml({ scenarios: results });
    const findings = allFindings(results);
    expect(html.match(/<svg class="state"/g) ?? []).to.have.length(findings.length);
    const articles = html.split('<article class="finding"').slice(1);
    expect(articles).to.have.length(findings.length);
    for (const [i, a] of articles.entries()) {
      expect(a).to.include('<svg class="state"');
      const lanes = a.match(/<g class="lane"/g) ?? [];
      const cpus = new Set(findings[i].cpuStates.map((s) => s.cpu)).size;
      expect(lanes.length).to.equal(cpus);
    }
  });

  it('marks lockdep predictions that --confirm realised as confirmed', () => {
    const html = renderHtml(s3);
    const lockdep = s3.runs.flatMap((r) => r.findings).filter((f) => f.kind === 'lockdep');
    expect(lockdep.length).to.be.greaterThan(0);
    for (const f of lockdep) {
      expect(f.confirmed).to.match(/^confirmed/);
      expect(html).to.include(`<p class="confirmed">lockdep prediction ${escapeHtml(f.confirmed!)}</p>`);
    }
  });

  it('an escaped "<" from a splat does not open a tag', () => {
    const html = renderHtml(s5);
    const splat = allFindings([s5]).find((f) => f.text.includes('<TASK>'));
    expect(splat, 'an S5 splat with a <TASK> call-trace marker').to.not.equal(undefined);
    expect(html).to.include('&lt;TASK&gt;');
    expect(html).not.to.match(/<\/?TASK>/i);
    // A hostile finding: every field that reaches the page carries markup.
    const evil = '<script>alert("x")</script> & <img src=x onerror=1> \'q\'';
    const f: FindingJson = {
      ...allFindings([s5])[0],
      kind: 'assertion',
      subkind: `sub${evil}`,
      headline: `head${evil}`,
      text: `text${evil}\n<Interrupt>\n  lock(&a->b);`,
      replay: `npx irqsim replay S5 '${evil}'`,
      schedule: evil,
      shrunk: evil,
      confirmed: `not reached ${evil}`,
      fingerprint: evil,
      cpuStates: allFindings([s5])[0].cpuStates.map((s) => ({ ...s, task: `t${evil}`, context: `hardirq ${evil}`, held: [evil], waitingFor: `${evil} CPU1`, stack: [evil] })),
    };
    const page = renderHtml({
      scenario: { id: `S${evil}`, name: evil, file: evil },
      options: { seed: 0, strategy: evil, params: { p: evil } },
      runs: [{ variant: evil, expect: { findings: [evil] }, verdict: 'unexpected', schedulesRun: 1, findings: [f], metrics: { [evil]: 1.5 }, coverage: {}, why: evil }],
    }, { title: evil, keyMetrics: { [`S${evil}`]: [evil] } });
    expect(tagProblems(page)).to.deep.equal([]);
    expect(page).not.to.include('<script>alert');
    expect(page).not.to.include('<img');
    expect(page).not.to.include('<Interrupt>');
    expect(page).to.include('&lt;Interrupt&gt;');
    expect(page).to.include('lock(&amp;a-&gt;b);');
    expect(page.match(/<script>/g)).to.have.length(1);
  });

  it('a clean variant renders "clean"', () => {
    const fixed = s5.runs.find((r) => r.variant === 'fixed')!;
    expect(fixed.findings).to.deep.equal([]);
    const html = renderHtml({ ...s5, runs: [fixed] });
    expect(tagProblems(html)).to.deep.equal([]);
    expect(html).to.include('<p class="clean">clean: no finding in');
    expect(html).not.to.include('<svg');
  });

  it('is deterministic: the same results give the same page', () => {
    const a = renderHtml({ scenarios: [s5, s3] });
    const b = renderHtml(JSON.parse(JSON.stringify({ scenarios: [s5, s3] })));
    expect(a).to.equal(b);
    expect(a).not.to.match(/\b20\d\d-\d\d-\d\d\b/);
  });

  it('renderFindingSvg works on its own and on a finding without CPU states', () => {
    const svg = renderFindingSvg({ kind: 'deadlock', headline: 'x < y', cpus: [], cpuStates: [] }, 'solo');
    expect(tagProblems(svg)).to.deep.equal([]);
    expect(svg).to.match(/^<svg[\s\S]*<\/svg>$/);
    expect(svg).to.include('x &lt; y');
  });

  describe('the per-finding timeline (FindingJson.timeline)', () => {
    /** S5's hunt with the hand-made timeline on every finding, ending at the finding's time. */
    function withTimelines(s: ScenarioResults): ScenarioResults {
      return { ...s, runs: s.runs.map((r) => ({ ...r, findings: r.findings.map((f) => ({ ...f, timeline: handMadeTimeline(Math.max(f.time, 12_000)) })) })) };
    }
    /** The timeline SVG of each finding article, in page order. */
    function timelineSvgs(html: string): string[] {
      return html.split('<article class="finding"').slice(1).map((a) => {
        const m = a.match(/<svg class="tl"[\s\S]*?<\/svg>/);
        expect(m, 'a timeline SVG in the finding').to.not.equal(null);
        return m![0];
      });
    }

    it('draws a timeline SVG per finding, before the state diagram, on a balanced page', () => {
      const s = withTimelines(s5);
      const html = renderHtml(s);
      expect(tagProblems(html)).to.deep.equal([]);
      expect(html).not.to.match(/https?:\/\/(?!www\.w3\.org)/);
      const findings = allFindings([s]);
      expect(findings.length).to.be.greaterThan(0);
      expect(timelineSvgs(html)).to.have.length(findings.length);
      for (const a of html.split('<article class="finding"').slice(1)) {
        expect(a.indexOf('<svg class="tl"')).to.be.lessThan(a.indexOf('<svg class="state"'));
        expect(a.match(/<svg class="tl"/g)).to.have.length(1);
      }
    });

    it('has a group of rows per CPU and every slice carries a <title> with its name and times', () => {
      const tl = handMadeTimeline();
      const svg = renderTimelineSvg({ timeline: tl, cpus: [0, 1], kind: 'deadlock', headline: 'deadlock: a & b' }, 't1');
      expect(tagProblems(svg)).to.deep.equal([]);
      const groups = svg.match(/<g class="cpu" data-cpu="(\d+)">/g) ?? [];
      expect(groups).to.deep.equal(['<g class="cpu" data-cpu="0">', '<g class="cpu" data-cpu="1">']);
      const slices = [...svg.matchAll(/<rect class="slice" data-kind="([a-z_]+)"[^>]*><title>([^<]*)<\/title><\/rect>/g)];
      expect(slices).to.have.length(tl.slices.length);
      for (const s of tl.slices) {
        const want = `CPU${s.cpu} `;
        const hit = slices.find((m) => m[1] === s.kind && m[2].startsWith(want) && m[2].includes(escapeHtml(s.name)) && m[2].includes(`${formatNs(s.start)} → ${formatNs(s.end)}`));
        expect(hit, `slice ${s.kind} ${s.name} on CPU${s.cpu}`).to.not.equal(undefined);
      }
      // Distinct colours for task, softirq and hardirq context slices.
      const fill = (k: string) => svg.match(new RegExp(`data-kind="${k}"[^>]*fill="(#[0-9a-f]+)"`))![1];
      expect(new Set([fill('task'), fill('softirq'), fill('hardirq')]).size).to.equal(3);
      // Wakeup, IPI and finding instants as marks with titles; a legend; an axis in µs.
      expect(svg.match(/<g class="mark" data-kind="(wakeup|ipi|finding)"><title>/g)).to.have.length(3);
      expect(svg).to.include('<g class="legend">');
      expect(svg).to.match(/>\d+ µs</);
    });

    it('escapes slice, lock and instant names: a lock named <x&y>', () => {
      const tl = handMadeTimeline();
      tl.instants.push({ cpu: 1, time: 100, kind: 'other', name: '<img src=x>', text: '"q" & \'r\'' });
      const page = renderHtml({ ...s5, runs: [{ ...s5.runs[0], findings: [{ ...allFindings([s5])[0], timeline: tl }] }] });
      expect(tagProblems(page)).to.deep.equal([]);
      expect(page).not.to.include(EVIL_LOCK);
      expect(page).to.include(escapeHtml(EVIL_LOCK));
      expect(page).to.include('&lt;img src=x&gt;');
      expect(page).not.to.include('<img');
    });

    it('marks the finding: a dashed line at the window\'s end, titled with its kind and headline', () => {
      const tl = handMadeTimeline();
      const f = { timeline: tl, cpus: [0], kind: 'deadlock', headline: 'deadlock: <A> waits for "B"' };
      const svg = renderTimelineSvg(f, 't2');
      const m = svg.match(/<g class="finding-marker"[^>]*><title>([^<]*)<\/title><line x1="([\d.]+)"/);
      expect(m, 'the finding marker').to.not.equal(null);
      expect(m![1]).to.equal(escapeHtml(`deadlock at ${formatNs(tl.end)}: ${f.headline}`));
      // The axis runs from the window's start to its end; the marker sits at the end.
      const axis = svg.match(/<line x1="([\d.]+)" y1="20" x2="([\d.]+)" y2="20"/)!;
      expect(Number(m![2])).to.equal(Number(axis[2]));
      // Half-way through the window is half-way across: the wakeup at 6 µs of 12.
      const wake = svg.match(/<g class="mark" data-kind="wakeup">[\s\S]*?<circle cx="([\d.]+)"/)!;
      expect(Number(wake[1])).to.be.closeTo((Number(axis[1]) + Number(axis[2])) / 2, 0.2);
    });

    it('clips spans to the window, packs overlapping locks into sub-rows, and survives bad input', () => {
      const tl = handMadeTimeline();
      tl.slices.push({ cpu: 1, lane: 'lock', kind: 'lock_hold', name: 'early', start: -5_000, end: 500 });
      tl.slices.push({ cpu: 1, lane: 'lock', kind: 'lock_hold', name: 'after', start: 50_000, end: 60_000 });
      const svg = renderTimelineSvg({ timeline: tl, cpus: [], kind: 'k', headline: 'h' });
      expect(svg).to.include('early');
      expect(svg).not.to.include('after');
      for (const m of svg.matchAll(/<rect class="slice"[^>]* x="([-\d.]+)"[^>]* width="([\d.]+)"/g)) {
        expect(Number(m[1])).to.be.at.least(72);
        expect(Number(m[1]) + Number(m[2])).to.be.at.most(956 + 1.5);
      }
      // CPU0 holds stats_lock while <x&y> is held: two lock sub-rows, at different heights.
      const y = (name: string) => svg.match(new RegExp(`data-kind="lock_hold" data-name="[^"]*" x="[\\d.]+" y="([\\d.]+)"[^>]*><title>CPU0 lock held: ${escapeHtml(name)}`))![1];
      expect(y('stats_lock')).to.not.equal(y(EVIL_LOCK));
      // Not a timeline: a note, not an exception.
      const bad = renderTimelineSvg({ timeline: { cpus: 2 } as never, cpus: [], kind: 'k', headline: 'h' });
      expect(bad).to.include('no timeline recorded');
      expect(tagProblems(bad)).to.deep.equal([]);
    });

    it('is deterministic and absent when the finding has no timeline', () => {
      const s = withTimelines(s5);
      expect(renderHtml(s)).to.equal(renderHtml(JSON.parse(JSON.stringify(s))));
      expect(renderHtml(s5)).not.to.include('<svg class="tl"');
    });

    it('time ticks step 1-2-5 in ns, µs or ms', () => {
      expect(timeTicks(0, 12_000).ticks).to.deep.equal([0, 2000, 4000, 6000, 8000, 10000, 12000]);
      expect(timeTicks(0, 12_000).label(4000)).to.equal('4 µs');
      expect(timeTicks(100, 900).label(500)).to.equal('500 ns');
      expect(timeTicks(0, 3e7).label(1e7)).to.equal('10 ms');
      expect(timeTicks(0, 1500).ticks).to.deep.equal([0, 200, 400, 600, 800, 1000, 1200, 1400]);
      expect(timeTicks(0, 8000).label(3000)).to.equal('3 µs');
      expect(formatNs(600)).to.equal('600 ns');
      expect(formatNs(12_500)).to.equal('12.5 µs');
      expect(formatNs(3_000_000)).to.equal('3 ms');
    });
  });

  it('shows structured hunt coverage (nested objects, lists, nulls) as flat key=value text', () => {
    const coverage = { schedules: 40, groups: { lockorder: { distinct: 5, keys: ['a<b', 'b', 'c', 'd', 'e'] } }, schedulesPerClass: { mean: 1.25, min: 1, max: 3 }, depth: null };
    const html = renderHtml({ ...s5, runs: [{ ...s5.runs[0], coverage }] });
    expect(tagProblems(html)).to.deep.equal([]);
    expect(html).to.include('schedules=40 groups.lockorder.distinct=5 groups.lockorder.keys=[a&lt;b, b, c, … 2 more] schedulesPerClass.mean=1.25 schedulesPerClass.min=1 schedulesPerClass.max=3 depth=-');
  });

  it('rejects input that is not hunt --json output', () => {
    expect(() => renderHtml({} as never)).to.throw(/hunt --json/);
  });
});
