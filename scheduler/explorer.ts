/**
 * The explorer: runs a program for many schedules and collects findings.
 *
 * Iteration i runs with seed deriveSeed(base, i), so any iteration can be rerun alone, and
 * "first finding" means the lowest iteration index (what parallel workers and shards will
 * reproduce). The expected run length that PCT's change points and random walk's interrupt
 * sampling need is learned from a few calibration runs made before iteration 0 from the base
 * seed alone, so it is the same whatever slice of the iterations a process runs.
 *
 * Hunts run light (no event log); findings carry a schedule string that `replay` runs heavy.
 */
import { Engine, type EngineOptions, type RunMetrics, type RunResult } from './engine';
import { InputError, ScheduleError } from './errors';
import type { Finding } from './finding';
import type { HuntCoverage } from './coverage';
import { HuntFold, shardUnits, type FoldOptions } from './fold';
import { StrategyPicker } from './portfolio';
import { programHash, type Program } from './program';
import type { IterationRecord } from './record';
import { checkPositiveInt, checkSeed, deriveSeed } from './rng';
import { decodeSchedule, encodeSchedule, eventHash, type Schedule } from './schedule';
import { shrinkSchedule } from './shrinker';
import type { StrategySpec } from './strategies';
import { RandomWalk } from './strategies/random';
import { Dfs } from './strategies/dfs';
import { Dpor, type DporStats } from './strategies/dpor';
import { IterativeBounding } from './strategies/iterative';
import { ReplayStrategy, type ReplayMode } from './strategies/replay';
import { CHUNK, UnitRunner, discoverPrefixes, dfsSeed, unitCount, type HuntPlan } from './units';

export * from './determinism';
export * from './fold';
export * from './portfolio';
export * from './record';
export * from './units';

export interface HuntOptions extends EngineOptions, StrategySpec {
  seed?: number;
  iterations?: number;
  /** Stop after the first iteration that has a finding (default true). */
  stopAtFirst?: boolean;
  /** Stop once every one of these finding kinds has been seen (overrides stopAtFirst). */
  stopWhenSeen?: readonly string[];
  /** Stop as soon as this returns true for the findings so far (checked after each finding). */
  stopWhen?: (found: readonly FoundFinding[]) => boolean;
  /** Shrink each distinct finding's schedule (default false). */
  shrink?: boolean;
  /** Run each iteration twice and report the first divergent event as `nondeterminism`. */
  checkDeterminism?: boolean;
  onProgress?: (p: HuntProgress) => void;
  /** Call onProgress every this many iterations (default 100). */
  progressEvery?: number;
  /** Pick the strategy per iteration index from PORTFOLIO (portfolio.ts). */
  portfolio?: boolean;
  /** Run only this shard's units (unit u belongs to shard u mod count + 1). */
  shard?: Shard;
  /** Units already run (--resume, merge): their records are folded instead of run again. */
  done?: ReadonlyMap<number, readonly IterationRecord[]>;
  /** After each unit this process ran: its records, and whether the hunt stopped in it (--out). */
  onUnit?: (unit: number, records: IterationRecord[], stopped: boolean, plan: HuntPlan) => void;
  /** The plan to follow (--resume and merge use the stored one). */
  plan?: HuntPlan;
  /** Split a DFS into subtrees even in one process (for a later parallel or sharded resume). */
  splitDfs?: boolean;
  /** Merge: fold `done` only; a unit missing from it is an error, not run. */
  foldOnly?: boolean;
}

export interface HuntProgress {
  done: number;
  total: number;
  findings: number;
}

export interface FoundFinding extends Finding {
  /** Lowest iteration index where this fingerprint appeared. */
  iteration: number;
  schedule: string;
  shrunk?: string;
  /** Iterations in which it appeared, and occurrences over all of them. */
  runs: number;
  totalCount: number;
}

export interface HuntResult {
  program: string;
  hash: string;
  strategy: string;
  seed: number;
  iterations: number;
  schedulesRun: number;
  /** Lowest iteration with a finding, or -1. */
  firstIteration: number;
  findings: FoundFinding[];
  /** Sums over all schedules run. */
  totals: RunMetrics;
  expectedSteps: number;
  /** True when an exhaustive strategy (DFS) ran out of paths before the budget. */
  exhausted: boolean;
  /**
   * The search verdict: `exhausted` (an exhaustive strategy covered its whole bounded space: no
   * run cut short by the horizon or the step budget, no divergence), `decided` (a stop rule
   * stopped the hunt: the expectation was decided), or `budget` (the iteration budget or a
   * run's step budget or horizon ran out first).
   */
  search?: 'exhausted' | 'budget' | 'decided';
  /** Iterative bounding (ipb, idb): the smallest bound at which the hunt's findings appear. */
  bound?: { kind: 'preemption' | 'delay'; value: number };
  /** DPOR statistics (strategy dpor, in one process). */
  dpor?: DporStats & { bounds: string };
  /** How the hunt was cut into units (merge and --resume check that they agree). */
  plan?: HuntPlan;
  /** Hunt coverage (lock-order pairs, IRQ-while-holding states, interleaving classes, PCT bound). */
  coverage?: HuntCoverage;
}

const CALIBRATION_RUNS = 4;
/** Strategies that walk one tree from one seed (iteration i is the i-th path). */
const EXHAUSTIVE = new Set(['dfs', 'dpor', 'ipb', 'idb']);

/** Expected steps of a run: the longest of a few calibration runs that finished on their own. */
export function calibrate(program: Program, engine: Engine, baseSeed: number): number {
  let max = 0;
  for (let i = 0; i < CALIBRATION_RUNS; i++) {
    const strategy = i === 0 ? new ReplayStrategy([], 'lenient') : new RandomWalk();
    const r = engine.run(program, strategy, deriveSeed(baseSeed, 0x7fff0000 + i), Math.max(max, 100));
    if (r.findings.some((f) => f.kind === 'step_budget')) continue;
    if (r.metrics.steps > max) max = r.metrics.steps;
  }
  return max > 0 ? max : Math.min(1000, engine.stepBudget);
}

export function engineOptions(o: EngineOptions): EngineOptions {
  const e: EngineOptions = {};
  if (o.window !== undefined) e.window = o.window;
  if (o.horizon !== undefined) e.horizon = o.horizon;
  if (o.stepBudget !== undefined) e.stepBudget = checkPositiveInt(o.stepBudget, 'step budget');
  if (o.maxFaults !== undefined) {
    if (!Number.isSafeInteger(o.maxFaults) || o.maxFaults < 0) throw new InputError(`bad fault budget ${JSON.stringify(o.maxFaults)}: expected a non-negative integer`);
    e.maxFaults = o.maxFaults;
  }
  if (o.instrument !== undefined) e.instrument = o.instrument;
  // Debug modes a hunt can run in (conformance: every shared effect a step; captureOps: op sites).
  if (o.conformance !== undefined) e.conformance = o.conformance;
  if (o.captureOps !== undefined) e.captureOps = o.captureOps;
  if (e.window !== undefined && !(e.window >= 0)) throw new InputError(`bad window ${e.window}: expected ns >= 0`);
  if (e.horizon !== undefined && !(e.horizon >= 0)) throw new InputError(`bad horizon ${e.horizon}: expected ns >= 0`);
  return e;
}

/** The plan of a hunt: calibration, and for DFS split across processes, the subtree prefixes. */
export function planHunt(program: Program, opts: HuntOptions, split: boolean): HuntPlan {
  const seed = checkSeed(opts.seed ?? 0);
  const iterations = checkPositiveInt(opts.iterations ?? 1000, 'iteration count');
  const eopts = engineOptions({ ...opts, instrument: false });
  const picker = new StrategyPicker(opts);
  const dpor = picker.name === 'dpor';
  // Refusals first: calibration of a large scenario takes minutes.
  if ((picker.name === 'ipb' || picker.name === 'idb') && split) throw new InputError(`--strategy ${picker.name} runs in one process: drop --workers/--shard`);
  if (dpor && split) throw new InputError('--strategy dpor runs in one process: drop --workers/--shard (its backtrack sets are not split soundly)');
  if (dpor && (opts.horizon !== undefined || (opts.window !== undefined && opts.window !== Infinity))) {
    throw new InputError('--strategy dpor needs interleave mode without a horizon (a horizon reads every clock)');
  }
  const engine = new Engine(eopts);
  const expectedSteps = calibrate(program, engine, seed);
  const dfs = (picker.only.name === 'dfs' && picker.name === 'dfs') || dpor || picker.name === 'ipb' || picker.name === 'idb';
  return {
    strategy: picker.name,
    seed,
    iterations,
    expectedSteps,
    hash: programHash(program, eopts),
    chunk: CHUNK,
    prefixes: dfs ? (split ? discoverPrefixes(program, engine, opts, dfsSeed(seed), expectedSteps) : [[]]) : null,
  };
}

/** The fold options of a hunt's stop rules. */
export function foldOptions(opts: HuntOptions, iterations: number): FoldOptions {
  const stopAtFirst = opts.stopWhenSeen || opts.stopWhen ? false : opts.stopAtFirst !== false;
  return {
    iterations,
    stopAtFirst,
    wanted: opts.stopWhenSeen ? new Set(opts.stopWhenSeen) : null,
    stopWhen: opts.stopWhen,
    onProgress: opts.onProgress,
    progressEvery: opts.progressEvery,
  };
}

/**
 * Hunt in this process: run the plan's units in order (only this shard's, when sharded; units
 * in `done` are folded, not run) and fold their records.
 */
export function hunt(program: Program, opts: HuntOptions = {}): HuntResult {
  const plan = opts.plan ?? planHunt(program, opts, opts.shard !== undefined || opts.splitDfs === true);
  const eopts = engineOptions({ ...opts, instrument: false });
  const runner = new UnitRunner(program, opts, eopts, plan);
  const fold = new HuntFold(foldOptions(opts, plan.iterations));
  for (const u of shardUnits(plan, opts.shard ? checkShard(opts.shard) : null)) {
    if (fold.stopped) break;
    const done = opts.done?.get(u);
    if (done !== undefined) {
      fold.pushUnit(plan, u, done);
      continue;
    }
    if (opts.foldOnly) throw new InputError(`unit ${u} of the hunt is missing from the records being merged`);
    const recs: IterationRecord[] = [];
    runner.run(u, (rec, i) => {
      recs.push(rec);
      return fold.push(rec, i < 0 ? fold.run : i);
    });
    opts.onUnit?.(u, recs, fold.stopped, plan);
  }
  const res = finishHunt(program, opts, plan, fold, eopts);
  const ex = runner.exhaustive;
  const divergences = ex instanceof Dfs || ex instanceof Dpor || ex instanceof IterativeBounding ? ex.divergences : 0;
  if (divergences > 0 && res.search === 'exhausted') res.search = 'budget';
  if (ex instanceof Dpor) res.dpor = { ...ex.stats(), bounds: `steps <= ${eopts.stepBudget ?? 1_000_000} per run` };
  if (ex instanceof IterativeBounding && res.findings.length > 0) res.bound = { kind: ex.kind, value: ex.bound };
  return res;
}

/** The fold's result, with each finding's schedule shrunk when asked. */
export function finishHunt(program: Program, opts: HuntOptions, plan: HuntPlan, fold: HuntFold, eopts: EngineOptions = engineOptions({ ...opts, instrument: false })): HuntResult {
  const findings = fold.findings();
  if (opts.shrink) {
    for (const f of findings) {
      if (f.kind === 'nondeterminism') continue;
      f.shrunk = shrinkSchedule(program, f.schedule, f.fingerprint, eopts).schedule;
    }
  }
  const units = unitCount(plan);
  return {
    program: program.name,
    hash: plan.hash,
    strategy: plan.strategy,
    seed: plan.seed,
    iterations: plan.iterations,
    schedulesRun: fold.run,
    firstIteration: fold.firstIteration,
    findings,
    totals: fold.totals,
    expectedSteps: plan.expectedSteps,
    // DFS ran out of paths before the budget: every unit folded and the fold did not stop.
    exhausted: plan.prefixes !== null && fold.stoppedBy !== 'findings' && fold.run < plan.iterations && units > 0,
    search: fold.stoppedBy === 'findings' ? 'decided' : plan.prefixes !== null && fold.run < plan.iterations && units > 0 && fold.truncated === 0 ? 'exhausted' : 'budget',
    plan,
    coverage: fold.coverage.summary({ strategy: plan.strategy }),
  };
}

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export function checkShard(s: Shard): Shard {
  if (!Number.isSafeInteger(s.count) || s.count < 1) throw new InputError(`bad shard count ${s.count}: expected a positive integer`);
  if (!Number.isSafeInteger(s.index) || s.index < 1 || s.index > s.count) throw new InputError(`bad shard ${s.index}/${s.count}: the index runs from 1 to ${s.count}`);
  return s;
}

export interface ReplayResult extends RunResult {
  schedule: Schedule;
  /** Continue mode: the step where the run left the recorded schedule, or -1. */
  divergedAt: number;
  /** The schedule string of what actually ran (differs from the input after `continue`). */
  ran: string;
  /**
   * The run is the recorded one: same program hash, every deviation followed, same step count
   * and event hash. Always true of a strict replay that returns; a `continue` replay may differ.
   */
  reproduced: boolean;
}

export interface ReplayOptions extends EngineOptions {
  mode?: ReplayMode;
}

/** Replay a schedule string, fully instrumented unless told otherwise. */
export function replay(program: Program, schedule: string, opts: ReplayOptions = {}): ReplayResult {
  const s = decodeSchedule(schedule);
  const mode = opts.mode ?? 'strict';
  const eopts = engineOptions({ ...opts, instrument: opts.instrument ?? true });
  const hash = programHash(program, eopts);
  if (s.hash !== hash && mode === 'strict') {
    throw new ScheduleError(
      `schedule was recorded for program hash ${s.hash}, but ${program.name} with these options hashes to ${hash}: the scenario, its parameters or its options changed. Replay with --continue (continue mode) to follow the part that still fits`,
    );
  }
  const strategy = new ReplayStrategy(s.devs, mode, s.strategy);
  const engine = new Engine(eopts);
  const r = engine.run(program, strategy, s.seed, Math.max(1, s.steps));
  const events = eventHash(r.hash);
  if (mode === 'strict') {
    if (strategy.mismatch) throw new ScheduleError(`schedule does not fit ${program.name}: ${strategy.mismatch}`);
    if (r.metrics.steps !== s.steps) {
      throw new ScheduleError(`schedule does not fit ${program.name}: the replay took ${r.metrics.steps} steps where the recorded run took ${s.steps} (nondeterministic program?)`);
    }
    // Same program hash and step count, another path: code the program hash does not see
    // changed, or the program is nondeterministic. Never report that as the recorded run.
    if (s.events !== null && events !== s.events) {
      throw new ScheduleError(
        `schedule does not fit ${program.name}: the replay took another path (event hash ${events}, recorded ${s.events}) with the same program hash and step count: code the program hash does not see changed since the schedule was recorded, or the program is nondeterministic (--check-determinism tells which)`,
      );
    }
  }
  const ran = encodeSchedule({ hash, events, strategy: s.strategy, seed: s.seed, steps: r.metrics.steps, devs: r.deviations });
  // The recorded run, step for step: it followed every deviation, ended where it did and (when
  // the schedule carries one) with the same event hash.
  const reproduced = s.hash === hash && strategy.divergedAt < 0 && !strategy.mismatch && r.metrics.steps === s.steps && (s.events === null || s.events === events);
  return Object.assign(r, { schedule: s, divergedAt: strategy.divergedAt, ran, reproduced });
}

/**
 * Run one iteration of a hunt by itself (same seed derivation and calibration as hunt). DFS
 * iterations are paths in enumeration order, not seeds, so the paths before it are walked first.
 */
export function runIteration(program: Program, opts: HuntOptions & { iteration: number }): RunResult {
  const seed = checkSeed(opts.seed ?? 0);
  const iteration = checkSeed(opts.iteration, 'iteration');
  const eopts = engineOptions(opts);
  const engine = new Engine({ ...eopts, instrument: false });
  const expected = calibrate(program, engine, seed);
  const picker = new StrategyPicker(opts);
  const strategy = picker.at(iteration);
  if (EXHAUSTIVE.has(picker.name)) {
    for (let i = 0; i < iteration && !strategy.exhausted(); i++) engine.run(program, strategy, dfsSeed(seed), expected);
    if (strategy.exhausted()) throw new InputError(`iteration ${iteration} is past the end of the DFS tree`);
  }
  const e = eopts.instrument ? new Engine(eopts) : engine;
  return e.run(program, strategy, EXHAUSTIVE.has(picker.name) ? dfsSeed(seed) : deriveSeed(seed, iteration), expected);
}
