/** What one run of the engine returns: how it ended, its findings, metrics and path. */
import type { Finding } from './finding';
import { unpackDeviations, type Deviation } from './path';
import type { ExecutionState } from './state';

export type EndReason = 'done' | 'fatal' | 'horizon' | 'quiescent';

export interface RunMetrics {
  steps: number;
  /** Choices actually put to the strategy (more than one candidate). */
  choices: number;
  /**
   * CHESS count: scheduling choices that switched away from the thread that ran last while it
   * could have gone on. Resuming invisible local work (timed mode) is never a choice, so it
   * never counts.
   */
  preemptions: number;
  /** Every change of the thread taking steps. */
  switches: number;
  interrupts: number;
  /** Raises of an interrupt that was already pending. */
  coalesced: number;
  timers: number;
  faults: number;
  deviations: number;
  /** Largest thread clock at the end (ns). */
  endTime: number;
  /** Threads spawned in the run, daemon threads included (PCT's n). Set on every run's result. */
  threads?: number;
  /** Model counters (sim.count): summed over a hunt's runs. Absent when the run kept none. */
  counters?: Record<string, number>;
  /** Model high-water marks (sim.peak): the largest over a hunt's runs. */
  peaks?: Record<string, number>;
}

export interface RunResult {
  seed: number;
  endReason: EndReason;
  findings: Finding[];
  metrics: RunMetrics;
  /** Hash of the event log: equal paths give equal hashes. */
  hash: number;
  deviations: Deviation[];
  /** Event log, only with instrument: true. */
  events: string[] | null;
  /** Coverage keys the program recorded (sim.cover), distinct, in first-seen order; null when none. */
  coverage: readonly string[] | null;
  /** The run's interleaving class (sim.mixClass), uint32; 0 when nothing was mixed in. */
  interleaving: number;
}

/** A run's result; deviations stay packed until someone asks for them (most hunt runs never do). */
export class PackedRunResult implements RunResult {
  private unpacked: Deviation[] | null = null;
  constructor(
    readonly seed: number,
    readonly endReason: EndReason,
    readonly findings: Finding[],
    readonly metrics: RunMetrics,
    readonly hash: number,
    /** The encoded path, or null for a light run (recordPath off). */
    private readonly packed: readonly Uint8Array[] | null,
    readonly events: string[] | null,
    readonly coverage: readonly string[] | null,
    readonly interleaving: number,
  ) {}

  get deviations(): Deviation[] {
    if (this.packed === null) throw new Error('this run was a light run (recordPath: false): run its seed again with recordPath on for its deviations');
    return (this.unpacked ??= unpackDeviations(this.packed));
  }
}

/** The result of the run `e` just finished. */
export function runResult(e: ExecutionState): RunResult {
  const metrics: RunMetrics = {
    steps: e.step,
    choices: e.choices,
    preemptions: e.preemptions,
    switches: e.switches,
    interrupts: e.interrupts,
    coalesced: e.coalesced,
    timers: e.timersFired,
    faults: e.faults,
    deviations: e.deviated,
    endTime: e.endTime(),
    threads: e.threads.length,
  };
  if (e.counters !== null) metrics.counters = e.counters;
  if (e.peaks !== null) metrics.peaks = e.peaks;
  const packed = e.recordPath ? e.path.take() : null;
  const coverage = e.coverSet === null ? null : [...e.coverSet];
  const findings = e.findingList.length === 0 ? [] : e.findingList;
  return new PackedRunResult(e.seed, e.endReason, findings, metrics, e.hash >>> 0, packed, e.events, coverage, e.classHash >>> 0);
}
