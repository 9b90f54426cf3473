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
  for (;;) {
    // An interrupt running on the idle CPU finishes first (the scheduler runs at its exit).
    if (c.idleIrq > 0) yield cur.thread.spinUntil(() => c.idleIrq === 0);
    yield cur.thread.acquire(c.runqueue);
    if (c.idleIrq === 0) break;
    yield cur.thread.release(c.runqueue); // an interrupt reached the idle CPU first
  }
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
  cur.state = why.idle === true ? 'TASK_IDLE' : 'TASK_UNINTERRUPTIBLE';
  cur.sleepSeq++;
  cur.sleepSince = cur.thread.clock;
  m.emit('sleep', cur);
  yield* releaseCpu(cur);
  if (!cur.woken) yield cur.thread.block(cur.sleepWq); // check-and-block is one step
  // Woken before it blocked: it still resumes no earlier than its waker (as a block would).
  else if (cur.wokenAt > cur.thread.clock) yield cur.thread.work(cur.wokenAt - cur.thread.clock);
  m.emit('sleepEnd', cur);
  cur.woken = false;
  cur.state = 'TASK_RUNNING';
  cur.waitingFor = null;
  yield* acquireCpu(cur);
}

/** wake_up_process(): make a sleeping (or about to sleep) task runnable. */
export function wake_up_process(task: Task): void {
  task.woken = true;
  task.wokenAt = task.thread.sim.now();
  task.cpu.machine.emit('wakeup', task);
  task.thread.sim.wake(task.sleepWq);
}

/**
 * Arm a timeout for the sleep `cur` is about to start: after `ns` it is woken unless that sleep
 * already ended. Returns a probe telling, after the sleep, whether the timeout fired.
 */
export function armTimeout(cur: Task, ns: number, name: string): () => boolean {
  const seq = cur.sleepSeq + 1; // the sleep that follows
  let fired = false;
  cur.thread.sim.after(ns, () => {
    if (cur.sleepSeq === seq && cur.state !== 'TASK_RUNNING') {
      fired = true;
      wake_up_process(cur);
    }
  }, `${name}:${cur.comm}`);
  return () => fired;
}

/** schedule_timeout(): sleep until woken or `ns` of virtual time passed; true when it timed out. */
export function* schedule_timeout(cur: Task, ns: number, why: WaitInfo): Generator<unknown, boolean, unknown> {
  const timedOut = armTimeout(cur, ns, 'schedule_timeout');
  yield* sleep(cur, why, 'schedule_timeout');
  return timedOut();
}

/** msleep(): sleep at least `ms` milliseconds of virtual time (wakeups before that are ignored). */
export function* msleep(cur: Task, ms: number): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'msleep');
  const sim = cur.thread.sim;
  const until = sim.now() + ms * 1_000_000;
  while (sim.now() < until) {
    yield* schedule_timeout(cur, until - sim.now(), { kind: 'wait_queue', what: `msleep(${ms})` });
  }
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

/**
 * set_cpus_allowed_ptr(current, cpumask_of(cpu)) for the running task: leave this CPU and run on
 * `cpu` from now on (the kernel's stopper thread moves it; here the task queues for the new
 * CPU's run queue itself). Sleeps, so only from process context.
 */
export function* migrate_task(cur: Task, cpu: number): Generator<unknown, void, unknown> {
  const m = machine(cur);
  const target = m.cpu(cpu);
  if (target === cur.cpu) return;
  yield* might_sleep(cur, 'set_cpus_allowed_ptr');
  yield* releaseCpu(cur);
  cur.cpu = target;
  yield* acquireCpu(cur);
}
