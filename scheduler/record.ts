/**
 * One iteration of a hunt, as the fold needs it: its findings, metrics and coverage. Records
 * are what workers send back, what shard files and `--out` files store, and what `merge` and
 * `--resume` fold again, so they are plain JSON.
 *
 * A record carries a finding in full (with its schedule string) only the first time the
 * process that ran it saw that fingerprint. Every process runs its iterations in increasing
 * order, so the lowest iteration of a fingerprint over the whole hunt is always such a first
 * time, and the fold finds the full finding where it needs it.
 */
import type { RunMetrics, RunResult } from './engine';
import type { Finding } from './finding';
import { encodeSchedule, eventHash } from './schedule';

export interface RecordFinding {
  fingerprint: string;
  kind: string;
  count: number;
  /** The finding itself, when its fingerprint was new to the process that ran this iteration. */
  full?: Finding;
  /** Its schedule string, with `full`. */
  schedule?: string;
}

export interface IterationRecord {
  seed: number;
  steps: number;
  findings: RecordFinding[];
  metrics: RunMetrics;
  /** Coverage keys of the run (hunt coverage), or null. */
  coverage: readonly string[] | null;
  /** The run's interleaving-class hash. */
  interleaving: number;
  /** The run was cut short by the horizon or the step budget. */
  truncated?: boolean;
}

/**
 * The record of a run. `seen` holds the fingerprints this process has recorded in full, and
 * `seenKeys` the coverage keys it has recorded; both are updated. A key, like a finding, is
 * kept only the first time its process sees it: the union of keys up to any iteration is the
 * same. Findings go through JSON so records compare and travel alike in every process.
 */
export function makeRecord(r: RunResult, hash: string, strategy: string, seen: Set<string>, seenKeys: Set<string> = new Set()): IterationRecord {
  let findings: RecordFinding[] = [];
  if (r.findings.length > 0) {
    let schedule: string | null = null;
    findings = r.findings.map((f) => {
      const rf: RecordFinding = { fingerprint: f.fingerprint, kind: f.kind, count: f.count };
      if (!seen.has(f.fingerprint)) {
        seen.add(f.fingerprint);
        schedule ??= encodeSchedule({ hash, events: eventHash(r.hash), strategy, seed: r.seed, steps: r.metrics.steps, devs: r.deviations });
        rf.full = JSON.parse(JSON.stringify(f)) as Finding;
        rf.schedule = schedule;
      }
      return rf;
    });
  }
  let coverage: string[] | null = null;
  if (r.coverage !== null) {
    for (const k of r.coverage) {
      if (seenKeys.has(k)) continue;
      seenKeys.add(k);
      (coverage ??= []).push(k);
    }
  }
  const rec: IterationRecord = { seed: r.seed, steps: r.metrics.steps, findings, metrics: r.metrics, coverage, interleaving: r.interleaving };
  // Cut short by the horizon or the step budget: a search that saw one is not exhausted.
  if (r.endReason === 'horizon' || r.findings.some((f) => f.kind === 'step_budget')) rec.truncated = true;
  return rec;
}
