/**
 * Sleeping and the CPU: task states, set_current_state, schedule(), try_to_wake_up /
 * wake_up_process, signals, schedule_timeout, msleep, cond_resched, might_sleep, and
 * preemption points (kernel/sched/core.c, include/linux/sched.h, kernel/signal.c).
 *
 * A task owns its CPU's run queue while it runs. To sleep it gives the CPU away (the next task
 * waiting for that CPU gets it, FIFO) and blocks on its own sleep queue; when woken it waits
 * for the CPU again. The handshake is the kernel's: the sleeper sets its state
 * (set_current_state) BEFORE it tests its condition, and schedule() sleeps only if the state is
 * still not TASK_RUNNING; try_to_wake_up sets TASK_RUNNING, and does nothing to a task that is
 * already running. A wakeup that lands between the sleeper's test and its state change is
 * therefore lost, exactly as in the kernel. The task's state is a shared object (`task.obj`):
 * every write and test of it from another context is a visible step.
 */
import { SCHED } from '../../scheduler';
import type { Machine } from './machine';
import { in_interrupt } from './preempt';
import { PF_IDLE, TASK_NORMAL, type Task, type TaskState, type WaitInfo } from './task';

function machine(cur: Task): Machine {
  return cur.cpu.machine;
}

export const SIGKILL = 9;

/** Wait for this task's CPU and become its running task. */
export function* acquireCpu(cur: Task): Generator<unknown, void, unknown> {
  const c = cur.cpu;
  cur.waitingFor = { kind: 'cpu', cpu: c, what: `${c}` };
  // idleIrq is the idle task's state: hardirqEntry changes it in steps that touch c.idle.obj,
  // and each step here that tests it touches that object too (DPOR footprint).
  const idleObj = c.idle.obj;
  for (;;) {
    // An interrupt running on the idle CPU finishes first (the scheduler runs at its exit).
    cur.thread.sim.also(idleObj);
    if (c.idleIrq > 0) yield cur.thread.spinUntil(() => c.idleIrq === 0, null, null, null, [idleObj]);
    yield cur.thread.acquire(c.runqueue);
    cur.thread.sim.also(idleObj);
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

/** set the running task's state inside the current step (which thereby touches the task). */
export function set_task_state(cur: Task, state: TaskState): void {
  cur.thread.sim.also(cur.obj);
  cur.state = state;
}

function setStateFx(_t: unknown, cur: Task, state: TaskState): void {
  cur.state = state;
}

/**
 * set_current_state(state): the task's state, written with a full barrier (smp_store_mb) so
 * the condition test that follows cannot be reordered before it. A visible write of the task.
 */
export function* set_current_state(cur: Task, state: TaskState): Generator<unknown, void, unknown> {
  yield cur.thread.write(cur.obj, setStateFx, cur, state);
}

/** __set_current_state(state): the same store without the barrier (sequentially consistent here). */
export function* __set_current_state(cur: Task, state: TaskState): Generator<unknown, void, unknown> {
  yield cur.thread.write(cur.obj, setStateFx, cur, state);
}

/** signal_pending_state: a pending signal keeps an interruptible (or a killable, for SIGKILL) sleeper awake. */
function signal_pending_state(state: TaskState, p: Task): boolean {
  if (state === 'TASK_INTERRUPTIBLE') return p.sigpending !== 0;
  if (state === 'TASK_KILLABLE') return (p.sigpending & (1 << SIGKILL)) !== 0;
  return false;
}

/** signal_pending(current). */
export function signal_pending(cur: Task): boolean {
  return cur.sigpending !== 0;
}

/** fatal_signal_pending(current): SIGKILL is pending. */
export function fatal_signal_pending(cur: Task): boolean {
  return (cur.sigpending & (1 << SIGKILL)) !== 0;
}

/**
 * The scheduler's half of sleeping: called after the caller set a sleeping state (or, for the
 * primitives built on it, with the state they set themselves). `why` says what the task waits
 * for (reports, the wait-for graph). Returns once woken and running again; returns at once when
 * a waker already set TASK_RUNNING, or a signal is pending for an interruptible state.
 */
export function* sleep(cur: Task, why: WaitInfo, where = 'schedule'): Generator<unknown, void, unknown> {
  const m = machine(cur);
  m.emit('schedule', cur, where);
  if (cur.depth > 0 || in_interrupt(cur.preempt_count)) {
    // A hardirq or softirq tried to sleep: upstream prints "scheduling while atomic" (the hook
    // above) and, over the idle task, "bad: scheduling from the idle thread!", then carries on
    // with a corrupt run queue. The model cannot follow it there: the run ends (fatal).
    if ((cur.flags & PF_IDLE) !== 0) m.emit('idleSchedule', cur);
    cur.thread.sim.halt();
    yield cur.thread.point();
    return;
  }
  // schedule(): signal_pending_state keeps the task running; a TASK_RUNNING task does not sleep.
  if (cur.state !== 'TASK_RUNNING' && signal_pending_state(cur.state, cur)) set_task_state(cur, 'TASK_RUNNING');
  if (cur.state === 'TASK_RUNNING') {
    yield* preemptionPoint(cur);
    return;
  }
  // A service thread's wait for work is TASK_IDLE (it never counts as hung).
  if (why.idle === true && cur.state === 'TASK_UNINTERRUPTIBLE') set_task_state(cur, 'TASK_IDLE');
  cur.waitingFor = why;
  cur.sleepSeq++;
  cur.sleepSince = cur.thread.clock;
  m.emit('sleep', cur);
  yield* releaseCpu(cur);
  // The check and the block are one step: a wakeup either came before it (state RUNNING) or
  // finds the task blocked.
  if ((cur.state as TaskState) !== 'TASK_RUNNING') yield cur.thread.block(cur.sleepWq);
  // Woken before it blocked: it still resumes no earlier than its waker (as a block would).
  else if (cur.wokenAt > cur.thread.clock) yield cur.thread.work(cur.wokenAt - cur.thread.clock);
  m.emit('sleepEnd', cur);
  cur.waitingFor = null;
  yield* acquireCpu(cur);
}

/**
 * The loop every simple sleeper shares: set TASK_UNINTERRUPTIBLE (or `state`), test `cond`,
 * schedule() while it is false; TASK_RUNNING again at the end. The condition is tested after
 * the state is set, so a waker that makes it true and then wakes the task is never lost.
 */
export function* sleep_until(cur: Task, cond: () => boolean, why: WaitInfo, where: string, state: TaskState = 'TASK_UNINTERRUPTIBLE'): Generator<unknown, void, unknown> {
  for (;;) {
    set_task_state(cur, state);
    if (cond()) break;
    yield* sleep(cur, why, where);
  }
  set_task_state(cur, 'TASK_RUNNING');
}

/**
 * schedule(): a bare call. Sleeps unless the task's state is TASK_RUNNING (a waker got there
 * first) or a signal is pending for an interruptible state; another runnable task may run first
 * either way. `why` describes the wait for reports (default: the task state).
 */
export function* schedule(cur: Task, why?: WaitInfo): Generator<unknown, void, unknown> {
  // __schedule reads prev->__state under the run-queue lock: a visible read of the task.
  yield cur.thread.read(cur.obj);
  yield* sleep(cur, why ?? { kind: 'wait_queue', what: 'schedule' }, 'schedule');
}

/**
 * try_to_wake_up (kernel/sched/core.c), inside the current step: if `p` is in a sleeping state
 * it becomes TASK_RUNNING and, if it already blocked, runnable again; a TASK_RUNNING task is
 * left alone (returns false). This is what lets a wakeup be lost when the sleeper tests its
 * condition before setting its state.
 */
export function try_to_wake_up(p: Task, state: number = TASK_NORMAL): boolean {
  const sim = p.thread.sim;
  sim.also(p.obj);
  if (p.state === 'TASK_RUNNING' || p.state === 'TASK_DEAD' || (stateBit(p.state) & state) === 0) return false;
  p.state = 'TASK_RUNNING';
  p.wokenAt = sim.now();
  p.cpu.machine.emit('wakeup', p);
  sim.wake(p.sleepWq);
  return true;
}

function stateBit(s: TaskState): number {
  switch (s) {
    case 'TASK_INTERRUPTIBLE':
      return 0x1;
    case 'TASK_UNINTERRUPTIBLE':
      return 0x2;
    case 'TASK_KILLABLE':
      return 0x2 | 0x100;
    case 'TASK_IDLE':
      return 0x2 | 0x400;
    default:
      return 0;
  }
}

function wakeFx(_t: unknown, p: Task): void {
  try_to_wake_up(p);
}

/** wake_up_process(p): try_to_wake_up(p, TASK_NORMAL) as a visible step of its own on p. */
export function* wake_up_process(cur: Task, p: Task): Generator<unknown, void, unknown> {
  yield cur.thread.write(p.obj, wakeFx, p);
}

function sigFx(_t: unknown, p: Task, sig: number): void {
  p.sigpending |= 1 << sig;
  // signal_wake_up: an interruptible sleeper wakes; a killable one for SIGKILL.
  const kill = sig === SIGKILL;
  try_to_wake_up(p, kill ? 0x1 | 0x100 | 0x2 : 0x1);
  if (kill && p.state === 'TASK_KILLABLE') try_to_wake_up(p, 0x2);
}

/** send_sig(sig, p, 0): mark `sig` pending for p and wake it if its sleep is interruptible by it. */
export function* send_sig(cur: Task, sig: number, p: Task): Generator<unknown, void, unknown> {
  if (!Number.isInteger(sig) || sig < 1 || sig > 31) throw new Error(`send_sig: bad signal ${sig}`);
  yield cur.thread.write(p.obj, sigFx, p, sig);
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
      try_to_wake_up(cur);
    }
  }, `${name}:${cur.comm}`);
  return () => fired;
}

/**
 * schedule_timeout_uninterruptible(): set TASK_UNINTERRUPTIBLE and sleep until woken or `ns`
 * of virtual time passed; true when it timed out. (schedule_timeout() proper leaves the state
 * to its caller; `schedule_timeout` here keeps the form every caller in the model uses.)
 */
export function* schedule_timeout(cur: Task, ns: number, why: WaitInfo): Generator<unknown, boolean, unknown> {
  set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
  const timedOut = armTimeout(cur, ns, 'schedule_timeout');
  yield* sleep(cur, why, 'schedule_timeout');
  return timedOut();
}
export const schedule_timeout_uninterruptible = schedule_timeout;

/** msleep(): sleep at least `ms` milliseconds of virtual time (wakeups before that are ignored). */
export function* msleep(cur: Task, ms: number): Generator<unknown, void, unknown> {
  // kernel/time/sleep_timeout.c msleep() (v6.13; timer.c before): no might_sleep() of its own;
  // a call from atomic context shows only as "scheduling while atomic".
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
  for (let i = 0; i < q.length; i++) ids[i + 1] = q.at(i)!.thread.id;
  ids.sort();
  const self = ids.indexOf(cur.thread.id);
  const pick = ids[sim.choose(SCHED, ids, ids.length, self)];
  if (pick === cur.thread.id) return;
  // The chosen task takes the CPU next: move it to the head of the run queue.
  const k = q.findIndex((f) => f.thread.id === pick);
  q.unshift(q.removeAt(k));
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
