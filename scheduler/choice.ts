/**
 * The one choice point's vocabulary: choice kinds, the strategy interface, and the read-only
 * view of engine state a strategy may consult. Every nondeterministic decision of a run goes
 * through Engine.choose(kind, ids, n, def, weights) and from there to a Strategy.
 *
 * Candidates are stable ids in ascending order (thread ids, interrupt source ids, or the
 * indices of a jitter/fault menu); -1 (NONE) is "do not deliver an interrupt now".
 */

export const SCHED = 0; // which enabled thread takes the next step
export const IRQ = 1; // whether (and which) pending interrupt is delivered at this point
export const WAKE = 2; // which waiter a wake-one picks
export const JITTER = 3; // timing jitter (weighted)
export const FAULT = 4; // injected fault fires or not (weighted, bounded per run)

export const NONE = -1;
/** Strategy.choose may return PRUNE at a SCHED choice: the run ends here, before the step (DPOR: the rest is redundant). */
export const PRUNE = -2;

/**
 * Footprint keys of a step, for partial-order reduction: shared object o, waitable w (block and
 * wake), and the pending-interrupt set of thread t (raise writes it, every step of t reads it).
 */
export function fpObject(o: number): number {
  return o * 4;
}
export function fpWaitable(w: number): number {
  return w * 4 + 1;
}
export function fpPending(t: number): number {
  return t * 4 + 2;
}

/** What one step touched: keys[0..len) with writes[i] = 1 for a write; all = depends on everything. */
export interface Footprint {
  all: boolean;
  len: number;
  keys: Int32Array;
  writes: Uint8Array;
}

/** A strategy that wants each step's footprint (DPOR). The engine records footprints only for it. */
export interface StepObserver {
  /** Thread `tid` became enabled by the step in progress (or by the starts or timer after it). */
  noteEnabled(tid: number): void;
  /**
   * The step of thread `tid` ended with footprint `fp` (tid -1: thread starts or a timer that ran
   * after the last step, part of it). Return true to end the run here (the rest is redundant).
   */
  stepDone(tid: number, fp: Footprint): boolean;
}

export const KIND_LETTERS = 'siwjf';
export const KIND_NAMES = ['sched', 'irq', 'wake', 'jitter', 'fault'];

/** What a strategy may look at when it chooses. Never mutated by strategies. */
export interface ChoiceView {
  /** Scheduling step counter of the current run (0-based). */
  readonly step: number;
  /** Index of this choice among the choices made in the same step. */
  readonly sub: number;
  /** Id of the thread that ran the previous step, or -1. */
  readonly current: number;
  /** True when `current` is among the SCHED candidates (switching away is a preemption). */
  readonly currentEnabled: boolean;
  /** For IRQ choices: the thread the interrupt would land on. */
  readonly target: number;
  /** Expected steps of a run, learned from calibration runs. */
  readonly expectedSteps: number;
  /** Report that the program left the path a replayed prefix recorded (a fatal `nondeterminism` finding). */
  reportNondeterminism?(what: string): void;
}

export interface Strategy {
  /** Short name used in schedule strings, e.g. "random", "pct3", "dfs". No ':' allowed. */
  readonly name: string;
  /** A fair strategy gives every enabled thread its turn eventually, so liveness findings hold. */
  readonly fair?: boolean;
  /**
   * True when choose() never reads `view.sub`: a run that keeps no path then does not count the
   * choices' ordinals (only a replay and a recorded path need them). Leave it unset if unsure.
   */
  readonly ignoresSub?: boolean;
  /** Start a run with this iteration seed. */
  begin(seed: number, expectedSteps: number): void;
  /**
   * Pick one of ids[0..n) and return its index. `def` is the index of the default choice
   * (no preemption, no interrupt, FIFO waiter, no jitter, no fault). `weights`, when given,
   * has n entries. `ids` is the engine's own buffer, changed by the step that follows: read it
   * during the call and copy what you keep (DPOR does).
   */
  choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, weights: Float64Array | null): number;
  /** An interrupt source became pending (not called for coalesced raises). */
  notePending(src: number, view: ChoiceView): void;
  /** The run ended after `steps` steps. */
  end(steps: number): void;
  /** True when the strategy has nothing left to explore (exhaustive DFS). */
  exhausted(): boolean;
  /** When set, the engine records every step's footprint and reports it here (DPOR). */
  readonly observer?: StepObserver;
}
