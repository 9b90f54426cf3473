/**
 * A hunt cut into units of work that can run anywhere: a unit is a block of CHUNK consecutive
 * iterations (seeded strategies), or one DFS subtree (the paths under one schedule prefix).
 * The hunt's iterations are the units' records concatenated in unit order; workers take units
 * in order, shard i of n takes units i-1, i-1+n, ..., and the fold puts them back in order.
 */
import type { Strategy } from './choice';
import { withDeterminismCheck } from './determinism';
import { Engine, type EngineOptions, type RunResult } from './engine';
import { InputError } from './errors';
import type { HuntOptions } from './explorer';
import type { Program } from './program';
import { makeRecord, type IterationRecord } from './record';
import { deriveSeed } from './rng';
import { makeStrategy } from './strategies';
import { Dfs } from './strategies/dfs';
import { Dpor } from './strategies/dpor';
import { StrategyPicker } from './portfolio';
import { W_INDEX, W_UNIT, currentWatch } from './watch';

/** Iterations per unit of a seeded hunt. Fixed, so every process cuts a hunt the same way. */
export const CHUNK = 16;

const NONE: ReadonlyMap<number, IterationRecord> = new Map();

/** How many subtrees a DFS is split into for workers and shards (at least, when it has them). */
const DFS_TARGET_PREFIXES = 32;
const DFS_MAX_CUT = 16;
const DFS_MAX_DISCOVERY_RUNS = 512;

export interface HuntPlan {
  /** Strategy name ("random", "pct3", "dfs", "portfolio"). */
  strategy: string;
  seed: number;
  iterations: number;
  expectedSteps: number;
  hash: string;
  chunk: number;
  /** DFS: the subtree prefixes, in enumeration order ([[]]: the whole tree as one unit). */
  prefixes: number[][] | null;
}

export function unitCount(plan: HuntPlan): number {
  return plan.prefixes ? plan.prefixes.length : Math.ceil(plan.iterations / plan.chunk);
}

/** DFS paths all run from one seed: the tree is that of one program with one workload. */
export function dfsSeed(seed: number): number {
  return deriveSeed(seed, 0);
}

/**
 * The prefixes of the DFS tree's first `cut` choice points, in enumeration order, for the
 * smallest cut that gives at least DFS_TARGET_PREFIXES of them (or the whole tree).
 */
export function discoverPrefixes(program: Program, engine: Engine, opts: HuntOptions, seed: number, expected: number): number[][] {
  let best: number[][] = [[]];
  for (let cut = 1; cut <= DFS_MAX_CUT; cut++) {
    const d = (makeStrategy(opts) as Dfs).cutAt(cut);
    const list: number[][] = [];
    while (!d.exhausted() && list.length <= DFS_MAX_DISCOVERY_RUNS) {
      engine.run(program, d, seed, expected);
      list.push(d.prefixOfLastRun().slice());
    }
    if (!d.exhausted()) break; // too many at this cut: keep the previous one
    best = list;
    if (list.length >= DFS_TARGET_PREFIXES || list.every((p) => p.length < cut)) break;
  }
  return best;
}

/** Runs units of one hunt in this process. */
export class UnitRunner {
  private readonly engine: Engine;
  /**
   * The engine of the seeded strategies' runs: light (recordPath off: no path kept; recording
   * was 4% of a timed run with a tie at every other step, measured). A run is a function of its
   * seed, so one whose findings need a schedule is run again on `engine`, which keeps its path.
   */
  private readonly light: Engine;
  private readonly picker: StrategyPicker;
  /** Fingerprints this process has recorded in full (see record.ts). */
  private readonly seen = new Set<string>();
  private readonly seenKeys = new Set<string>();
  /** The exhaustive strategy (DFS, DPOR) of the last unit run: its statistics. */
  exhaustive: Strategy | null = null;

  constructor(
    private readonly program: Program,
    private readonly opts: HuntOptions,
    private readonly eopts: EngineOptions,
    readonly plan: HuntPlan,
  ) {
    this.engine = new Engine(eopts);
    // The determinism check compares paths: it needs every run's.
    this.light = opts.checkDeterminism ? this.engine : new Engine({ ...eopts, recordPath: false });
    this.picker = new StrategyPicker(opts);
  }

  /**
   * Run unit `u`; hand each record to `emit` with its iteration index (-1 when only the fold
   * knows it: DFS subtrees). Stops early when `emit` returns true.
   */
  run(u: number, emit: (rec: IterationRecord, index: number) => boolean, stuck: ReadonlyMap<number, IterationRecord> = NONE): void {
    const p = this.plan;
    const watch = currentWatch();
    if (watch !== null) watch.head[W_UNIT] = u;
    if (p.prefixes !== null) {
      const prefix = p.prefixes[u];
      if (prefix === undefined) throw new InputError(`no DFS unit ${u} (the hunt has ${p.prefixes.length})`);
      const s = makeStrategy(this.opts);
      if (s instanceof Dpor && prefix.length > 0) throw new InputError('--strategy dpor runs as one unit: it cannot walk a DFS subtree');
      const dfs = s instanceof Dfs ? s.restrict(prefix) : s;
      this.exhaustive = dfs;
      for (let n = 0; n < p.iterations && !dfs.exhausted(); n++) {
        // A path that got stuck ends its subtree: the tree below it was never expanded.
        const s = stuck.get(n);
        if (s !== undefined) return void emit(s, -1);
        if (watch !== null) watch.head[W_INDEX] = n;
        if (emit(this.record(this.runOne(dfs, dfsSeed(p.seed)), dfs), -1)) return;
      }
      return;
    }
    const end = Math.min(p.iterations, (u + 1) * p.chunk);
    for (let i = u * p.chunk; i < end; i++) {
      const s = stuck.get(i - u * p.chunk);
      if (s !== undefined) {
        if (emit(s, i)) return;
        continue;
      }
      if (watch !== null) watch.head[W_INDEX] = i - u * p.chunk;
      const st = this.picker.at(i);
      if (emit(this.record(this.runLight(st, deriveSeed(p.seed, i)), st), i)) return;
    }
  }

  /**
   * A seeded strategy's run (its begin() resets it: runs of a hunt are the same in any process,
   * in any order). Light first; a run with a finding new to this process is run again with its
   * path, so its record carries the schedule (and a crash the site that a re-run with recorded
   * op sites places: a light crash's fingerprint lacks it, so it is never "seen").
   */
  private runLight(s: Strategy, seed: number): RunResult {
    if (this.light === this.engine) return this.runOne(s, seed);
    const r = this.light.run(this.program, s, seed, this.plan.expectedSteps);
    for (const f of r.findings) if (!this.seen.has(f.fingerprint)) return this.runOne(s, seed);
    return r;
  }

  private runOne(s: Strategy, seed: number): RunResult {
    const r = this.engine.run(this.program, s, seed, this.plan.expectedSteps);
    return this.opts.checkDeterminism ? withDeterminismCheck(this.program, this.eopts, r, seed, this.plan.expectedSteps) : r;
  }

  private record(r: RunResult, s: Strategy): IterationRecord {
    return makeRecord(r, this.plan.hash, s.name, this.seen, this.seenKeys);
  }
}
