/**
 * The fold: a hunt's result is its iteration records folded in iteration order. A single
 * process, worker threads, shards merged afterwards and a resumed hunt all feed the same fold
 * with the same records in the same order, so they give the same result: the same findings,
 * each with its lowest iteration and that iteration's schedule, the same totals, and the same
 * stopping point (the fold stops where one process would have, and ignores records past it).
 */
import type { RunMetrics } from './engine';
import type { FoundFinding, Shard } from './explorer';
import type { IterationRecord } from './record';
import { unitCount, type HuntPlan } from './units';
import { CoverageAccumulator } from './coverage';
import { InputError } from './errors';

export interface FoldOptions {
  iterations: number;
  /** Stop after the first iteration that has a finding. */
  stopAtFirst: boolean;
  /** Stop once every one of these kinds has been seen. */
  wanted: ReadonlySet<string> | null;
  /** Stop as soon as this returns true for the findings so far (checked after each finding). */
  stopWhen?: (found: readonly FoundFinding[]) => boolean;
  onProgress?: (p: { done: number; total: number; findings: number }) => void;
  progressEvery?: number;
  /** Called with every record folded. */
  onRecord?: (rec: IterationRecord) => void;
}

export function zeroMetrics(): RunMetrics {
  return { steps: 0, choices: 0, preemptions: 0, switches: 0, interrupts: 0, coalesced: 0, timers: 0, faults: 0, deviations: 0, endTime: 0 };
}

export function addMetrics(a: RunMetrics, b: RunMetrics): void {
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

export class HuntFold {
  readonly found = new Map<string, FoundFinding>();
  readonly totals: RunMetrics = zeroMetrics();
  firstIteration = -1;
  /** Records folded so far (= schedules run, up to the stopping point). */
  run = 0;
  stopped = false;
  /** Why the fold stopped: the budget, or the findings (a stop rule). */
  stoppedBy: 'budget' | 'findings' | null = null;
  /** Runs cut short by the horizon or the step budget. */
  truncated = 0;
  /** Hunt coverage of the records folded (stops where the fold stops, like the totals). */
  readonly coverage = new CoverageAccumulator();
  private readonly every: number;

  constructor(private readonly o: FoldOptions) {
    this.every = o.progressEvery ?? 100;
  }

  /** Fold the record of iteration `index` (default: the next one). Returns true when the hunt stops here. */
  push(rec: IterationRecord, index = this.run): boolean {
    if (this.stopped) return true;
    this.run++;
    if (rec.truncated) this.truncated++;
    addMetrics(this.totals, rec.metrics);
    this.coverage.add(rec);
    this.o.onRecord?.(rec);
    if (rec.findings.length > 0) {
      if (this.firstIteration < 0) this.firstIteration = index;
      for (const f of rec.findings) {
        const prev = this.found.get(f.fingerprint);
        if (prev) {
          prev.runs++;
          prev.totalCount += f.count;
        } else {
          if (f.full === undefined || f.schedule === undefined) {
            throw new InputError(`records out of order: iteration ${index} has the first ${f.fingerprint} but not the finding itself (were records from different hunts mixed?)`);
          }
          this.found.set(f.fingerprint, { ...f.full, iteration: index, schedule: f.schedule, runs: 1, totalCount: f.count });
        }
      }
    }
    const o = this.o;
    if (o.onProgress && (this.run % this.every === 0 || this.run === o.iterations)) o.onProgress({ done: this.run, total: o.iterations, findings: this.found.size });
    if (rec.findings.length > 0) {
      if (o.stopAtFirst) this.stoppedBy = 'findings';
      else if (o.wanted && [...o.wanted].every((k) => [...this.found.values()].some((f) => f.kind === k))) this.stoppedBy = 'findings';
      else if (o.stopWhen && o.stopWhen([...this.found.values()])) this.stoppedBy = 'findings';
    }
    if (this.stoppedBy === null && this.run >= o.iterations) this.stoppedBy = 'budget';
    this.stopped = this.stoppedBy !== null;
    return this.stopped;
  }

  /**
   * Fold unit `u`'s records of `plan`, each at its iteration (a seeded unit's block of CHUNK
   * iterations, a DFS subtree's paths next in line). True when the hunt stops here.
   */
  pushUnit(plan: HuntPlan, u: number, recs: readonly IterationRecord[]): boolean {
    for (let j = 0; j < recs.length; j++) if (this.push(recs[j], plan.prefixes ? this.run : u * plan.chunk + j)) return true;
    return this.stopped;
  }

  findings(): FoundFinding[] {
    return [...this.found.values()];
  }
}

/** The shard rule: shard i of n (1-based) takes units i-1, i-1+n, i-1+2n, ... */
export function inShard(u: number, shard: Shard | null | undefined): boolean {
  return !shard || u % shard.count === shard.index - 1;
}

/** The units of `plan` a hunt (or its shard) runs, in the order they are folded. */
export function shardUnits(plan: HuntPlan, shard: Shard | null | undefined): number[] {
  const out: number[] = [];
  for (let u = 0; u < unitCount(plan); u++) if (inShard(u, shard)) out.push(u);
  return out;
}
