/**
 * A finding's timeline: what each CPU was doing in the stretch of virtual time that led to the
 * finding, taken from a traced replay of the finding's schedule. The JSON carries it as
 * `findings[].timeline`; the HTML report draws it as an SVG per finding. Types only here: the
 * tracer (lib/report/trace.ts) builds it, the HTML renderer (lib/report/html.ts) draws it.
 */

import type { ContextState } from '../kernel/show-state';

/** The finding in the traced run a timeline was drawn from. */
export interface TimelineRun {
  /** The schedule replayed (the shrunk one when there is one). */
  schedule: string;
  /** The finding's virtual time in that run (ns; a deadlock at quiescence: when it got stuck). */
  time: number;
  /** Each CPU's context at the failing step of that run. */
  cpuStates: ContextState[];
}

/** One span on a CPU lane. Times are virtual ns; `end >= start`. */
export interface TimelineSlice {
  cpu: number;
  /**
   * The lane the span belongs to: `context` (what runs: task, softirq, hardirq, idle),
   * `irqs_off` (local IRQs disabled), `lock` (a lock held or spun on), `sleep` (a task asleep).
   */
  lane: 'context' | 'irqs_off' | 'lock' | 'sleep';
  kind: 'task' | 'softirq' | 'hardirq' | 'idle' | 'irqs_off' | 'lock_hold' | 'lock_spin' | 'sleep';
  /** Task name/pid, handler name, lock name. */
  name: string;
  start: number;
  end: number;
  /** Still open when the run ended: it lasts to the end of the trace (never released, never woken). */
  truncated?: boolean;
}

/** A point event: the finding itself, a wakeup, an IPI sent, an allocation failure. */
export interface TimelineInstant {
  cpu: number;
  time: number;
  kind: 'finding' | 'wakeup' | 'ipi' | 'alloc' | 'other';
  name: string;
  text?: string;
}

export interface TimelineJson {
  /** CPUs of the machine, 0..cpus-1. */
  cpus: number;
  /**
   * The window drawn: [start, end] in virtual ns. `end` is the finding's time, or later when the
   * window was widened to be visible (a finding at t=0).
   */
  start: number;
  end: number;
  /** Where the finding is drawn (ns); absent in older files: `end`. */
  at?: number;
  /**
   * The machine was stuck from here to `end` (nothing ran: every thread waited); the tracer
   * draws this tail so stuck spins and holds have a length. A fatal finding sits at its end.
   */
  stuckAt?: number;
  /**
   * The finding as the traced replay met it, so the page's machine state, time and timeline
   * all come from one run (the shrunk schedule's replay, not the hunt's original schedule).
   */
  run?: TimelineRun;
  slices: TimelineSlice[];
  instants: TimelineInstant[];
}
