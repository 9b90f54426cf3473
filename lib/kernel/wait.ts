/**
 * Wait queues: a head with a list of sleeping tasks, wait_event*() (the prepare_to_wait /
 * check / schedule / finish_wait loop) and wake_up*(). The condition is re-evaluated after every
 * wakeup, so spurious wakeups are harmless; a wakeup between the check and the sleep is not lost:
 * prepare_to_wait sets the task state before the check, and try_to_wake_up sets it back to
 * TASK_RUNNING, which schedule() then sees.
 */
import { armTimeout, might_sleep, set_task_state, sleep, try_to_wake_up } from './sched';
import type { Machine } from './machine';
import type { Task } from './task';

export class wait_queue_head_t {
  readonly waiters: Task[] = [];
  readonly obj: number;
  constructor(
    m: Machine,
    readonly name: string,
  ) {
    this.obj = m.sim.object(name);
  }
}

/** DECLARE_WAIT_QUEUE_HEAD(name) / init_waitqueue_head(&wq). */
export function DECLARE_WAIT_QUEUE_HEAD(m: Machine, name: string): wait_queue_head_t {
  return new wait_queue_head_t(m, name);
}
export const init_waitqueue_head = DECLARE_WAIT_QUEUE_HEAD;

function remove(wq: wait_queue_head_t, t: Task): void {
  const i = wq.waiters.indexOf(t);
  if (i >= 0) wq.waiters.splice(i, 1);
}

/**
 * The loop every wait_event form shares. `timeoutNs` < 0 means none. Returns false when the
 * timeout expired with the condition still false.
 */
function* waitLoop(cur: Task, wq: wait_queue_head_t, cond: () => boolean, timeoutNs: number, where: string, holders?: () => Task[]): Generator<unknown, boolean, unknown> {
  yield* might_sleep(cur, where);
  const sim = cur.thread.sim;
  const deadline = timeoutNs < 0 ? Infinity : sim.now() + timeoutNs;
  for (;;) {
    // prepare_to_wait: on the queue and the state set, under wq->lock (one visible step), then
    // the check; finish_wait (below) in the same step when the condition holds.
    yield cur.thread.write(wq.obj);
    if (!wq.waiters.includes(cur)) wq.waiters.push(cur);
    set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
    if (cond()) break;
    if (sim.now() >= deadline) {
      remove(wq, cur);
      set_task_state(cur, 'TASK_RUNNING');
      return false;
    }
    if (deadline !== Infinity) armTimeout(cur, deadline - sim.now(), where);
    yield* sleep(cur, { kind: 'wait_queue', what: wq.name, holders }, where);
  }
  remove(wq, cur); // finish_wait: TASK_RUNNING, off the queue
  set_task_state(cur, 'TASK_RUNNING');
  return true;
}

/**
 * wait_event(wq, condition): sleep (TASK_UNINTERRUPTIBLE) until `cond()` is true. `holders`, when
 * the condition waits for a resource with known owners (tags, reserved elements), names the tasks
 * that must release it, so the deadlock detector can follow the wait.
 */
export function* wait_event(cur: Task, wq: wait_queue_head_t, cond: () => boolean, holders?: () => Task[]): Generator<unknown, void, unknown> {
  yield* waitLoop(cur, wq, cond, -1, 'wait_event', holders);
}

/** wait_event_timeout: true (the kernel's remaining jiffies > 0) if the condition came true in time. */
export function* wait_event_timeout(cur: Task, wq: wait_queue_head_t, cond: () => boolean, timeoutNs: number): Generator<unknown, boolean, unknown> {
  if (!(timeoutNs >= 0)) throw new Error(`wait_event_timeout: timeout must be >= 0 ns, got ${timeoutNs}`);
  return yield* waitLoop(cur, wq, cond, timeoutNs, 'wait_event_timeout');
}

function wakeUpFx(_t: unknown, wq: wait_queue_head_t): void {
  for (const t of wq.waiters) try_to_wake_up(t);
}

/**
 * wake_up(wq) / wake_up_all(wq): wake every task waiting (no exclusive waiters in this model);
 * one step, as __wake_up walks the queue under wq->lock.
 */
export function* wake_up(cur: Task, wq: wait_queue_head_t): Generator<unknown, void, unknown> {
  yield cur.thread.write(wq.obj, wakeUpFx, wq);
}
export const wake_up_all = wake_up;

/**
 * waitqueue_active(wq): someone is on the queue — a lockless read, racy by design as in the
 * kernel (a caller needs a barrier pairing with the waiter's); a visible read here.
 */
export function* waitqueue_active(cur: Task, wq: wait_queue_head_t): Generator<unknown, boolean, unknown> {
  yield cur.thread.read(wq.obj);
  return wq.waiters.length > 0;
}
