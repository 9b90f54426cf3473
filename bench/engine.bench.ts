/**
 * Engine benchmark (not a test): `npm run bench`, or `npm run bench -- --quick` for a 10x
 * smaller smoke run.
 *
 * Figures, each for the engine with recording OFF (`instrument: false`) and ON
 * (`instrument: true`, which keeps the event log):
 *   (a) timed-mode steps/s, 1,000 threads looping on a random timeout (toys.timeouts)
 *   (b) timed-mode steps/s, 64 threads cycling through a capacity-4 resource (toys.contention)
 *   (c) schedules/s of hunt() on a 2-thread ~100-step race (toys.lostUpdate(2, 25)), under
 *       random walk and PCT depth 2
 * (a) and (b) are compared with a minimal hand-written generator + typed-array binary-heap loop
 * doing the same logical work (same threads, same events, one event per yield).
 *
 * Every figure: one smaller warm-up run, then the best of 3 timed runs (process.hrtime.bigint).
 */
import seedrandom from 'seedrandom';
import { setFlagsFromString } from 'v8';
import { runInNewContext } from 'vm';
import { Engine, type RunResult } from '../scheduler/engine';
import { calibrate, hunt } from '../scheduler/explorer';
import type { Program } from '../scheduler/program';
import { deriveSeed } from '../scheduler/rng';
import { makeStrategy, type StrategySpec } from '../scheduler/strategies';
import { contention, lostUpdate, timeouts } from '../scheduler/examples/toys';

const QUICK = process.argv.includes('--quick');
const SCALE = QUICK ? 10 : 1;
const SEED = 1;
const RUNS = 3;

const A_THREADS = 1000;
const A_EVENTS = 2_000_000 / SCALE;
const B_THREADS = 64;
const B_CAP = 4;
const B_HOLD = 50;
const B_THINK = 20;
const B_CYCLES = 500_000 / SCALE;
const C_ITERS = 20_000 / SCALE;
const RNG_CALLS = 5_000_000 / SCALE;

// ---------------------------------------------------------------------------------------
// timing helpers
// ---------------------------------------------------------------------------------------

interface Sample {
  /** seconds of the best timed run */
  secs: number;
  /** work units (events, steps or schedules) done by that run */
  units: number;
  /** free-form extra facts from the last run (cross-checks) */
  info: Record<string, number>;
}

interface Work {
  units: number;
  info?: Record<string, number>;
}

function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * A full collection before every timed run, so one figure does not pay for the garbage of
 * another (the event logs of recording-ON runs are hundreds of MB). `npm run bench` passes no
 * node flags, so turn --expose-gc on from here.
 */
function exposeGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}
const gc = exposeGc();

/** Warm up once with `warm`, then best of RUNS runs of `full`. */
function measure(warm: () => Work, full: () => Work): Sample {
  warm();
  let best: Sample | null = null;
  for (let i = 0; i < RUNS; i++) {
    if (gc) gc();
    const t0 = process.hrtime.bigint();
    const w = full();
    const secs = seconds(t0);
    if (best === null || w.units / secs > best.units / best.secs) best = { secs, units: w.units, info: w.info ?? {} };
  }
  return best!;
}

const rate = (s: Sample): number => s.units / s.secs;

// ---------------------------------------------------------------------------------------
// engine runs
// ---------------------------------------------------------------------------------------

function engineRun(program: Program, instrument: boolean): Work {
  const engine = new Engine({ window: 0, stepBudget: Infinity, instrument });
  let r: RunResult | null = engine.run(program, makeStrategy({ strategy: 'random' }), SEED, 100);
  if (r.endReason !== 'done' || r.findings.length > 0) {
    throw new Error(`${program.name}: run ended ${r.endReason} with ${r.findings.map((f) => f.headline).join('; ')}`);
  }
  const w: Work = {
    units: r.metrics.steps,
    info: { endTime: r.metrics.endTime, choices: r.metrics.choices, events: r.events ? r.events.length : 0 },
  };
  r = null; // drop the event log before the next run
  return w;
}

// ---------------------------------------------------------------------------------------
// baseline: hand-written generators + typed-array binary heap keyed by (time, id)
// ---------------------------------------------------------------------------------------

class MinHeap {
  private readonly ids: Int32Array;
  private readonly keys: Float64Array;
  size = 0;
  constructor(capacity: number) {
    this.ids = new Int32Array(capacity);
    this.keys = new Float64Array(capacity);
  }
  push(id: number, key: number): void {
    const ids = this.ids, keys = this.keys;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = keys[p];
      if (pk < key || (pk === key && ids[p] < id)) break;
      ids[i] = ids[p];
      keys[i] = pk;
      i = p;
    }
    ids[i] = id;
    keys[i] = key;
  }
  pop(): number {
    const ids = this.ids, keys = this.keys;
    const top = ids[0];
    const n = --this.size;
    if (n > 0) {
      const id = ids[n], key = keys[n];
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        const r = c + 1;
        if (r < n && (keys[r] < keys[c] || (keys[r] === keys[c] && ids[r] < ids[c]))) c = r;
        const ck = keys[c];
        if (key < ck || (key === ck && id < ids[c])) break;
        ids[i] = ids[c];
        keys[i] = ck;
        i = c;
      }
      ids[i] = id;
      keys[i] = key;
    }
    return top;
  }
}

const INV32 = 1 / 4294967296;

/** (a) A thread that waits `1 + rand(1000)` ns, `n` times (the same draw as toys.timeouts). */
function* timeoutThread(g: seedrandom.PRNG, n: number): Generator<number, void, unknown> {
  for (let k = 0; k < n; k++) yield 1 + Math.floor((g.int32() >>> 0) * INV32 * 1000);
}

function baselineTimeouts(threads: number, perThread: number): Work {
  // Same workload stream as the engine (Engine.rng is seeded with deriveSeed(seed, 0x5eed)),
  // so the run takes the same events in the same order and ends at the same time.
  const g = seedrandom.tychei(String(deriveSeed(SEED, 0x5eed)));
  const gens: Generator<number, void, unknown>[] = new Array(threads);
  const clock = new Float64Array(threads);
  const heap = new MinHeap(threads);
  for (let i = 0; i < threads; i++) {
    const gen = timeoutThread(g, perThread);
    gens[i] = gen;
    const r = gen.next(); // run to the first yield, as spawn does
    if (r.done === true) continue;
    clock[i] = r.value;
    heap.push(i, clock[i]);
  }
  let events = 0;
  while (heap.size > 0) {
    const i = heap.pop();
    events++;
    const r = gens[i].next();
    if (r.done === true) continue;
    const c = clock[i] + r.value;
    clock[i] = c;
    heap.push(i, c);
  }
  let end = 0;
  for (let i = 0; i < threads; i++) if (clock[i] > end) end = clock[i];
  return { units: events, info: { endTime: end } };
}

const ACQ = -1;
const REL = -2;
const RUN = 0;

/** (b) acquire / hold / release / think, `n` times; non-negative yields are delays in ns. */
function* cycleThread(n: number): Generator<number, void, unknown> {
  for (let k = 0; k < n; k++) {
    yield ACQ;
    yield B_HOLD;
    yield REL;
    yield B_THINK;
  }
}

function baselineContention(threads: number, cap: number, perThread: number): Work {
  const gens: Generator<number, void, unknown>[] = new Array(threads);
  const clock = new Float64Array(threads);
  /** What the thread asked for and the loop has not done yet: ACQ, REL, or RUN (just resume). */
  const pend = new Int8Array(threads);
  const heap = new MinHeap(threads);
  const fifo = new Int32Array(threads); // ring buffer of waiters
  let qHead = 0, qLen = 0;
  let free = cap;
  let blocked = 0;
  for (let i = 0; i < threads; i++) {
    const gen = cycleThread(perThread);
    gens[i] = gen;
    const r = gen.next();
    if (r.done === true) continue;
    if (r.value >= 0) {
      clock[i] = r.value;
      pend[i] = RUN;
    } else pend[i] = r.value;
    heap.push(i, clock[i]);
  }
  let events = 0;
  while (heap.size > 0) {
    const i = heap.pop();
    events++;
    const c = clock[i];
    const p = pend[i];
    if (p === ACQ) {
      if (free > 0) free--;
      else {
        // wait in FIFO order; release hands the unit over
        fifo[(qHead + qLen++) % threads] = i;
        blocked++;
        continue;
      }
    } else if (p === REL) {
      if (qLen > 0) {
        const w = fifo[qHead];
        qHead = (qHead + 1) % threads;
        qLen--;
        if (c > clock[w]) clock[w] = c; // the waiter resumes at the releaser's time
        pend[w] = RUN;
        heap.push(w, clock[w]);
      } else free++;
    }
    const r = gens[i].next();
    if (r.done === true) continue;
    const v = r.value;
    if (v >= 0) {
      clock[i] = c + v;
      pend[i] = RUN;
    } else pend[i] = v;
    heap.push(i, clock[i]);
  }
  if (free !== cap || qLen !== 0) throw new Error(`baseline contention ended with free=${free}, ${qLen} waiting`);
  let end = 0;
  for (let i = 0; i < threads; i++) if (clock[i] > end) end = clock[i];
  return { units: events, info: { endTime: end, blocked } };
}

// ---------------------------------------------------------------------------------------
// (c) schedules per second
// ---------------------------------------------------------------------------------------

function huntRun(program: Program, spec: StrategySpec, iterations: number): Work {
  const r = hunt(program, { ...spec, seed: SEED, iterations, stopAtFirst: false });
  const findingRuns = r.findings.reduce((s, f) => s + f.runs, 0);
  return { units: r.schedulesRun, info: { steps: r.totals.steps, findingRuns } };
}

/**
 * hunt() always runs with instrument: false, so recording ON is measured with the same loop
 * hunt runs (calibrate, then engine.run with seed deriveSeed(base, i)), minus its bookkeeping.
 * Run with instrument: false as well, so the ON/OFF ratio compares like with like.
 */
function huntLoop(program: Program, spec: StrategySpec, iterations: number, instrument: boolean): Work {
  const strategy = makeStrategy(spec);
  const engine = new Engine({ instrument });
  const expected = calibrate(program, engine, SEED);
  let steps = 0, events = 0;
  for (let i = 0; i < iterations; i++) {
    const r = engine.run(program, strategy, deriveSeed(SEED, i), expected);
    steps += r.metrics.steps;
    if (r.events) events += r.events.length;
  }
  return { units: iterations, info: { steps, events } };
}

// ---------------------------------------------------------------------------------------
// seedrandom cost per draw
// ---------------------------------------------------------------------------------------

function nsPerCall(make: () => () => number, calls: number): number {
  let best = Infinity;
  let sink = 0;
  for (let rep = 0; rep < 3; rep++) {
    const f = make();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) sink += f();
    const ns = Number(process.hrtime.bigint() - t0) / calls;
    if (ns < best) best = ns;
  }
  if (sink === 0.5) console.log(''); // keep the loop from being optimised away
  return best;
}

// ---------------------------------------------------------------------------------------
// formatting
// ---------------------------------------------------------------------------------------

function si(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(0);
}
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number): string => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? pad(c, widths[i]) : lpad(c, widths[i]))).join('  ');
}

// ---------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------

function main(): void {
  const started = process.hrtime.bigint();
  console.log(`irqsim engine bench${QUICK ? ' --quick (workloads / 10)' : ''}: node ${process.version} (${process.arch}), best of ${RUNS} after 1 warm-up${gc ? ', gc between runs' : ''}`);

  // (a) ----------------------------------------------------------------------------------
  const aPer = A_EVENTS / A_THREADS;
  const aProg = timeouts(A_THREADS, aPer);
  const aWarm = timeouts(A_THREADS, Math.max(1, Math.floor(aPer / 10)));
  const aBase = measure(() => baselineTimeouts(A_THREADS, Math.max(1, Math.floor(aPer / 10))), () => baselineTimeouts(A_THREADS, aPer));
  const aOff = measure(() => engineRun(aWarm, false), () => engineRun(aProg, false));
  const aOn = measure(() => engineRun(aWarm, true), () => engineRun(aProg, true));

  // (b) ----------------------------------------------------------------------------------
  const bPer = Math.ceil(B_CYCLES / B_THREADS);
  const bWarmPer = Math.ceil(bPer / 10);
  const bProg = contention(B_THREADS, B_CAP, bPer);
  const bWarm = contention(B_THREADS, B_CAP, bWarmPer);
  const bBase = measure(() => baselineContention(B_THREADS, B_CAP, bWarmPer), () => baselineContention(B_THREADS, B_CAP, bPer));
  const bOff = measure(() => engineRun(bWarm, false), () => engineRun(bProg, false));
  const bOn = measure(() => engineRun(bWarm, true), () => engineRun(bProg, true));

  // (c) ----------------------------------------------------------------------------------
  const cProg = lostUpdate(2, 25);
  const cWarm = Math.max(100, Math.floor(C_ITERS / 10));
  const specs: [string, StrategySpec][] = [
    ['random', { strategy: 'random' }],
    ['pct d=2', { strategy: 'pct', depth: 2 }],
  ];
  const cRes = specs.map(([label, spec]) => ({
    label,
    hunt: measure(() => huntRun(cProg, spec, cWarm), () => huntRun(cProg, spec, C_ITERS)),
    off: measure(() => huntLoop(cProg, spec, cWarm, false), () => huntLoop(cProg, spec, C_ITERS, false)),
    on: measure(() => huntLoop(cProg, spec, cWarm, true), () => huntLoop(cProg, spec, C_ITERS, true)),
  }));

  // seedrandom -----------------------------------------------------------------------------
  const arc4 = nsPerCall(() => seedrandom('1'), RNG_CALLS);
  const tyche = nsPerCall(() => seedrandom.tychei('1'), RNG_CALLS);
  const tycheInt = nsPerCall(() => {
    const g = seedrandom.tychei('1');
    return () => g.int32();
  }, RNG_CALLS);
  const alea = nsPerCall(() => seedrandom.alea('1'), RNG_CALLS);
  const seeds = Math.max(1000, RNG_CALLS / 100);
  const seedCost = (mk: (s: string) => unknown): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < seeds; i++) mk(String(i));
    return Number(process.hrtime.bigint() - t0) / seeds;
  };
  seedCost((s) => seedrandom.tychei(s)); // warm-up
  const seedArc4 = seedCost((s) => seedrandom(s));
  const seedTyche = seedCost((s) => seedrandom.tychei(s));
  const seedAlea = seedCost((s) => seedrandom.alea(s));

  // table ----------------------------------------------------------------------------------
  const W = [44, 11, 11, 11, 9, 8, 7];
  console.log('');
  console.log(row(['figure', 'engine OFF', 'engine ON', 'baseline', 'OFF/base', 'ON/base', 'ON/OFF'], W));
  console.log('-'.repeat(W.reduce((a, b) => a + b + 2, -2)));
  const ab = (name: string, off: Sample, on: Sample, base: Sample): void => {
    console.log(row([name, si(rate(off)), si(rate(on)), si(rate(base)), ratio(rate(off), rate(base)), ratio(rate(on), rate(base)), ratio(rate(on), rate(off))], W));
  };
  ab(`(a) timeouts ${A_THREADS} thr, steps/s`, aOff, aOn, aBase);
  ab(`(b) contention ${B_THREADS} thr cap ${B_CAP}, steps/s`, bOff, bOn, bBase);
  for (const c of cRes) {
    console.log(row([`(c) lostUpdate(2,25) ${c.label}, sched/s`, si(rate(c.hunt)), si(rate(c.on)), '-', '-', '-', ratio(rate(c.on), rate(c.off))], W));
  }
  console.log('');
  console.log('details');
  console.log(
    `  (a) ${si(aOff.units)} engine steps (${(aOff.secs * 1e3).toFixed(0)} ms OFF, ${(aOn.secs * 1e3).toFixed(0)} ms ON, ${si(aOn.info.events)} log lines), ` +
      `${si(aBase.units)} baseline events (${(aBase.secs * 1e3).toFixed(0)} ms); end time engine ${aOff.info.endTime} ns, baseline ${aBase.info.endTime} ns` +
      (aOff.info.endTime === aBase.info.endTime ? ' (same path)' : ' (DIFFERENT)'),
  );
  console.log(
    `  (b) ${bPer * B_THREADS} cycles: ${si(bOff.units)} engine steps (${(bOff.secs * 1e3).toFixed(0)} ms OFF, ${(bOn.secs * 1e3).toFixed(0)} ms ON), ` +
      `${si(bBase.units)} baseline events (${(bBase.secs * 1e3).toFixed(0)} ms, ${si(bBase.info.blocked)} acquires waited); ` +
      `${si(bOff.info.choices)} tie choices; end time engine ${bOff.info.endTime} ns, baseline ${bBase.info.endTime} ns`,
  );
  for (const c of cRes) {
    const h = c.hunt;
    console.log(
      `  (c) ${c.label}: hunt() ${h.units} schedules in ${(h.secs * 1e3).toFixed(0)} ms, steps/schedule ${(h.info.steps / h.units).toFixed(1)}, ` +
        `${((100 * h.info.findingRuns) / h.units).toFixed(1)}% with a finding; ` +
        `run loop (hunt minus bookkeeping) OFF ${si(rate(c.off))}/s, ON ${si(rate(c.on))}/s (${(c.on.info.events / c.on.units).toFixed(0)} log lines/schedule)`,
    );
  }
  console.log(
    `  seedrandom per draw (${si(RNG_CALLS)} calls): ARC4 () ${arc4.toFixed(1)} ns, tychei () ${tyche.toFixed(1)} ns, tychei .int32() ${tycheInt.toFixed(1)} ns, alea () ${alea.toFixed(1)} ns` +
      ` | per seeding: ARC4 ${(seedArc4 / 1e3).toFixed(2)} us, tychei ${(seedTyche / 1e3).toFixed(2)} us, alea ${(seedAlea / 1e3).toFixed(2)} us (project uses tychei)`,
  );
  console.log('');
  const ok = (b: boolean): string => (b ? 'met' : 'NOT met');
  const aR = rate(aOff) / rate(aBase), bR = rate(bOff) / rate(bBase);
  const cMin = Math.min(...cRes.map((c) => rate(c.hunt)));
  console.log('targets');
  console.log(`  (a) engine OFF >= 0.70x baseline: ${aR.toFixed(2)}x ${ok(aR >= 0.7)}`);
  console.log(`  (b) engine OFF >= 0.70x baseline: ${bR.toFixed(2)}x ${ok(bR >= 0.7)}`);
  console.log(`  (c) >= 50,000 schedules/s (hunt, recording OFF): ${cRes.map((c) => `${c.label} ${si(rate(c.hunt))}`).join(', ')} ${ok(cMin >= 50_000)}`);
  console.log('  (c) ON column: hunt() forces instrument off, so ON is its run loop with instrument: true; ON/OFF compares that loop ON vs OFF.');
  console.log(`total ${seconds(started).toFixed(1)} s`);
}

main();
