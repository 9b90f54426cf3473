/**
 * Sleeping and the CPU: schedule(), the set_current_state / wake_up_process handshake,
 * msleep, cond_resched, might_sleep, and preemption points.
 *
 * A task owns its CPU's run queue while it runs. To sleep it gives the CPU away (the next task
 * waiting for that CPU gets it, FIFO) and blocks on its own sleep queue; when woken it waits
 * for the CPU again. A wakeup that comes between "decide to sleep" and "sleep" is not lost:
 * wake_up_process sets `woken` first, as the kernel's task state does.
 */
import { SCHED } from '../../scheduler';
import type { Machine } from './machine';
import type { Task, WaitInfo } from './task';

function machine(cur: Task): Machine {
  return cur.cpu.machine;
}

/** Wait for this task's CPU and become its running task. */
export function* acquireCpu(cur: Task): Generator<unknown, void, unknown> {
  const c = cur.cpu;
  cur.waitingFor = { kind: 'cpu', cpu: c, what: `${c}` };
  yield cur.thread.acquire(c.runqueue);
  cur.waitingFor = null;
  c.setCurr(cur);
}

/** Give the CPU to the next task waiting for it (or to its idle task). */
export function* releaseCpu(cur: Task): Generator<unknown, void, unknown> {
  const c = cur.cpu;
  yield cur.thread.release(c.runqueue);
  if (c.curr === cur) c.setCurr(null);
}

/**
 * schedule() from a task that has decided to sleep: `why` says what it waits for (for reports
 * and the wait-for graph). Returns once woken and running again.
 */
export function* sleep(cur: Task, why: WaitInfo, where = 'schedule'): Generator<unknown, void, unknown> {
  const m = machine(cur);
  m.emit('schedule', cur, where);
  cur.waitingFor = why;
  cur.state = 'TASK_UNINTERRUPTIBLE';
  yield* releaseCpu(cur);
  if (!cur.woken) yield cur.thread.block(cur.sleepWq); // check-and-block is one step
  cur.woken = false;
  cur.state = 'TASK_RUNNING';
  cur.waitingFor = null;
  yield* acquireCpu(cur);
}

/** wake_up_process(): make a sleeping (or about to sleep) task runnable. */
export function wake_up_process(task: Task): void {
  task.woken = true;
  task.thread.sim.wake(task.sleepWq);
}

/** msleep(): sleep at least `ms` milliseconds of virtual time. */
export function* msleep(cur: Task, ms: number): Generator<unknown, void, unknown> {
  const sim = cur.thread.sim;
  sim.after(ms * 1_000_000, () => wake_up_process(cur), `msleep:${cur.comm}`);
  yield* sleep(cur, { kind: 'wait_queue', what: `msleep(${ms})` }, 'msleep');
}

/**
 * might_sleep(): the debug check (CONFIG_DEBUG_ATOMIC_SLEEP, as a hook detectors subscribe to)
 * plus, with voluntary or full preemption, a preemption point.
 */
export function* might_sleep(cur: Task, where = 'might_sleep'): Generator<unknown, void, unknown> {
  const m = machine(cur);
  m.emit('mightSleep', cur, where);
  if (m.preemption !== 'none') yield* preemptionPoint(cur);
}

/** cond_resched(): an explicit preemption point in every preemption model. */
export function* cond_resched(cur: Task): Generator<unknown, void, unknown> {
  yield* preemptionPoint(cur);
}

/**
 * A point where the running task may be preempted: only in task context with preempt_count 0
 * and interrupts on, and only when another task waits for this CPU. Whether it happens is a
 * scheduling choice (default: no preemption), so hunts explore both.
 */
export function* preemptionPoint(cur: Task): Generator<unknown, void, unknown> {
  const c = cur.cpu;
  // A scheduling point first: other tasks may become runnable (queue for this CPU) right here.
  yield cur.thread.point();
  const q = c.runqueue.queue.waiters;
  if (q.length === 0 || cur.preempt_count !== 0 || cur.irqs_disabled || cur.depth !== 0 || c.curr !== cur) return;
  const sim = cur.thread.sim;
  const ids = new Int32Array(q.length + 1);
  ids[0] = cur.thread.id;
  for (let i = 0; i < q.length; i++) ids[i + 1] = q[i].thread.id;
  ids.sort();
  const self = ids.indexOf(cur.thread.id);
  const pick = ids[sim.choose(SCHED, ids, ids.length, self)];
  if (pick === cur.thread.id) return;
  // The chosen task takes the CPU next: move it to the head of the run queue.
  const k = q.findIndex((f) => f.thread.id === pick);
  q.unshift(q.splice(k, 1)[0]);
  machine(cur).preemptions++;
  yield* releaseCpu(cur);
  yield* acquireCpu(cur);
}
