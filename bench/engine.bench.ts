/**
 * Engine benchmark (not a test): `npm run bench`, or `npm run bench -- --quick` for a 10x
 * smaller smoke run.
 *
 * Figures, each for the engine with recording OFF (`instrument: false, recordPath: false`: a
 * hunt's light run, the way hunt() runs every seeded schedule) and ON (`instrument: true`,
 * which keeps the path and the event log):
 *   (a) timed-mode steps/s, 1,000 threads looping on a random timeout (toys.timeouts)
 *   (b) timed-mode steps/s, 64 threads cycling through a capacity-4 resource (toys.contention)
 *   (c) schedules/s of hunt() on a 2-thread 100-step race (toys.depth2(50): two threads of 50
 *       visible steps and an ordering bug PCT(d=2) finds in about 1 run of 200 and random walk
 *       practically never), under random walk and PCT depth 2
 * (a) and (b) are compared with a minimal hand-written generator + typed-array binary-heap loop
 * doing the same logical work (same threads, same events, one event per yield); (b)'s reference
 * is that loop with acquire/release as `yield*` helpers, whose ratio to the engine holds steady
 * from run to run where the plain loop's absolute rate swings (both are printed).
 *
 * `--only b` measures (b) alone, without recording ON (add `--on`): the quick form for engine work.
 *
 * Every figure: one smaller warm-up run, then the best of 5 timed runs (process.hrtime.bigint),
 * the runs of one workload's variants interleaved, with a full GC before each. Each figure is
 * measured in a process of its own (`--figure x`, as JMH forks a JVM per benchmark), and so is
 * recording ON: in one process the code of one workload is compiled with the type feedback of
 * the others, which moved (b)'s loops by 10-30% depending on what ran before them. Randomness comes
 * from seedrandom's tychei only (as the engine's); nothing here calls Math.random.
 */
import seedrandom from 'seedrandom';
import { execFileSync } from 'child_process';
import { cpus } from 'os';
import { resolve } from 'path';
import { setFlagsFromString } from 'v8';
import { runInNewContext } from 'vm';
import { Engine, type RunResult } from '../scheduler/engine';
import { calibrate, hunt } from '../scheduler/explorer';
import type { Program } from '../scheduler/program';
import { Rng, deriveSeed } from '../scheduler/rng';
import { makeStrategy, type StrategySpec } from '../scheduler/strategies';
import { contention, depth2, timeouts } from '../scheduler/examples/toys';
import { scenarioProgram, type ScenarioDef } from '../lib/scenario/define';
import abba from '../scenarios/abba';

const QUICK = process.argv.includes('--quick');
/** `--only b`: figure (b) alone (the engine's step rate against the minimal loop), for engine work. */
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
/** `--figure x`: measure figure x alone and print its samples as JSON (the main run forks one per figure). */
const FIGURE = process.argv.includes('--figure') ? process.argv[process.argv.indexOf('--figure') + 1] : null;
const JSON_MARK = '@@figure ';

/**
 * Figure `name`: in the main run, measured by a child process of its own; in that child, by
 * `run`, whose result goes back as JSON and ends the child. A child skips the other figures.
 */
function figure<T>(name: string, run: () => T): T {
  if (FIGURE === name) {
    process.stdout.write(`${JSON_MARK}${JSON.stringify(run())}\n`);
    process.exit(0);
  }
  if (FIGURE !== null) return {} as T; // another figure's child: not needed there
  const out = execFileSync(process.execPath, ['-r', require.resolve('ts-node/register/transpile-only'), __filename, '--figure', name, ...(QUICK ? ['--quick'] : []), ...(ON_TOO ? ['--on'] : [])], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = out.split('\n').find((l) => l.startsWith(JSON_MARK));
  if (line === undefined) throw new Error(`bench figure ${name}: the child printed no result`);
  return JSON.parse(line.slice(JSON_MARK.length)) as T;
}
/** `--only b --on`: (b) with recording ON as well. */
const ON_TOO = process.argv.includes('--on');

/**
 * The processes (a) and (b), the two figures set against a baseline, are each measured in. A
 * process keeps the code the JIT made early for its whole life, and on this machine about one
 * process in ten ran the engine up to a fifth slower throughout while the baselines beside it
 * did not move: three forks, the one with the median engine/baseline ratio kept, every fork's
 * ratio printed (as JMH runs each benchmark in several forks).
 */
const FORKS = QUICK ? 1 : 3;

/** A ratio figure measured in FORKS processes: the fork with the median `ratioOf`, and every fork's ratio. */
function forkedFigure<T>(name: string, run: () => T, ratioOf: (x: T) => number): { kept: T; ratios: number[] } {
  if (FIGURE !== null) return { kept: figure(name, run), ratios: [] }; // a child: this figure or none
  const all: T[] = [];
  for (let i = 0; i < FORKS; i++) all.push(figure(name, run));
  const sorted = [...all].sort((x, y) => ratioOf(x) - ratioOf(y));
  return { kept: sorted[(sorted.length - 1) >> 1], ratios: all.map(ratioOf) };
}
const forkRatios = (rs: number[]): string => `${rs.map((r) => `${r.toFixed(2)}x`).join(', ')} in ${rs.length} process${rs.length === 1 ? '' : 'es'}, the median kept`;

const SCALE = QUICK ? 10 : 1;
const SEED = 1;
const RUNS = 5;

const A_THREADS = 1000;
const A_EVENTS = 2_000_000 / SCALE;
const B_THREADS = 64;
const B_CAP = 4;
const B_HOLD = 50;
const B_THINK = 20;
const B_CYCLES = 500_000 / SCALE;
const C_ITERS = 20_000 / SCALE;
const RNG_CALLS = 5_000_000 / SCALE;
/** (e): the most schedules plain DFS gets (DPOR needs a few hundred). */
const E_CAP = 20_000 / SCALE;

// ---------------------------------------------------------------------------------------
// timing helpers
// ---------------------------------------------------------------------------------------

interface Sample {
  /** seconds of the best timed run */
  secs: number;
  /** work units (events, steps or schedules) done by that run */
  units: number;
  /** free-form extra facts from that run (cross-checks) */
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

interface Variant {
  key: string;
  /** the smaller warm-up run */
  warm: () => Work;
  /** the timed run */
  full: () => Work;
}

/**
 * Warm every variant up once (a smaller run), then RUNS rounds that time each variant in turn;
 * keep each variant's best run. Interleaving the rounds spreads background noise (this runs on
 * shared 2-core machines) over all variants instead of letting a burst hit one figure.
 */
function measure(variants: Variant[]): Record<string, Sample> {
  for (const v of variants) v.warm();
  const best: Record<string, Sample> = {};
  for (let round = 0; round < RUNS; round++) {
    for (const v of variants) {
      if (gc) gc();
      const t0 = process.hrtime.bigint();
      const w = v.full();
      const secs = seconds(t0);
      const b = best[v.key];
      if (b === undefined || w.units / secs > b.units / b.secs) best[v.key] = { secs, units: w.units, info: w.info ?? {} };
    }
  }
  return best;
}

const rate = (s: Sample): number => s.units / s.secs;

// ---------------------------------------------------------------------------------------
// engine runs
// ---------------------------------------------------------------------------------------

/**
 * One engine per workload and recording mode, reused by its warm-up and every timed run, as
 * hunt() reuses its engine across schedules. An engine made afresh for each run measured cold
 * code: the forced GC before a run collected the last run's engine objects, V8 let their hidden
 * classes (maps) die with them (map transitions are held weakly), and every optimized function
 * compiled against those maps was thrown away ("weak objects" in --trace-deopt), so each timed
 * run paid for the engine's JIT warm-up again (about 20% of (b)'s run).
 */
const engines = new Map<string, Engine>();

function engineRun(program: Program, instrument: boolean): Work {
  const key = `${program.name}/${instrument ? 'on' : 'off'}`;
  let engine = engines.get(key);
  if (engine === undefined) {
    engine = new Engine({ window: 0, stepBudget: Infinity, instrument, recordPath: instrument });
    engines.set(key, engine);
  }
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

/**
 * The last heap of each baseline, kept reachable between runs: for the same reason as the
 * reused engines (engineRun), the forced GC before a run must not drop the heap's hidden class
 * and with it the baseline's compiled code.
 */
const lastHeaps = new Map<string, MinHeap>();

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
    const top = this.ids[0];
    const n = --this.size;
    if (n > 0) this.down(this.ids[n], this.keys[n]);
    return top;
  }
  peek(): number {
    return this.ids[0];
  }
  /** Give the minimum a new key: one sift instead of a pop and a push. */
  replaceTop(key: number): void {
    this.down(this.ids[0], key);
  }
  /** Put (id, key) at the root hole and sift it down. */
  private down(id: number, key: number): void {
    const ids = this.ids, keys = this.keys;
    const n = this.size;
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
}

const INV32 = 1 / 4294967296;

/** (a) A thread that waits `1 + rand(1000)` ns, `n` times (the same draw as toys.timeouts). */
function* timeoutThread(g: seedrandom.PRNG, n: number): Generator<number, void, unknown> {
  for (let k = 0; k < n; k++) yield 1 + Math.floor((g.int32() >>> 0) * INV32 * 1000);
}

/**
 * `replaceTop`: instead of popping the thread and pushing it back, give the root its new key
 * and sift once (what the engine does for a unique minimum). Not the reference baseline; shown
 * in the details to say how much of the gap is heap discipline.
 */
function baselineTimeouts(threads: number, perThread: number, replaceTop = false): Work {
  // Same workload stream as the engine (Engine.rng is seeded with deriveSeed(seed, 0x5eed)),
  // so the run takes the same events in the same order and ends at the same time.
  const g = seedrandom.tychei(String(deriveSeed(SEED, 0x5eed)));
  const gens: Generator<number, void, unknown>[] = new Array(threads);
  const clock = new Float64Array(threads);
  const heap = new MinHeap(threads);
  lastHeaps.set('a', heap);
  for (let i = 0; i < threads; i++) {
    const gen = timeoutThread(g, perThread);
    gens[i] = gen;
    const r = gen.next(); // run to the first yield, as spawn does
    if (r.done === true) continue;
    clock[i] = r.value;
    heap.push(i, clock[i]);
  }
  let events = 0;
  if (replaceTop) {
    while (heap.size > 0) {
      const i = heap.peek();
      events++;
      const r = gens[i].next();
      if (r.done === true) {
        heap.pop();
        continue;
      }
      const c = clock[i] + r.value;
      clock[i] = c;
      heap.replaceTop(c);
    }
  } else {
    while (heap.size > 0) {
      const i = heap.pop();
      events++;
      const r = gens[i].next();
      if (r.done === true) continue;
      const c = clock[i] + r.value;
      clock[i] = c;
      heap.push(i, c);
    }
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

function* acquireHelper(): Generator<number, void, unknown> {
  yield ACQ;
}
function* releaseHelper(): Generator<number, void, unknown> {
  yield REL;
}
/**
 * The same thread written as toys.contention is, with acquire and release as helper
 * generators called by `yield*` (one generator object per call, resumed through delegation).
 * Not the reference baseline; shown in the details to separate the cost of the program's
 * shape from the engine's.
 */
function* cycleThreadDelegating(n: number): Generator<number, void, unknown> {
  for (let k = 0; k < n; k++) {
    yield* acquireHelper();
    yield B_HOLD;
    yield* releaseHelper();
    yield B_THINK;
  }
}

function baselineContention(threads: number, cap: number, perThread: number, body: (n: number) => Generator<number, void, unknown> = cycleThread): Work {
  const gens: Generator<number, void, unknown>[] = new Array(threads);
  const clock = new Float64Array(threads);
  /** What the thread asked for and the loop has not done yet: ACQ, REL, or RUN (just resume). */
  const pend = new Int8Array(threads);
  const heap = new MinHeap(threads);
  lastHeaps.set('b', heap);
  const fifo = new Int32Array(threads); // ring buffer of waiters
  let qHead = 0, qLen = 0;
  let free = cap;
  let blocked = 0;
  for (let i = 0; i < threads; i++) {
    const gen = body(perThread);
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

/** The commit measured, and whether scheduler/ differs from it (the engine is being worked on). */
function revision(): string {
  try {
    const opts = { cwd: resolve(__dirname, '..'), encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ('ignore' | 'pipe')[] };
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'scheduler'], opts).trim() !== '';
    return `${head}${dirty ? ' + uncommitted scheduler/ changes' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** (b)'s ratio: the engine against the minimal loop with yield* helpers. */
const bRatio = (x: { b: Record<string, Sample> }): number => rate(x.b.off) / rate(x.b.baseDeleg);

/** (b): the engine against the minimal loop on toys.contention, runs interleaved. */
function figureB(): { b: Record<string, Sample>; bPer: number } {
  const bPer = Math.ceil(B_CYCLES / B_THREADS);
  const bWarmPer = Math.ceil(bPer / 10);
  const bProg = contention(B_THREADS, B_CAP, bPer);
  const bWarm = contention(B_THREADS, B_CAP, bWarmPer);
  const b = measure([
    { key: 'base', warm: () => baselineContention(B_THREADS, B_CAP, bWarmPer), full: () => baselineContention(B_THREADS, B_CAP, bPer) },
    {
      key: 'baseDeleg',
      warm: () => baselineContention(B_THREADS, B_CAP, bWarmPer, cycleThreadDelegating),
      full: () => baselineContention(B_THREADS, B_CAP, bPer, cycleThreadDelegating),
    },
    { key: 'off', warm: () => engineRun(bWarm, false), full: () => engineRun(bProg, false) },
    ...(ON_TOO ? [{ key: 'on', warm: () => engineRun(bWarm, true), full: () => engineRun(bProg, true) }] : []),
  ]);
  return { b, bPer };
}

/**
 * Recording ON of a timed-mode figure, in a process of its own: run beside OFF, the engine's
 * code is compiled with the event log's paths taken too, and OFF measured 8-15% slower.
 */
function figureOn(prog: Program, warm: Program): Sample {
  return measure([{ key: 'on', warm: () => engineRun(warm, true), full: () => engineRun(prog, true) }]).on;
}

/** (b) alone (`--only b`): the table row and the detail lines. */
function printB(b: Record<string, Sample>, bPer: number, ratios: number[]): void {
  const ms = (x: Sample): string => `${(x.secs * 1e3).toFixed(0)} ms`;
  console.log(`(b) contention(${B_THREADS}, ${B_CAP}, ${bPer}): engine OFF ${si(rate(b.off))} steps/s (${ms(b.off)}), ${b.on ? `ON ${si(rate(b.on))}, ` : ''}` +
    `baseline ${si(rate(b.base))} (${ms(b.base)}), baseline with yield* helpers ${si(rate(b.baseDeleg))}`);
  console.log(`    OFF/baseline ${ratio(rate(b.off), rate(b.base))}, OFF/yield*-baseline ${ratio(rate(b.off), rate(b.baseDeleg))}; ` +
    `same work: ${b.off.units === b.base.units && b.off.info.endTime === b.base.info.endTime ? 'yes' : 'NO'}; target OFF/yield*-baseline >= 0.50x: ` +
    `${rate(b.off) / rate(b.baseDeleg) >= 0.5 ? 'met' : 'NOT met'} (reference: the yield* baseline)`);
  console.log(`    OFF/yield*-baseline ${forkRatios(ratios)}`);
}

function main(): void {
  const started = process.hrtime.bigint();
  if (FIGURE === null) console.log(
    `irqsim engine bench${QUICK ? ' --quick (workloads / 10)' : ''}: node ${process.version} ${process.arch}, ${cpus().length} cpu(s), ` +
      `revision ${revision()}; best of ${RUNS} interleaved runs after 1 warm-up${gc ? ', full gc before each' : ''}; (a) and (b) in ${FORKS} process${FORKS === 1 ? '' : 'es'} each`,
  );

  if (ONLY === 'b') {
    const fb = forkedFigure('b', figureB, bRatio);
    printB(fb.kept.b, fb.kept.bPer, fb.ratios);
    console.log(`total ${seconds(started).toFixed(1)} s`);
    return;
  }

  // (a) ----------------------------------------------------------------------------------
  const aPer = A_EVENTS / A_THREADS;
  const aWarmPer = Math.max(1, Math.floor(aPer / 10));
  const aProg = timeouts(A_THREADS, aPer);
  const aWarm = timeouts(A_THREADS, aWarmPer);
  const fa = forkedFigure(
    'a',
    () =>
      measure([
        { key: 'base', warm: () => baselineTimeouts(A_THREADS, aWarmPer), full: () => baselineTimeouts(A_THREADS, aPer) },
        { key: 'baseTop', warm: () => baselineTimeouts(A_THREADS, aWarmPer, true), full: () => baselineTimeouts(A_THREADS, aPer, true) },
        { key: 'off', warm: () => engineRun(aWarm, false), full: () => engineRun(aProg, false) },
      ]),
    (x) => rate(x.off) / rate(x.base),
  );
  const a = fa.kept;
  a.on = figure('a-on', () => figureOn(aProg, aWarm));

  // (b) ----------------------------------------------------------------------------------
  const fbk = forkedFigure('b', figureB, bRatio);
  const fb = fbk.kept;
  const b = fb.b ?? {}; // (another figure's child gets nothing)
  const bPer = fb.bPer;
  b.on = figure('b-on', () => {
    const per = Math.ceil(B_CYCLES / B_THREADS);
    return figureOn(contention(B_THREADS, B_CAP, per), contention(B_THREADS, B_CAP, Math.ceil(per / 10)));
  });

  // (c) ----------------------------------------------------------------------------------
  const cProg = depth2(50);
  const cWarm = Math.max(100, Math.floor(C_ITERS / 10));
  const specs: [string, string, StrategySpec][] = [
    ['rw', 'random walk', { strategy: 'random' }],
    ['pct', 'PCT d=2', { strategy: 'pct', depth: 2 }],
  ];
  const c = figure('c', () =>
    measure(
      specs.flatMap(([k, , spec]): Variant[] => [
        { key: `${k}-hunt`, warm: () => huntRun(cProg, spec, cWarm), full: () => huntRun(cProg, spec, C_ITERS) },
        { key: `${k}-off`, warm: () => huntLoop(cProg, spec, cWarm, false), full: () => huntLoop(cProg, spec, C_ITERS, false) },
        { key: `${k}-on`, warm: () => huntLoop(cProg, spec, cWarm, true), full: () => huntLoop(cProg, spec, C_ITERS, true) },
      ]),
    ),
  );

  // (d) ABBA scenario, every detector on ------------------------------------------------------
  // The fixed variant: every schedule runs to the end (the buggy one stops at its deadlock).
  // Lockdep on (the default) against lockdep off, same schedules: the validator's cost.
  const dProg = scenarioProgram(abba as unknown as ScenarioDef, 'fixed', abba.params);
  const dProgNoLd = scenarioProgram(abba as unknown as ScenarioDef, 'fixed', abba.params, { lockdep: false });
  const d = figure('d', () =>
    measure([
      { key: 'hunt', warm: () => huntRun(dProg, { strategy: 'random' }, cWarm / 4), full: () => huntRun(dProg, { strategy: 'random' }, C_ITERS / 4) },
      { key: 'noLd', warm: () => huntRun(dProgNoLd, { strategy: 'random' }, cWarm / 4), full: () => huntRun(dProgNoLd, { strategy: 'random' }, C_ITERS / 4) },
    ]),
  );

  // (e) DPOR against plain DFS, same run -------------------------------------------------------
  // The fixed ABBA at 3 CPUs and 2 rounds: DPOR runs until its tree is exhausted; plain DFS
  // (unbounded, the same step budget) runs until exhausted or E_CAP schedules, so its figure is
  // then a lower bound and the ratio too. One timed run each (they are long), DPOR first.
  const eParams = { ...abba.params, cpus: 3, rounds: 2 };
  const eProg = scenarioProgram(abba as unknown as ScenarioDef, 'fixed', eParams);
  const eRun = (spec: StrategySpec, cap: number) => {
    gc?.();
    const t0 = process.hrtime.bigint();
    const r = hunt(eProg, { ...spec, iterations: cap, stopAtFirst: false, instrument: false });
    return { secs: seconds(t0), schedules: r.schedulesRun, search: r.search ?? 'none', traces: r.dpor?.traces ?? 0, findings: r.findings.length };
  };
  const { eDpor, eDfs } = figure('e', () => ({ eDpor: eRun({ strategy: 'dpor' }, E_CAP), eDfs: eRun({ strategy: 'dfs' }, E_CAP) }));

  // seedrandom -----------------------------------------------------------------------------
  const arc4 = nsPerCall(() => seedrandom('1'), RNG_CALLS);
  const tyche = nsPerCall(() => seedrandom.tychei('1'), RNG_CALLS);
  const tycheInt = nsPerCall(() => {
    const g = seedrandom.tychei('1');
    return () => g.int32();
  }, RNG_CALLS);
  const alea = nsPerCall(() => seedrandom.alea('1'), RNG_CALLS);
  const ours = nsPerCall(() => {
    const g = new Rng(1);
    return () => g.int(1000);
  }, RNG_CALLS);
  const seeds = Math.max(2000, RNG_CALLS / 250);
  const seedCost = (mk: (s: string) => unknown): number => {
    mk('warm');
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < seeds; i++) mk(String(i));
    return Number(process.hrtime.bigint() - t0) / seeds;
  };
  const seedArc4 = seedCost((x) => seedrandom(x));
  const seedTyche = seedCost((x) => seedrandom.tychei(x));
  const seedAlea = seedCost((x) => seedrandom.alea(x));

  // table ----------------------------------------------------------------------------------
  const W = [36, 11, 11, 11, 9, 8, 7];
  console.log('');
  console.log(row(['figure', 'engine OFF', 'engine ON', 'baseline', 'OFF/base', 'ON/base', 'ON/OFF'], W));
  console.log('-'.repeat(W.reduce((x, y) => x + y + 2, -2)));
  const ab = (name: string, off: Sample, on: Sample, base: Sample): void => {
    console.log(row([name, si(rate(off)), si(rate(on)), si(rate(base)), ratio(rate(off), rate(base)), ratio(rate(on), rate(base)), ratio(rate(on), rate(off))], W));
  };
  ab(`(a) timeouts ${A_THREADS} thr      steps/s`, a.off, a.on, a.base);
  // (b)'s reference is the minimal loop with yield* helpers: its ratio to the engine is the stable one run to run.
  ab(`(b) contention ${B_THREADS} thr cap ${B_CAP} steps/s`, b.off, b.on, b.baseDeleg);
  for (const [k, label] of specs) {
    const hOff = c[`${k}-hunt`], lOff = c[`${k}-off`], lOn = c[`${k}-on`];
    console.log(row([`(c) race, ${label}`.padEnd(24) + 'sched/s', si(rate(hOff)), si(rate(lOn)), '-', '-', '-', `${ratio(rate(lOn), rate(lOff))}*`], W));
  }
  console.log(row(['(d) ABBA, all detectors'.padEnd(24) + 'sched/s', si(rate(d.hunt)), '-', '-', '-', '-', '-'], W));
  console.log(row(['(d) ABBA, lockdep off'.padEnd(24) + 'sched/s', si(rate(d.noLd)), '-', '-', '-', '-', `${ratio(rate(d.hunt), rate(d.noLd))}†`], W));

  const geq = (x: { search: string }): string => (x.search === 'exhausted' ? '' : '>= ');
  const eRatio = eDfs.schedules / eDpor.schedules;
  console.log(
    row(['(e) ABBA 3cpu 2rnd, DPOR'.padEnd(24) + 'sched', String(eDpor.schedules), '-', `${geq(eDfs)}${eDfs.schedules}`, '-', '-', `${geq(eDfs)}${eRatio.toFixed(0)}x‡`], W),
  );

  const ms = (x: Sample): string => `${(x.secs * 1e3).toFixed(0)} ms`;
  console.log('');
  console.log('details');
  console.log(
    `  (a) timeouts(${A_THREADS}, ${aPer}), timed mode, random: engine ${si(a.off.units)} steps (${ms(a.off)} OFF, ${ms(a.on)} ON with ${si(a.on.info.events)} log lines); ` +
      `baseline ${si(a.base.units)} events (${ms(a.base)}); end time engine ${a.off.info.endTime} ns, baseline ${a.base.info.endTime} ns` +
      (a.off.info.endTime === a.base.info.endTime && a.off.units === a.base.units ? ' (same events)' : ' (DIFFERENT WORK)'),
  );
  console.log(
    `      baseline with replace-top (one sift per event, as the engine does for a unique minimum): ${si(rate(a.baseTop))} events/s; engine OFF is ${ratio(rate(a.off), rate(a.baseTop))} of it`,
  );
  console.log(
    `  (b) contention(${B_THREADS}, ${B_CAP}, ${bPer}) = ${bPer * B_THREADS} cycles: engine ${si(b.off.units)} steps (${ms(b.off)} OFF, ${ms(b.on)} ON), ` +
      `${si(b.off.info.choices)} tie choices; baseline ${si(b.base.units)} events (${ms(b.base)}, ${si(b.base.info.blocked)} acquires waited); ` +
      `end time engine ${b.off.info.endTime} ns, baseline ${b.base.info.endTime} ns`,
  );
  console.log(
    `      baseline (the table's) with acquire/release as yield* helper generators: ${si(rate(b.baseDeleg))} events/s; without them (plain yields): ${si(rate(b.base))} events/s, engine OFF is ${ratio(rate(b.off), rate(b.base))} of that`,
  );
  for (const [k, label] of specs) {
    const h = c[`${k}-hunt`], lOff = c[`${k}-off`], lOn = c[`${k}-on`];
    console.log(
      `  (c) depth2(50), ${label}: hunt() ${h.units} schedules in ${ms(h)}, steps/schedule ${(h.info.steps / h.units).toFixed(1)}, ` +
        `${((100 * h.info.findingRuns) / h.units).toFixed(1)}% with a finding; bare run loop OFF ${si(rate(lOff))}/s, ON ${si(rate(lOn))}/s (${(lOn.info.events / lOn.units).toFixed(0)} log lines/schedule)`,
    );
  }
  console.log(
    `  (e) abba fixed ${JSON.stringify(eParams)}: DPOR ${eDpor.schedules} schedules (${eDpor.traces} traces), search ${eDpor.search}, ${eDpor.secs.toFixed(1)} s; ` +
      `plain DFS ${eDfs.schedules} schedules, search ${eDfs.search}${eDfs.search === 'exhausted' ? '' : ` (cap ${E_CAP})`}, ${eDfs.secs.toFixed(1)} s; ` +
      `findings ${eDpor.findings}/${eDfs.findings}`,
  );
  console.log(
    `  seedrandom, ns per draw over ${si(RNG_CALLS)} calls: ARC4 seedrandom(s)() ${arc4.toFixed(1)}, tychei() ${tyche.toFixed(1)}, tychei.int32() ${tycheInt.toFixed(1)}, alea() ${alea.toFixed(1)}; our tyche-i Rng.int() ${ours.toFixed(1)}` +
      ` | us per seeding: ARC4 ${(seedArc4 / 1e3).toFixed(2)}, tychei ${(seedTyche / 1e3).toFixed(2)}, alea ${(seedAlea / 1e3).toFixed(2)} (the project draws tyche-i through its own Rng, the same numbers as tychei .int32())`,
  );

  console.log('');
  const ok = (x: boolean): string => (x ? 'met' : 'NOT met');
  const aR = rate(a.off) / rate(a.base), bR = rate(b.off) / rate(b.baseDeleg);
  const cMin = Math.min(...specs.map(([k]) => rate(c[`${k}-hunt`])));
  console.log('targets');
  console.log(`  (a) engine OFF >= 0.70x baseline: ${aR.toFixed(2)}x, ${ok(aR >= 0.7)} (${forkRatios(fa.ratios)})`);
  console.log(`  (b) engine OFF >= 0.50x baseline (acceptance; goal 0.70x): ${bR.toFixed(2)}x, ${ok(bR >= 0.5)} (${forkRatios(fbk.ratios)})`);
  console.log(`  (c) hunt() >= 50,000 schedules/s: ${specs.map(([k, label]) => `${label} ${si(rate(c[`${k}-hunt`]))}`).join(', ')}, ${ok(cMin >= 50_000)}`);
  const ldR = rate(d.hunt) / rate(d.noLd);
  console.log(`  (d) ABBA hunt with lockdep on >= 0.5x lockdep off: ${ldR.toFixed(2)}x, ${ok(ldR >= 0.5)}`);
  const eOk = eDpor.search === 'exhausted' && eRatio >= 10 && eDpor.secs <= 60;
  console.log(`  (e) DPOR exhausts ABBA 3 cpus 2 rounds within 60 s with >= 10x fewer schedules than plain DFS: ${eRatio.toFixed(0)}x in ${eDpor.secs.toFixed(1)} s, ${ok(eOk)}`);
  console.log('notes');
  console.log('  (c) engine OFF is hunt() itself. hunt() always runs with instrument: false, so engine ON is the same run loop');
  console.log('      (calibrate, then engine.run per iteration seed) with instrument: true, and ON/OFF (*) is that loop ON vs OFF.');
  console.log('  (e) ‡ is plain DFS schedules / DPOR schedules, OFF column DPOR, baseline column plain DFS; ">=": plain DFS hit its cap (20,000; 2,000 with --quick, too few for the target).');
  console.log('  (d) † is lockdep on / lockdep off, the same schedules of the fixed ABBA variant with every other detector on.');
  console.log('  (b) baseline column: the minimal loop with acquire/release as yield* helpers (issue 21\'s stable reference: the plain-yield loop\'s rate swung 6.9-22M in its runs); the plain one is in the details.');
  console.log('  (b) the engine puts every tie between visible steps at equal time to the random strategy; the baseline breaks ties by id.');
  console.log(`total ${seconds(started).toFixed(1)} s`);
}

main();
