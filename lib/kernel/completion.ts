/**
 * Completions (kernel/sched/completion.c): a count of `done` events and a FIFO of waiters.
 * complete() adds one and wakes the first waiter; complete_all() saturates the count (UINT_MAX)
 * and wakes everyone; wait_for_completion() sleeps until it can consume one.
 */
import { armTimeout, might_sleep, set_task_state, sleep, try_to_wake_up } from './sched';
import type { Machine } from './machine';
import type { Task } from './task';
import { wait_queue_head_t } from './wait';

const UINT_MAX = 0xffffffff;

/** struct completion: a done count and a wait queue (FIFO: complete() wakes the first). */
export class completion {
  done = 0;
  readonly wait: wait_queue_head_t;
  constructor(
    m: Machine,
    readonly name: string,
  ) {
    this.wait = new wait_queue_head_t(m, name);
  }

  get waiters(): Task[] {
    return this.wait.waiters;
  }

  get obj(): number {
    return this.wait.obj;
  }
}

/** DECLARE_COMPLETION(name) / init_completion(&x). */
export function DECLARE_COMPLETION(m: Machine, name: string): completion {
  return new completion(m, name);
}
export const init_completion = DECLARE_COMPLETION;

function reinitFx(_t: unknown, x: completion): void {
  x.done = 0;
}

/**
 * reinit_completion(x): x->done = 0, a plain store upstream (no lock): a visible write of the
 * completion, so an interrupt that completes it can land just before or just after it.
 */
export function* reinit_completion(cur: Task, x: completion): Generator<unknown, void, unknown> {
  yield cur.thread.write(x.obj, reinitFx, x);
}

function* waitCommon(cur: Task, x: completion, timeoutNs: number, where: string): Generator<unknown, boolean, unknown> {
  yield* might_sleep(cur, where);
  const sim = cur.thread.sim;
  const deadline = timeoutNs < 0 ? Infinity : sim.now() + timeoutNs;
  // do_wait_for_common runs under x->wait.lock with IRQs off: the test, the queueing and the
  // state change are one step; the lock is dropped around schedule().
  yield cur.thread.write(x.obj);
  while (x.done === 0) {
    if (sim.now() >= deadline) return false;
    set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
    x.waiters.push(cur);
    if (deadline !== Infinity) armTimeout(cur, deadline - sim.now(), where);
    yield* sleep(cur, { kind: 'completion', what: x.name }, where);
    yield cur.thread.write(x.obj);
    const i = x.waiters.indexOf(cur);
    if (i >= 0) x.waiters.splice(i, 1);
  }
  if (x.done !== UINT_MAX) x.done--;
  return true;
}

export function* wait_for_completion(cur: Task, x: completion): Generator<unknown, void, unknown> {
  yield* waitCommon(cur, x, -1, 'wait_for_completion');
}

/** wait_for_completion_timeout: true if completed in time (the kernel returns jiffies left, 0 on timeout). */
export function* wait_for_completion_timeout(cur: Task, x: completion, timeoutNs: number): Generator<unknown, boolean, unknown> {
  if (!(timeoutNs >= 0)) throw new Error(`wait_for_completion_timeout: timeout must be >= 0 ns, got ${timeoutNs}`);
  return yield* waitCommon(cur, x, timeoutNs, 'wait_for_completion');
}

/** try_wait_for_completion: consume a done event without sleeping; false if there is none. */
export function* try_wait_for_completion(cur: Task, x: completion): Generator<unknown, boolean, unknown> {
  yield cur.thread.write(x.obj);
  if (x.done === 0) return false;
  if (x.done !== UINT_MAX) x.done--;
  return true;
}

/** completion_done(x): whether a done event is pending (a visible read of the completion). */
export function* completion_done(cur: Task, x: completion): Generator<unknown, boolean, unknown> {
  yield cur.thread.read(x.obj);
  return x.done !== 0;
}

function completeFx(_t: unknown, x: completion): void {
  if (x.done !== UINT_MAX) x.done++;
  const w = x.waiters.shift();
  if (w !== undefined) try_to_wake_up(w);
}

/**
 * complete(x): callable from any context, never sleeps. Upstream does it all under
 * x->wait.lock with IRQs off (kernel/sched/completion.c complete_with_flags), so the count and
 * the wakeup are one step: no interrupt lands between them.
 */
export function* complete(cur: Task, x: completion): Generator<unknown, void, unknown> {
  yield cur.thread.write(x.obj, completeFx, x);
}

function completeAllFx(_t: unknown, x: completion): void {
  x.done = UINT_MAX;
  for (const w of x.waiters.splice(0)) try_to_wake_up(w);
}

/** complete_all(x): saturate the count and wake every waiter, one step (under x->wait.lock). */
export function* complete_all(cur: Task, x: completion): Generator<unknown, void, unknown> {
  yield cur.thread.write(x.obj, completeAllFx, x);
}
