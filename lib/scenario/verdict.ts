/** Judging a variant's hunt against its declared expectation (docs/contract.md). */
import type { Expectation } from './define';

export interface Judged {
  verdict: 'as-expected' | 'unexpected';
  missing: string[];
  unexpected: string[];
  missingMetrics: string[];
}

export function unexpectedKinds(e: Expectation, kinds: readonly string[]): string[] {
  return [...new Set(kinds.filter((k) => e.clean === true || (e.absent ?? []).includes(k) || (e.findings !== undefined && !e.findings.includes(k))))];
}

/** True when a hunt has seen enough to decide: every expected kind, or something unexpected. */
export function decided(e: Expectation, kinds: readonly string[]): boolean {
  if (unexpectedKinds(e, kinds).length > 0) return true;
  const want = e.findings ?? [];
  if (want.length === 0) return !hasExpectation(e) && kinds.length > 0;
  return want.every((k) => kinds.includes(k));
}

export function hasExpectation(e: Expectation): boolean {
  return e.findings !== undefined || e.absent !== undefined || e.clean !== undefined || e.metrics !== undefined;
}

export function judge(e: Expectation, kinds: readonly string[], metrics: Record<string, number>): Judged {
  const missing = (e.findings ?? []).filter((k) => !kinds.includes(k));
  const unexpected = hasExpectation(e) ? unexpectedKinds(e, kinds) : [...new Set(kinds)];
  const missingMetrics = (e.metrics ?? []).filter((m) => typeof metrics[m] !== 'number');
  const ok = missing.length === 0 && unexpected.length === 0 && missingMetrics.length === 0;
  return { verdict: ok ? 'as-expected' : 'unexpected', missing, unexpected, missingMetrics };
}
