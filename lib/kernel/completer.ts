/**
 * Who ends a wait: an optional annotation saying which task or work item completes a
 * completion or makes a wait_event condition true. The kernel has no such notion (its hung_task
 * watchdog only says a task waited too long); irqsim's wait-for graph (lib/check/deadlock.ts)
 * follows it so that two tasks each waiting for the other's completion, or a flusher waiting for
 * a work item that waits for the flusher, is a named cycle instead of a bare `no_progress`.
 *
 * Keyed by the waited-on object (a completion or a wait_queue_head_t): anything with a `waiters`
 * list of tasks. Without an annotation a wait has no edge, as before.
 */
import type { Machine } from './machine';
import type { Task } from './task';

/** Anything tasks wait on in a FIFO: struct completion, wait_queue_head_t. */
export interface Waitee {
  readonly name: string;
  readonly waiters: Task[];
}

/**
 * What ends the wait: a task, or a work item (given as the tasks that must run for it to
 * finish: the worker running it, or the workers ahead of it; lib/kernel/workqueue.ts's
 * work_holders), or any function returning the tasks now responsible.
 */
export type Completer = Task | { work: { name: string }; holders: () => Task[] } | (() => Task[]);

export interface CompleterEntry {
  obj: Waitee;
  completer: Completer;
  /** For reports: "task foo/12", "work foo_work_fn". */
  label: string;
}

const registries = new WeakMap<Machine, CompleterEntry[]>();

function entries(m: Machine): CompleterEntry[] {
  let r = registries.get(m);
  if (r === undefined) {
    r = [];
    registries.set(m, r);
  }
  return r;
}

function isTask(c: Completer): c is Task {
  return typeof c === 'object' && 'pid' in c && 'comm' in c;
}

/**
 * Declare that `completer` is what completes `obj` (complete() on a completion, or the state
 * change plus wake_up() a wait_event waits for). A later annotation of the same object replaces
 * the earlier one.
 */
export function set_completer(m: Machine, obj: Waitee, completer: Completer, label?: string): void {
  const list = entries(m);
  const i = list.findIndex((e) => e.obj === obj);
  const l = label ?? (isTask(completer) ? `task ${completer.comm}/${completer.pid}` : typeof completer === 'function' ? `completer of ${obj.name}` : `work ${completer.work.name}`);
  const e = { obj, completer, label: l };
  if (i >= 0) list[i] = e;
  else list.push(e);
}

/** The tasks that must run for the annotated wait on `obj` to end (empty when unannotated). */
export function completerTasks(e: CompleterEntry): Task[] {
  const c = e.completer;
  if (isTask(c)) return c.state === 'TASK_DEAD' ? [] : [c];
  if (typeof c === 'function') return c();
  return c.holders();
}

/** The annotation for `obj`, if any (for the wait primitives: completion.ts, wait.ts). */
export function completerOf(m: Machine, obj: Waitee): CompleterEntry | null {
  return registries.get(m)?.find((e) => e.obj === obj) ?? null;
}

/** The annotated object `t` is queued on, if any (the wait-for graph's lookup). */
export function completerWaitedBy(m: Machine, t: Task): CompleterEntry | null {
  const list = registries.get(m);
  if (list === undefined) return null;
  for (const e of list) if (e.obj.waiters.includes(t)) return e;
  return null;
}
