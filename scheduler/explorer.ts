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
import type { Strategy } from './choice';
import { Engine, type EngineOptions, type RunMetrics, type RunResult } from './engine';
import { InputError, ScheduleError } from './errors';
import type { Finding } from './finding';
import { programHash, type Program } from './program';
import { checkPositiveInt, checkSeed, deriveSeed } from './rng';
import { decodeSchedule, encodeSchedule, type Schedule } from './schedule';
import { shrinkSchedule } from './shrinker';
import { makeStrategy, type StrategySpec } from './strategies';
import { RandomWalk } from './strategies/random';
import { ReplayStrategy, type ReplayMode } from './strategies/replay';

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
}

const CALIBRATION_RUNS = 4;

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

function zeroMetrics(): RunMetrics {
  return { steps: 0, choices: 0, preemptions: 0, switches: 0, interrupts: 0, coalesced: 0, timers: 0, faults: 0, deviations: 0, endTime: 0 };
}

function addMetrics(a: RunMetrics, b: RunMetrics): void {
  a.steps += b.steps;
  a.choices += b.choices;
  a.preemptions += b.preemptions;
  a.switches += b.switches;
  a.interrupts += b.interrupts;
  a.coalesced += b.coalesced;
  a.timers += b.timers;
  a.faults += b.faults;
  a.deviations += b.deviations;
  if (b.endTime > a.endTime) a.endTime = b.endTime;
  if (b.counters !== undefined) {
    const c = (a.counters ??= {});
    for (const k in b.counters) c[k] = (c[k] ?? 0) + b.counters[k];
  }
  if (b.peaks !== undefined) {
    const p = (a.peaks ??= {});
    for (const k in b.peaks) if (p[k] === undefined || b.peaks[k] > p[k]) p[k] = b.peaks[k];
  }
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
  if (e.window !== undefined && !(e.window >= 0)) throw new InputError(`bad window ${e.window}: expected ns >= 0`);
  if (e.horizon !== undefined && !(e.horizon >= 0)) throw new InputError(`bad horizon ${e.horizon}: expected ns >= 0`);
  return e;
}

export function hunt(program: Program, opts: HuntOptions = {}): HuntResult {
  const seed = checkSeed(opts.seed ?? 0);
  const iterations = checkPositiveInt(opts.iterations ?? 1000, 'iteration count');
  const strategy: Strategy = makeStrategy(opts);
  const eopts = engineOptions({ ...opts, instrument: false });
  const hash = programHash(program, eopts);
  const engine = new Engine(eopts);
  const expectedSteps = calibrate(program, engine, seed);
  const every = opts.progressEvery ?? 100;
  const stopAtFirst = opts.stopWhenSeen || opts.stopWhen ? false : opts.stopAtFirst !== false;
  const wanted = opts.stopWhenSeen ? new Set(opts.stopWhenSeen) : null;

  const found = new Map<string, FoundFinding>();
  const totals = zeroMetrics();
  let firstIteration = -1;
  let run = 0;
  for (let i = 0; i < iterations; i++) {
    if (strategy.exhausted()) break;
    const s = deriveSeed(seed, i);
    let r = engine.run(program, strategy, s, expectedSteps);
    run++;
    if (opts.checkDeterminism) r = withDeterminismCheck(program, eopts, r, s, expectedSteps);
    addMetrics(totals, r.metrics);
    if (r.findings.length > 0) {
      if (firstIteration < 0) firstIteration = i;
      let schedule: string | null = null; // encoded only for a fingerprint not seen before
      for (const f of r.findings) {
        const prev = found.get(f.fingerprint);
        if (prev) {
          prev.runs++;
          prev.totalCount += f.count;
        } else {
          schedule ??= encodeSchedule({ hash, strategy: strategy.name, seed: s, steps: r.metrics.steps, devs: r.deviations });
          found.set(f.fingerprint, { ...f, iteration: i, schedule, runs: 1, totalCount: f.count });
        }
      }
    }
    if (opts.onProgress && (run % every === 0 || i === iterations - 1)) opts.onProgress({ done: run, total: iterations, findings: found.size });
    if (r.findings.length > 0 && stopAtFirst) break;
    if (wanted && [...wanted].every((k) => [...found.values()].some((f) => f.kind === k))) break;
    if (opts.stopWhen && r.findings.length > 0 && opts.stopWhen([...found.values()])) break;
  }
  const findings = [...found.values()];
  if (opts.shrink) {
    for (const f of findings) {
      if (f.kind === 'nondeterminism') continue;
      f.shrunk = shrinkSchedule(program, f.schedule, f.fingerprint, eopts).schedule;
    }
  }
  return {
    program: program.name,
    hash,
    strategy: strategy.name,
    seed,
    iterations,
    schedulesRun: run,
    firstIteration,
    findings,
    totals,
    expectedSteps,
    exhausted: strategy.exhausted(),
  };
}

export interface ReplayResult extends RunResult {
  schedule: Schedule;
  /** Continue mode: the step where the run left the recorded schedule, or -1. */
  divergedAt: number;
  /** The schedule string of what actually ran (differs from the input after `continue`). */
  ran: string;
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
      `schedule was recorded for program hash ${s.hash}, but ${program.name} with these options hashes to ${hash}: the scenario, its parameters or its options changed. Replay with continue mode to follow the part that still fits`,
    );
  }
  const strategy = new ReplayStrategy(s.devs, mode, s.strategy);
  const engine = new Engine(eopts);
  const r = engine.run(program, strategy, s.seed, Math.max(1, s.steps));
  if (mode === 'strict') {
    if (strategy.mismatch) throw new ScheduleError(`schedule does not fit ${program.name}: ${strategy.mismatch}`);
    if (r.metrics.steps !== s.steps) {
      throw new ScheduleError(`schedule does not fit ${program.name}: the replay took ${r.metrics.steps} steps where the recorded run took ${s.steps} (nondeterministic program?)`);
    }
  }
  const ran = encodeSchedule({ hash, strategy: s.strategy, seed: s.seed, steps: r.metrics.steps, devs: r.deviations });
  return Object.assign(r, { schedule: s, divergedAt: strategy.divergedAt, ran });
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
  const strategy = makeStrategy(opts);
  if (strategy.name === 'dfs') {
    for (let i = 0; i < iteration && !strategy.exhausted(); i++) engine.run(program, strategy, deriveSeed(seed, i), expected);
    if (strategy.exhausted()) throw new InputError(`iteration ${iteration} is past the end of the DFS tree`);
  }
  const e = eopts.instrument ? new Engine(eopts) : engine;
  return e.run(program, strategy, deriveSeed(seed, iteration), expected);
}

/**
 * Replay a run's choices twice with the event log on and compare the two logs, and the first
 * log's hash with the hash of the original (light) run. Returns the run with a
 * `nondeterminism` finding added when anything differs.
 */
function withDeterminismCheck(program: Program, eopts: EngineOptions, first: RunResult, seed: number, expected: number): RunResult {
  const d = checkDeterminism(program, eopts, first.deviations, seed, expected, first.hash);
  if (d === null) return first;
  const f: Finding = {
    kind: 'nondeterminism',
    fingerprint: `nondeterminism:${program.name}`,
    headline: `nondeterminism: two runs of the same schedule diverged${d.index >= 0 ? ` at event ${d.index}` : ''}`,
    text: `two runs with seed ${seed} and the same choices diverged${d.index >= 0 ? ` at event ${d.index}` : ''}:\n  first:  ${d.first}\n  second: ${d.second}\nLook for Math.random, Date.now, timers, or state kept between runs outside the engine.`,
    fatal: false,
    step: Math.max(0, d.index),
    time: 0,
    thread: -1,
    count: 1,
    logged: true,
    loggedCount: 1,
  };
  first.findings.push(f);
  return first;
}

export interface Divergence {
  /** Index of the first differing event, or -1 when only the hashes differ. */
  index: number;
  first: string;
  second: string;
}

/**
 * Determinism self-check: run the same choices (deviations over the default policy) twice with
 * full instrumentation; return the first event where the logs differ, or null when identical.
 * With `expectHash`, also compare against the hash of an earlier (possibly light) run.
 */
export function checkDeterminism(
  program: Program,
  opts: EngineOptions,
  devs: RunResult['deviations'],
  seed: number,
  expected = 100,
  expectHash?: number,
): Divergence | null {
  const eopts = engineOptions({ ...opts, instrument: true });
  const a = new Engine(eopts).run(program, new ReplayStrategy(devs, 'lenient'), seed, expected);
  const b = new Engine(eopts).run(program, new ReplayStrategy(devs, 'lenient'), seed, expected);
  const ea = a.events!, eb = b.events!;
  const n = Math.max(ea.length, eb.length);
  for (let i = 0; i < n; i++) {
    if (ea[i] !== eb[i]) return { index: i, first: ea[i] ?? '(end of log)', second: eb[i] ?? '(end of log)' };
  }
  if (a.hash !== b.hash) return { index: -1, first: `event hash ${a.hash}`, second: `event hash ${b.hash}` };
  if (expectHash !== undefined && (a.hash >>> 0) !== (expectHash >>> 0)) {
    return { index: -1, first: `hunt run: event hash ${expectHash >>> 0}`, second: `replay: event hash ${a.hash >>> 0}` };
  }
  return null;
}
