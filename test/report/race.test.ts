/**
 * Reports that draw the race right (issue 21 item 6): a lock handed over to a waiter starts a held
 * bar for the new holder; stuck spins and holds run to the end of the trace; a deadlock's
 * timeline shows each lock's holder and its waiters overlapping up to the finding, checked on the
 * SVG's own geometry (no browser); a finding at t=0 gets a visible window; the page's text comes
 * first and its time and machine state come from the run the timeline was drawn from.
 */
import { expect } from 'chai';
import { hunt } from '../../scheduler';
import { renderHtml, renderTimelineSvg, type ScenarioResults } from '../../lib/report/html';
import { runOptionsJson } from '../../lib/report/run-options';
import { timelineOf, type TraceLog } from '../../lib/report/trace';
import type { TimelineJson } from '../../lib/report/timeline';
import { scenarioProgram, type ScenarioDef } from '../../lib/scenario/define';
import { findingTimeline, traceRun } from '../../lib/scenario/trace-run';
import abba from '../../scenarios/abba';

const def = abba as unknown as ScenarioDef;

function deadlockSchedule(cpus: number): { schedule: string; fingerprint: string } {
  const params = { ...def.params, cpus };
  const h = hunt(scenarioProgram(def, 'buggy', params), { seed: 0, iterations: 500, stopWhenSeen: ['deadlock'], shrink: true });
  const d = h.findings.find((f) => f.kind === 'deadlock');
  expect(d, `abba buggy (${cpus} CPUs) deadlocks`).to.not.equal(undefined);
  return { schedule: d!.shrunk ?? d!.schedule, fingerprint: d!.fingerprint };
}

/**
 * Every spin that ended (the waiter got the lock) must be followed, on its CPU, by a held bar of
 * that lock starting where the spin stopped: what a hand-over looks like drawn right.
 */
export function handOverProblems(log: Pick<TraceLog, 'spans'>): string[] {
  const out: string[] = [];
  for (const s of log.spans) {
    if (s.kind !== 'lock_spin' || s.truncated) continue;
    const lock = String(s.name).replace(/^(spins on|waits for) /, '');
    if (!log.spans.some((h) => h.kind === 'lock_hold' && h.cpu === s.cpu && h.name === lock && h.start === s.end)) out.push(`CPU${s.cpu} ${s.name} ends at ${s.end} with no held bar of ${lock} from there`);
  }
  return out;
}

interface Bar {
  cpu: number;
  kind: string;
  name: string;
  x0: number;
  x1: number;
}

/** The slice rectangles of a timeline SVG, per CPU group (attributes only: no browser). */
export function svgBars(svg: string): Bar[] {
  const out: Bar[] = [];
  for (const g of svg.split('<g class="cpu" data-cpu="').slice(1)) {
    const cpu = Number(g.slice(0, g.indexOf('"')));
    const body = g.slice(0, g.indexOf('</g>') < 0 ? undefined : g.search(/<\/g>(?!<\/)/));
    for (const m of body.matchAll(/<rect class="slice" data-kind="([^"]+)" data-name="([^"]*)" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)) {
      out.push({ cpu, kind: m[1], name: m[2].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'), x0: Number(m[3]), x1: Number(m[3]) + Number(m[4]) });
    }
  }
  return out;
}

function markerX(svg: string): number {
  const m = /<g class="finding-marker"[^>]*>.*?<line x1="([\d.]+)"/.exec(svg);
  expect(m, 'a finding marker').to.not.equal(null);
  return Number(m![1]);
}

/**
 * For each lock: at the finding marker someone holds it (a held bar reaching the marker) and
 * someone else spins on it (a spin bar on another CPU reaching the marker), and each such spin
 * overlaps the held bar. Returns what is wrong (empty: drawn right).
 */
export function deadlockGeometryProblems(svg: string, locks: string[]): string[] {
  const bars = svgBars(svg);
  const fx = markerX(svg);
  const atMarker = (b: Bar) => Math.abs(b.x1 - fx) <= 0.5;
  const out: string[] = [];
  for (const lock of locks) {
    const held = bars.filter((b) => b.kind === 'lock_hold' && b.name === lock && atMarker(b));
    const spins = bars.filter((b) => b.kind === 'lock_spin' && b.name.endsWith(` ${lock}`) && atMarker(b));
    if (held.length === 0) out.push(`${lock}: nobody is drawn holding it at the finding`);
    if (spins.length === 0) out.push(`${lock}: nobody is drawn spinning on it at the finding`);
    for (const h of held) {
      for (const s of spins) {
        if (s.cpu === h.cpu) out.push(`${lock}: CPU${s.cpu} is drawn spinning on a lock it holds`);
        if (Math.min(h.x1, s.x1) - Math.max(h.x0, s.x0) < 2) out.push(`${lock}: CPU${h.cpu}'s held bar [${h.x0}, ${h.x1}] and CPU${s.cpu}'s spin bar [${s.x0}, ${s.x1}] do not overlap`);
      }
    }
  }
  return out;
}

describe('reports draw the race right (issue 21 item 6)', function () {
  this.timeout(60_000);
  let two = { schedule: '', fingerprint: '' };
  let three = two;
  before(() => {
    two = deadlockSchedule(2);
    three = deadlockSchedule(3);
  });

  it('stuck spins and holds run to the end of the trace: none zero-length, the tail marked', () => {
    const r = traceRun(def, 'buggy', { ...def.params, cpus: 2 }, { schedule: two.schedule });
    const locks = r.log.spans.filter((s) => s.lane === 'lock');
    const open = locks.filter((s) => s.truncated);
    expect(open.length, 'ABBA: two holds and two spins never end').to.equal(4);
    for (const s of open) {
      expect(s.end, `${s.name} on CPU${s.cpu}`).to.equal(r.log.end);
      expect(s.end - s.start, `${s.name} on CPU${s.cpu} has a length`).to.be.greaterThan(0);
    }
    expect(r.log.stuckAt).to.be.a('number').and.below(r.log.end);
    expect(r.trace.otherData.stuckAtNs).to.equal(r.log.stuckAt);
    const zero = r.trace.traceEvents.filter((e) => e.ph === 'X' && (e.cat === 'lock_spin' || e.cat === 'lock_hold') && (e.args as { truncated?: boolean }).truncated && e.dur === 0);
    expect(zero.length).to.equal(0);
    // the fatal finding sits at the end of the trace, after the stuck tail
    const found = r.trace.traceEvents.find((e) => e.ph === 'i' && e.cat === 'finding' && (e.args as { kind: string }).kind === 'deadlock')!;
    expect(found.ts * 1000).to.equal(r.log.end);
  });

  it('a hand-over starts a held bar for the new holder where its spin ends', () => {
    const r = traceRun(def, 'buggy', { ...def.params, cpus: 3 }, { schedule: three.schedule });
    const handed = r.log.spans.filter((s) => s.kind === 'lock_spin' && !s.truncated);
    expect(handed.length, 'this schedule hands stats_lock over from the bystander').to.be.greaterThan(0);
    expect(handOverProblems(r.log)).to.deep.equal([]);
    // and the check says no when the held bar is missing (what the issue saw)
    const broken = { spans: r.log.spans.filter((s) => !(s.kind === 'lock_hold' && handed.some((h) => h.cpu === s.cpu && h.end === s.start))) };
    expect(handOverProblems(broken).length).to.equal(handed.length);
  });

  for (const cpus of [2, 3]) {
    it(`deadlock timeline (abba buggy, ${cpus} CPUs): each lock's held bar and its waiter's spin bar overlap up to the finding (SVG geometry)`, () => {
      const d = cpus === 2 ? two : three;
      const tl = findingTimeline(def, 'buggy', { ...def.params, cpus }, d.schedule, undefined, undefined, d.fingerprint)!;
      const dl = tl.run;
      expect(dl, 'the timeline carries its own run').to.not.equal(undefined);
      const svg = renderTimelineSvg({ timeline: tl, cpus: [0, 1], kind: 'deadlock', headline: 'deadlock' });
      expect(deadlockGeometryProblems(svg, ['stats_lock', 'cfg_lock'])).to.deep.equal([]);
    });
  }

  it('the geometry check says no when spins stop short of the finding or holders are drawn spinning', () => {
    const tl = findingTimeline(def, 'buggy', { ...def.params, cpus: 2 }, two.schedule, undefined, undefined, two.fingerprint)!;
    const short: TimelineJson = { ...tl, slices: tl.slices.map((s) => (s.kind === 'lock_spin' ? { ...s, end: s.start } : s)) };
    expect(deadlockGeometryProblems(renderTimelineSvg({ timeline: short, cpus: [], kind: 'deadlock', headline: '' }), ['stats_lock', 'cfg_lock']).length).to.be.greaterThan(0);
    const noHold: TimelineJson = { ...tl, slices: tl.slices.map((s) => (s.kind === 'lock_hold' ? { ...s, kind: 'lock_spin' as const, name: `spins on ${s.name}` } : s)) };
    expect(deadlockGeometryProblems(renderTimelineSvg({ timeline: noHold, cpus: [], kind: 'deadlock', headline: '' }), ['stats_lock', 'cfg_lock'])).to.include('stats_lock: nobody is drawn holding it at the finding');
  });

  it('a finding at t=0 gets a visible window, its marker at t=0', () => {
    const log: TraceLog = {
      cpus: 1,
      end: 0,
      spans: [{ cpu: 0, lane: 'context', kind: 'task', name: 'init/1', start: 0, end: 0 }],
      instants: [{ cpu: 0, time: 0, kind: 'finding', cat: 'finding', name: 'BUG: sleeping function called from invalid context' }],
      counters: [],
    };
    const tl = timelineOf(log, 0, 1);
    expect(tl.end - tl.start).to.be.at.least(100);
    expect(tl.at).to.equal(0);
    expect(tl.instants.map((i) => i.kind)).to.deep.equal(['finding']);
    const svg = renderTimelineSvg({ timeline: tl, cpus: [0], kind: 'might_sleep', headline: 'x' });
    expect(/<g class="finding-marker" data-time="0">/.test(svg)).to.equal(true);
    const ticks = svg.match(/text-anchor="middle"/g) ?? [];
    expect(ticks.length, 'an axis with ticks, not a zero-width plot').to.be.greaterThan(2);
  });

  it('the page: report text first; time and machine state from the replay the timeline was drawn from; what each variant ran', () => {
    const tl = findingTimeline(def, 'buggy', { ...def.params, cpus: 2 }, two.schedule, undefined, undefined, two.fingerprint)!;
    const base = { kind: 'deadlock', fingerprint: 'fp', headline: 'deadlock', text: 'BUG: spinlock lockup suspected (report text)', iteration: 3, time: 987654, cpus: [0, 1], count: 1, logged: 1, stacks: [], schedule: 'orig', replay: 'irqsim replay abba x' };
    const finding = { ...base, cpuStates: [{ cpu: 0, task: 'from_the_hunt_run', pid: 9, context: 'task', irqsDisabled: false, preemptCount: '0x0', held: [], waitingFor: null, stack: [] }], timeline: tl };
    const results: ScenarioResults = {
      scenario: { id: 'abba', name: 'ABBA' },
      options: { strategy: 'random', iterations: 1000 },
      runs: [{ variant: 'buggy', expect: {}, verdict: 'as-expected', schedulesRun: 4, findings: [finding], metrics: {}, coverage: {}, options: runOptionsJson({ strategy: 'pct', iterations: 300, pctSteps: 40, window: Infinity }, { strategy: 'pct', seed: 7, iterations: 300 }) }],
    };
    const html = renderHtml(results);
    const art = html.slice(html.indexOf('<article class="finding"'));
    expect(art.indexOf('class="splat"')).to.be.within(0, art.indexOf('class="tl"'));
    expect(art.indexOf('class="splat"')).to.be.below(art.indexOf('<details class="state"'));
    expect(art.indexOf('class="splat"')).to.be.below(art.indexOf('<dl class="facts"'));
    // the state diagram is the replay's (kworker tasks), not the hunt run's
    expect(html).to.include('kworker/0:1');
    expect(html).to.not.include('from_the_hunt_run');
    expect(html).to.include(`${tl.run!.time} ns (in the replay drawn below; the hunt&#39;s schedule met it at 987654 ns)`);
    expect(html).to.include('ran with</dt><dd>strategy=pct seed=7 iterations=300 pctSteps=40 window=null');
    expect(html).to.include('<dt>asked</dt>');
    // without the run record: the hunt's own state and time, as before
    const plain = renderHtml({ ...results, runs: [{ ...results.runs[0], options: undefined, findings: [{ ...finding, timeline: { ...tl, run: undefined } }] }] });
    expect(plain).to.include('from_the_hunt_run');
    expect(plain).to.include('<dt>options</dt>');
  });
});
