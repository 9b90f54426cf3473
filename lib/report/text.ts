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

/** irqsim replay: the schedule, where it left it, the events and the findings. */
export function replayText(where: string, schedule: string, divergedAt: number, events: readonly string[] | null | undefined, findings: FindingJson[]): string[] {
  const out = [`== replay ${where} ${schedule}${divergedAt >= 0 ? ` (left the schedule at step ${divergedAt}; continued with seeded choices)` : ''}`];
  for (const e of events ?? []) out.push(`  ${e}`);
  for (const f of findings) out.push(`\n${f.text}`);
  if (findings.length === 0) out.push('\nno findings');
  return out;
}

/** irqsim shrink: the finding kept, the schedule before and after, and its replay command. */
export function shrinkText(headline: string, s: { before: number; after: number; runs: number; schedule: string }, replay: string): string[] {
  return [headline, `shrunk ${s.before} deviation(s) to ${s.after} in ${s.runs} run(s): ${s.schedule}`, `replay: ${replay}`];
}
