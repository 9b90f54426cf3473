import { expect } from 'chai';
import { hunt, programHash, replay, runIteration } from '../../scheduler';
import { MACHINE_OBSERVER } from '../../lib/kernel/hooks';
import { scenarioProgram, type ScenarioDef } from '../../lib/scenario/define';
import { timelineOf, type ChromeEvent, type ChromeTrace } from '../../lib/report/trace';
import { findingTimeline, traceRun } from '../../lib/scenario/trace-run';
import irqSelf from '../../scenarios/irq-self-deadlock';
import s3 from '../../scenarios/s03-swiotlb-nvme';

const EPS = 1e-6;

/** Trace Event Format checks: JSON, ordering, nesting per track, track names. */
function checkSchema(trace: ChromeTrace, cpus: number): void {
  const back = JSON.parse(JSON.stringify(trace)) as ChromeTrace;
  expect(back.displayTimeUnit).to.equal('ns');
  expect(back.traceEvents.length).to.equal(trace.traceEvents.length);
  let last = -Infinity;
  const stacks = new Map<number, number[]>();
  let metaDone = false;
  for (const e of back.traceEvents) {
    expect(e.pid).to.equal(1);
    expect(Number.isInteger(e.tid)).to.equal(true);
    expect(Number.isFinite(e.ts)).to.equal(true);
    expect(['X', 'i', 'C', 'M']).to.include(e.ph);
    if (e.ph === 'M') {
      expect(metaDone, 'metadata first').to.equal(false);
      continue;
    }
    metaDone = true;
    expect(e.ts).to.be.at.least(last);
    last = e.ts;
    if (e.ph !== 'X') continue;
    expect(e.dur).to.be.a('number').and.at.least(0);
    let st = stacks.get(e.tid);
    if (st === undefined) stacks.set(e.tid, (st = []));
    while (st.length > 0 && st[st.length - 1] <= e.ts + EPS && e.dur! > 0) st.pop();
    while (st.length > 0 && st[st.length - 1] < e.ts - EPS) st.pop();
    if (st.length > 0) expect(st[st.length - 1] + EPS, `${e.name} at ${e.ts} nests on track ${e.tid}`).to.be.at.least(e.ts + e.dur!);
    st.push(e.ts + e.dur!);
  }
  for (let c = 0; c < cpus; c++) {
    expect(back.traceEvents.some((e) => e.ph === 'M' && e.name === 'thread_name' && e.tid === c && (e.args as { name: string }).name === `CPU ${c}`)).to.equal(true);
  }
}

const xs = (t: ChromeTrace, cat: string): ChromeEvent[] => t.traceEvents.filter((e) => e.ph === 'X' && e.cat === cat);
const inside = (a: ChromeEvent, b: ChromeEvent): boolean => b.ts <= a.ts + EPS && a.ts + a.dur! <= b.ts + b.dur! + EPS;

describe('trace: Chrome trace of one run', () => {
  const def = irqSelf as unknown as ScenarioDef;
  let schedule = '';

  before(() => {
    const h = hunt(scenarioProgram(def, 'buggy', def.params), { seed: 0, iterations: 500, stopWhenSeen: ['deadlock'], shrink: true });
    const d = h.findings.find((f) => f.kind === 'deadlock');
    expect(d, 'the hunt finds the self-deadlock').to.not.equal(undefined);
    schedule = d!.shrunk ?? d!.schedule;
  });

  it('tracing never changes the program hash', () => {
    const plain = scenarioProgram(def, 'buggy', def.params, { lockdep: true });
    const traced = scenarioProgram(def, 'buggy', def.params, { lockdep: true, [MACHINE_OBSERVER]: () => undefined });
    expect(programHash(traced, { window: 0 })).to.equal(programHash(plain, { window: 0 }));
  });

  it('replays a plain hunt schedule traced in strict mode: hardirq nested in the task, lock spans, irqs off, the finding', () => {
    const r = traceRun(def, 'buggy', def.params, { schedule });
    const plain = replay(scenarioProgram(def, 'buggy', def.params), schedule);
    expect(r.run.hash).to.equal(plain.hash);
    expect(r.run.metrics.steps).to.equal(plain.metrics.steps);
    expect(r.run.findings.map((f) => [f.fingerprint, f.text])).to.deep.equal(plain.findings.map((f) => [f.fingerprint, f.text]));
    const t = r.trace;
    checkSchema(t, 1);
    const tasks = xs(t, 'task');
    const irqs = xs(t, 'hardirq');
    expect(irqs.length).to.be.greaterThan(0);
    expect(irqs.some((h) => h.tid === 0 && tasks.some((k) => k.tid === 0 && inside(h, k)))).to.equal(true);
    const holds = xs(t, 'lock_hold').filter((e) => e.name === 'io_lock');
    expect(holds.length).to.be.greaterThan(0);
    // the handler spins on io_lock until the run ends: an open span, closed and marked
    const spins = xs(t, 'lock_spin');
    expect(spins.some((e) => e.name.includes('io_lock') && (e.args as { truncated?: boolean }).truncated === true)).to.equal(true);
    expect(xs(t, 'irqs_off').length).to.be.greaterThan(0);
    const found = t.traceEvents.filter((e) => e.ph === 'i' && e.cat === 'finding');
    expect(found.map((e) => (e.args as { kind: string }).kind)).to.include('deadlock');
    for (const e of found) expect((e.args as { text: string }).text.length).to.be.greaterThan(20);
    expect(found.every((e) => e.s === 'g')).to.equal(true);
    expect(t.otherData).to.include({ scenario: 'irq-self-deadlock', variant: 'buggy' });
  });

  it('a finding timeline: the lanes of the stretch before it, small', () => {
    const tl = findingTimeline(def, 'buggy', def.params, schedule)!;
    expect(tl).to.not.equal(undefined);
    expect(tl.cpus).to.equal(1);
    expect(tl.end).to.be.at.least(tl.start);
    expect(tl.slices.length).to.be.within(1, 300);
    for (const s of tl.slices) expect(s.end).to.be.at.least(s.start);
    expect(tl.slices.some((s) => s.kind === 'hardirq')).to.equal(true);
    expect(tl.slices.some((s) => s.lane === 'lock')).to.equal(true);
    expect(tl.instants.some((i) => i.kind === 'finding' && (i.text ?? '').length > 0)).to.equal(true);
    // the same from the Chrome encoding
    const r = traceRun(def, 'buggy', def.params, { schedule });
    const f = r.run.findings[0];
    const again = timelineOf(r.trace, f.time, 1);
    expect(again.slices.length).to.equal(timelineOf(r.log, f.time, 1).slices.length);
  });

  it('S3 buggy: a traced run takes the same path as an untraced one; swiotlb counter, hardirqs, locks, irqs off', function () {
    this.timeout(20000);
    const d3 = s3 as unknown as ScenarioDef;
    const v = d3.variants.find((x) => x.name === 'buggy')!;
    const opts = { ...d3.options, ...v.options };
    const plain = runIteration(scenarioProgram(d3, 'buggy', d3.params), { ...opts, iteration: 0, instrument: true });
    const r = traceRun(d3, 'buggy', d3.params);
    expect(r.run.hash).to.equal(plain.hash);
    expect(r.run.metrics.steps).to.equal(plain.metrics.steps);
    expect(r.run.findings.map((f) => [f.fingerprint, f.count, f.text])).to.deep.equal(plain.findings.map((f) => [f.fingerprint, f.count, f.text]));
    const t = r.trace;
    checkSchema(t, 4);
    const tasks = xs(t, 'task');
    // hardirq slices sit on a CPU's track, nested in the task they interrupted where one ran
    // (on this schedule they may all land on idle CPUs)
    const hard = xs(t, 'hardirq');
    expect(hard.length).to.be.greaterThan(0);
    for (const h of hard) for (const k of tasks) if (k.tid === h.tid && h.ts > k.ts && h.ts < k.ts + (k.dur ?? 0)) expect(inside(h, k)).to.equal(true);
    expect(xs(t, 'lock_hold').length).to.be.greaterThan(0);
    expect(xs(t, 'irqs_off').length).to.be.greaterThan(0);
    const counters = t.traceEvents.filter((e) => e.ph === 'C' && e.name === 'swiotlb slots');
    expect(counters.length).to.be.greaterThan(0);
    // S3's disk and NIC mappings all get dynamic buffers (the RFC's order), so its pool stays
    // empty; the nvme variant, refused dynamic buffers, fills the pool: the counter rises there
    const pooled = traceRun(d3, 'nvme', d3.params).trace.traceEvents.filter((e) => e.ph === 'C' && e.name === 'swiotlb slots');
    expect(pooled.some((e) => (e.args as { used: number }).used > 0)).to.equal(true);
    expect(t.traceEvents.some((e) => e.ph === 'i' && e.cat === 'alloc' && typeof (e.args as { bytes?: number }).bytes === 'number')).to.equal(true);
    expect(t.traceEvents.some((e) => e.ph === 'i' && e.cat === 'finding' && (e.args as { kind: string }).kind === 'lockdep')).to.equal(true);
  });
});
