/**
 * The kernel-style text the irqsim command prints (without --json): a hunt's summary per
 * scenario, a replay, a shrink. Each function returns the lines; the CLI writes them.
 */
import type { HuntCoverage } from '../../scheduler';
import { formatCoverage } from './coverage';
import type { FindingJson, RunJson } from './json';

function isHuntCoverage(c: unknown): c is HuntCoverage {
  return typeof c === 'object' && c !== null && 'groups' in c && 'interleavingClasses' in c;
}

/**
 * One scenario's hunt: per variant its verdict, search, coverage and findings (with their
 * replay commands), then the verdict table, the key metrics side by side and the claim lines.
 */
export function huntText(s: { id: string; name: string }, runs: RunJson[], keyMetrics: string[], claimLines: string[] = []): string[] {
  const out = [`== ${s.id}: ${s.name}`];
  for (const r of runs) {
    const kinds = r.findings.map((f) => `${f.kind}${f.count > 1 ? ` x${f.count}` : ''}`).join(', ') || 'clean';
    out.push(`-- ${r.variant}: ${r.verdict} after ${r.schedulesRun} schedule(s): ${kinds}${r.why ? `  (${r.why})` : ''}`);
    if (r.search) {
      const d = r.dpor;
      const extra = d ? `; dpor: ${d.traces} trace(s), ${d.sleepBlocked} sleep-set blocked, defaulted: ${d.defaulted.join(', ') || 'none'}; bounds: ${d.bounds}; off: ${(d.off ?? []).join('; ')}` : '';
      out.push(`   search: ${r.search}${extra}`);
    }
    if (isHuntCoverage(r.coverage)) for (const line of formatCoverage(r.coverage)) out.push(`   ${line}`);
    for (const f of r.findings) {
      out.push('', f.text);
      if (f.confirmed) out.push(`\nlockdep prediction ${f.confirmed}`);
      if (f.replay) out.push(`\nreplay: ${f.replay}`);
    }
    out.push('');
  }
  const w = Math.max(7, ...runs.map((r) => r.variant.length));
  out.push(`${'variant'.padEnd(w)}  verdict       schedules  findings`);
  for (const r of runs) out.push(`${r.variant.padEnd(w)}  ${r.verdict.padEnd(12)}  ${String(r.schedulesRun).padStart(9)}  ${r.findings.map((f) => f.kind).join(', ') || '-'}`);
  if (keyMetrics.length > 0) out.push('', metricsTable(runs, keyMetrics));
  if (claimLines.length > 0) out.push('', ...claimLines);
  return out;
}

/** The claim's metrics, one column per variant (summed over each hunt's schedules). */
export function metricsTable(runs: RunJson[], names: string[]): string {
  const rows = [['metric', ...runs.map((r) => r.variant)], ...names.map((n) => [n, ...runs.map((r) => formatMetric(r.metrics[n]))])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

export function formatMetric(v: number | undefined): string {
  if (v === undefined) return '-';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/** Engine resource name -> lockdep class name, for the locks a run touched. */
export type LockNames = Map<string, string>;

/** Which engine event lines irqsim replay --events prints (lib/cli/options.ts EventsChoice). */
export type EventsSelection = { kind: 'all' } | { kind: 'locks' } | { kind: 'tail'; n: number };

const LOCK_LINE = /^(.* )(acquire|release) (\S+)$/;

/**
 * The engine's event lines with each lock named as the report names it: by lockdep class (the
 * splat's `(&ap->lock)`), with the instance after it only where one class has several
 * instances in the run (`&rq->__lock (rq1)`). `locks` keeps the lock lines and the findings.
 */
export function selectEvents(events: readonly string[], which: EventsSelection, names: LockNames): string[] {
  const instances = new Map<string, number>();
  for (const cls of names.values()) instances.set(cls, (instances.get(cls) ?? 0) + 1);
  const nameOf = (res: string): string | null => {
    const cls = names.get(res);
    if (cls === undefined) return null;
    return cls === res || (instances.get(cls) ?? 0) <= 1 ? cls : `${cls} (${res})`;
  };
  const out: string[] = [];
  for (const e of events) {
    const m = LOCK_LINE.exec(e);
    const lock = m ? nameOf(m[3]) : null;
    const line = m && lock !== null ? `${m[1]}${m[2]} ${lock}` : e;
    if (which.kind === 'locks' && lock === null && !/^\d+ @\d+ finding /.test(e)) continue;
    out.push(line);
  }
  return which.kind === 'tail' ? out.slice(-which.n) : out;
}

/** Whether a replay gave the recorded run's finding: `reproduced` names it, else `differs` says what differs. */
export interface ReplayOutcome {
  reproduced: string | null;
  differs?: string;
}

/**
 * A replay reproduced its recording when it followed the schedule to the end (no divergence,
 * the recorded step count: a run ends at its fatal finding) and ended with a finding: the fatal
 * one when the run ended there, else each finding of the run.
 */
export function replayOutcome(recordedSteps: number, r: { findings: readonly { fingerprint: string; fatal?: boolean }[]; divergedAt: number; metrics: { steps: number }; endReason?: string }): ReplayOutcome {
  const fps = r.findings.map((f) => f.fingerprint);
  const got = fps.length ? `; it gave ${fps.join(', ')}` : '; it gave no finding';
  if (r.divergedAt >= 0) return { reproduced: null, differs: `left the recorded schedule at step ${r.divergedAt} and ran on with seeded choices to step ${r.metrics.steps} (the recording: ${recordedSteps} steps)${got}` };
  if (r.metrics.steps !== recordedSteps) return { reproduced: null, differs: `ran ${r.metrics.steps} steps where the recording ran ${recordedSteps}${got}` };
  if (fps.length === 0) return { reproduced: null, differs: `no finding: the run completed its ${recordedSteps} recorded steps cleanly` };
  const fatal = r.endReason === 'fatal' ? r.findings.filter((f) => f.fatal) : [];
  return { reproduced: (fatal.length ? fatal : r.findings).map((f) => f.fingerprint).join(', ') };
}

/**
 * irqsim replay: the schedule and where it left it, the findings' reports, the event log when
 * asked (--events), and last `reproduced <fingerprint>` or what differs.
 */
export function replayText(where: string, schedule: string, divergedAt: number, findings: FindingJson[], outcome: ReplayOutcome, events: readonly string[] | null = null): string[] {
  const out = [`== replay ${where} ${schedule}${divergedAt >= 0 ? ` (left the schedule at step ${divergedAt}; continued with seeded choices)` : ''}`];
  for (const f of findings) out.push('', f.text);
  if (findings.length === 0) out.push('', 'no findings');
  if (events !== null) out.push('', `-- events (${events.length} line(s))`, ...events.map((e) => `  ${e}`));
  out.push('', outcome.reproduced !== null ? `reproduced ${outcome.reproduced}` : `not reproduced: ${outcome.differs}`);
  return out;
}

/** irqsim shrink: the finding kept, the schedule before and after, and its replay command. */
export function shrinkText(headline: string, s: { before: number; after: number; runs: number; schedule: string }, replay: string): string[] {
  return [headline, `shrunk ${s.before} deviation(s) to ${s.after} in ${s.runs} run(s): ${s.schedule}`, `replay: ${replay}`];
}
