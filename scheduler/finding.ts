/**
 * Findings: what a run reports. Whoever raises a finding supplies its fingerprint; "the same
 * failure" means the same fingerprint (for shrinking, de-duplication across a hunt, merging).
 */

export interface FindingInput {
  kind: string;
  subkind?: string;
  /** Stable identity of the failure: kind plus what it involves (lock classes, code sites). */
  fingerprint: string;
  headline: string;
  text?: string;
  /** A fatal finding ends the run (deadlock, no_progress, step_budget, assertion). */
  fatal?: boolean;
  /** Whether the simulated kernel log printed it (ratelimits); defaults to true. */
  logged?: boolean;
  /** Extra structured data for reports (cpu states, stacks). */
  data?: Record<string, unknown>;
}

export interface Finding extends FindingInput {
  fatal: boolean;
  text: string;
  /** Step and virtual time of the first occurrence in the run. */
  step: number;
  time: number;
  /** Thread whose step raised it, or -1. */
  thread: number;
  /** Occurrences in the run, and how many of them the kernel log printed. */
  count: number;
  logged: boolean;
  loggedCount: number;
}
