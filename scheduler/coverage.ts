/**
 * Hunt coverage: what a hunt's schedules reached, folded from each run's coverage keys
 * (sim.cover) and interleaving class (sim.mixClass), and the PCT guarantee for the run shape
 * seen. Keys are grouped by their prefix before the first ':' (the program names the groups).
 *
 * Every part of the state is a set, a count or a maximum, so folding runs in any order, or
 * merging the accumulators of workers, shards or a resumed hunt, gives the same summary.
 */
import type { RunMetrics } from './engine';

/** What add() needs of a run (a RunResult has it). */
export interface CoverageRecord {
  coverage: readonly string[] | null;
  interleaving: number;
  metrics: RunMetrics;
}

export interface CoverageGroup {
  /** Distinct keys of this prefix over the hunt. */
  distinct: number;
  /** The keys, sorted, at most KEYS_SHOWN of them (fewer than `distinct` when cut). */
  keys: string[];
}

/** The `coverage` object of a hunt's JSON: plain data, keys in a fixed order. */
export interface HuntCoverage {
  schedules: number;
  /** Prefix (sorted) -> its distinct keys; keys without a ':' fall under `other`. */
  groups: Record<string, CoverageGroup>;
  /** Distinct interleaving classes over the schedules. */
  interleavingClasses: number;
  schedulesPerClass: { mean: number; min: number; max: number };
  /** Classes reached by one schedule only (many of them: the hunt is far from saturating). */
  singletonClasses: number;
  /** PCT's n: the most threads any run spawned. */
  threads: number;
  /** PCT's k: the most steps any run took (the bound needs k >= every run's length). */
  steps: number;
  meanSteps: number;
  /** PCT depth d, or null when the strategy is not PCT. */
  depth: number | null;
  /** 1/(n·k^(d−1)): PCT's lower bound on finding a given depth-d bug per schedule; null if not PCT. */
  pctBound: number | null;
}

/** Serialisable accumulator state (for shard outputs and resume files): complete, not capped. */
export interface CoverageState {
  schedules: number;
  /** Every distinct key, sorted. */
  keys: string[];
  /** [class, schedules in it], sorted by class. */
  classes: [number, number][];
  threads: number;
  steps: number;
  sumSteps: number;
}

/** How many keys of each prefix the summary lists. */
export const KEYS_SHOWN = 50;

const OTHER = 'other';

/** PCT's guarantee (Burckhardt et al., ASPLOS 2010): a depth-d bug is hit with probability >= 1/(n·k^(d−1)). */
export function pctBound(n: number, k: number, d: number): number | null {
  if (!(n >= 1 && k >= 1 && d >= 1)) return null;
  return 1 / (n * Math.pow(k, d - 1));
}

/**
 * The PCT depth of a strategy ('pct', 'pct3', 'fair-pct', 'fairpct2'), or null for another
 * strategy. An explicit depth wins; a bare name means the factory's default, 3.
 */
export function pctDepth(strategy: string, depth?: number): number | null {
  const m = /^(?:fair-?)?pct(\d*)$/.exec(strategy);
  if (m === null) return null;
  if (depth !== undefined) return depth;
  return m[1] !== '' ? Number(m[1]) : 3;
}

export class CoverageAccumulator {
  private schedules = 0;
  private readonly keys = new Set<string>();
  private readonly classes = new Map<number, number>();
  private threads = 0;
  private steps = 0;
  private sumSteps = 0;

  /** Fold one run. */
  add(rec: CoverageRecord): void {
    this.schedules++;
    if (rec.coverage !== null) for (const k of rec.coverage) this.keys.add(k);
    const c = rec.interleaving >>> 0;
    this.classes.set(c, (this.classes.get(c) ?? 0) + 1);
    const m = rec.metrics;
    if ((m.threads ?? 0) > this.threads) this.threads = m.threads!;
    if (m.steps > this.steps) this.steps = m.steps;
    this.sumSteps += m.steps;
  }

  /** Fold another accumulator (or its saved state) into this one. */
  merge(other: CoverageAccumulator | CoverageState): void {
    const s = other instanceof CoverageAccumulator ? other.state() : other;
    this.schedules += s.schedules;
    for (const k of s.keys) this.keys.add(k);
    for (const [c, n] of s.classes) this.classes.set(c >>> 0, (this.classes.get(c >>> 0) ?? 0) + n);
    if (s.threads > this.threads) this.threads = s.threads;
    if (s.steps > this.steps) this.steps = s.steps;
    this.sumSteps += s.sumSteps;
  }

  state(): CoverageState {
    return {
      schedules: this.schedules,
      keys: [...this.keys].sort(),
      classes: [...this.classes].sort((a, b) => a[0] - b[0]),
      threads: this.threads,
      steps: this.steps,
      sumSteps: this.sumSteps,
    };
  }

  static fromState(s: CoverageState): CoverageAccumulator {
    const a = new CoverageAccumulator();
    a.merge(s);
    return a;
  }

  summary(opts: { strategy: string; depth?: number }): HuntCoverage {
    const byPrefix = new Map<string, string[]>();
    for (const k of this.keys) {
      const i = k.indexOf(':');
      const p = i > 0 ? k.slice(0, i) : OTHER;
      let list = byPrefix.get(p);
      if (list === undefined) byPrefix.set(p, (list = []));
      list.push(k);
    }
    const groups: Record<string, CoverageGroup> = {};
    for (const p of [...byPrefix.keys()].sort()) {
      const list = byPrefix.get(p)!.sort();
      groups[p] = { distinct: list.length, keys: list.slice(0, KEYS_SHOWN) };
    }
    let min = Infinity, max = 0, singles = 0;
    for (const n of this.classes.values()) {
      if (n < min) min = n;
      if (n > max) max = n;
      if (n === 1) singles++;
    }
    const classes = this.classes.size;
    const d = pctDepth(opts.strategy, opts.depth);
    return {
      schedules: this.schedules,
      groups,
      interleavingClasses: classes,
      schedulesPerClass: { mean: classes === 0 ? 0 : round2(this.schedules / classes), min: classes === 0 ? 0 : min, max },
      singletonClasses: singles,
      threads: this.threads,
      steps: this.steps,
      meanSteps: this.schedules === 0 ? 0 : round2(this.sumSteps / this.schedules),
      depth: d,
      pctBound: d === null ? null : pctBound(this.threads, this.steps, d),
    };
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
