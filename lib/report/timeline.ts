/**
 * A finding's timeline: what each CPU was doing in the stretch of virtual time that led to the
 * finding, taken from a traced replay of the finding's schedule. The JSON carries it as
 * `findings[].timeline`; the HTML report draws it as an SVG per finding. Types only here: the
 * tracer (lib/report/trace.ts) builds it, the HTML renderer (lib/report/html.ts) draws it.
 */

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
  /** The window drawn: [start, end] in virtual ns (end is the finding's time). */
  start: number;
  end: number;
  slices: TimelineSlice[];
  instants: TimelineInstant[];
}
