/**
 * Tasklets (kernel/softirq.c and include/linux/interrupt.h, v6.12): deferred functions run in
 * TASKLET_SOFTIRQ on the CPU that scheduled them, never on two CPUs at once.
 *
 *  - tasklet_schedule: test_and_set_bit(TASKLET_STATE_SCHED); if it was clear, append the tasklet
 *    to this CPU's tasklet_vec with IRQs off and raise TASKLET_SOFTIRQ (__tasklet_schedule_common).
 *  - tasklet_action (tasklet_action_common): take this CPU's whole list with IRQs off; for each
 *    tasklet, tasklet_trylock (test_and_set_bit RUN); if it got RUN and the count is 0, clear SCHED
 *    (tasklet_clear_sched, waking tasklet_kill) and call the callback, then tasklet_unlock (clear
 *    RUN, wake_up_var). A tasklet running elsewhere or disabled goes back on the list and the
 *    softirq is raised again.
 *  - tasklet_disable: count++ then tasklet_unlock_wait (sleep until RUN is clear); tasklet_enable:
 *    count--. tasklet_kill: wait for SCHED to be clear and take it, wait for RUN, clear SCHED.
 *
 * Every access to the tasklet's state is a step: the state word is a bitmap (bitops.ts), the
 * count an atomic_t (atomic.ts), the per-CPU list its own shared object. wait_var_event(&t->state)
 * is a wait queue per tasklet (upstream a hashed bit wait queue); its condition reads the state
 * in the wait queue's step, which the state's conformance guard allows.
 *
 * Simplification: HI_SOFTIRQ tasklets (tasklet_hi_schedule) are not modelled.
 */
import type { Thread } from '../../scheduler';
import { ATOMIC_INIT, atomic_dec, atomic_inc, atomic_read, type atomic_t } from './atomic';
import { DECLARE_BITMAP, clear_bit, test_and_clear_bit, test_and_set_bit, type bitmap } from './bitops';
import { WARN_ON_ONCE } from './bug';
import { local_irq_disable, local_irq_enable, local_irq_restore, local_irq_save } from './irqflags';
import type { KernelBody, Machine } from './machine';
import { in_interrupt } from './preempt';
import { TASKLET_SOFTIRQ, open_softirq, raise_softirq_irqoff, softirqMark } from './softirq';
import type { Task } from './task';
import { DECLARE_WAIT_QUEUE_HEAD, wait_event, wake_up, type wait_queue_head_t } from './wait';

export const TASKLET_STATE_SCHED = 0;
export const TASKLET_STATE_RUN = 1;

export type tasklet_callback = (cur: Task, t: tasklet_struct) => KernelBody;

export class tasklet_struct {
  /** state: TASKLET_STATE_SCHED, TASKLET_STATE_RUN. */
  readonly state: bitmap;
  /** count: disable depth (0: enabled). */
  readonly count: atomic_t;
  /** wait_var_event(&t->state) waiters (tasklet_kill, tasklet_unlock_wait). */
  readonly varWq: wait_queue_head_t;
  callback: tasklet_callback | null = null;
  constructor(
    readonly m: Machine,
    readonly name: string,
  ) {
    const wq = DECLARE_WAIT_QUEUE_HEAD(m, `${name}.state (var)`);
    this.varWq = wq;
    const sim = m.sim;
    this.state = DECLARE_BITMAP(m, `${name}.state`, 2, () => sim.stepObj === wq.obj);
    this.count = ATOMIC_INIT(m, `${name}.count`, 0);
  }
  toString(): string {
    return this.name;
  }
}

/** One CPU's tasklet_vec (struct tasklet_head): the tasklets to run there, in order. */
class tasklet_head {
  readonly obj: number;
  readonly s: { list: tasklet_struct[] };
  /** What the take-all effect hands to the code after its yield (same step). */
  taken: tasklet_struct[] = [];
  constructor(m: Machine, cpu: number) {
    this.obj = m.sim.object(`tasklet_vec/${cpu}`);
    this.s = m.sim.shared(this.obj, { list: [] as tasklet_struct[] });
  }
}

const vecs = new WeakMap<Machine, tasklet_head[]>();

/** softirq_init's open_softirq(TASKLET_SOFTIRQ, tasklet_action), done when the first tasklet is set up. */
function tasklet_vec(m: Machine): tasklet_head[] {
  let v = vecs.get(m);
  if (v === undefined) {
    v = m.cpus.map((c) => new tasklet_head(m, c.id));
    vecs.set(m, v);
    open_softirq(m, TASKLET_SOFTIRQ, tasklet_action);
  }
  return v;
}

/** tasklet_setup(t, callback) / DECLARE_TASKLET: a tasklet named `name`. */
export function tasklet_setup(m: Machine, name: string, callback: tasklet_callback): tasklet_struct {
  tasklet_vec(m);
  const t = new tasklet_struct(m, name);
  t.callback = callback;
  return t;
}

function fxEnqueue(_t: Thread, h: tasklet_head, t: tasklet_struct): void {
  h.s.list.push(t);
}
function fxTakeAll(_t: Thread, h: tasklet_head): void {
  h.taken = h.s.list;
  h.s.list = [];
}

/** tasklet_schedule(t): queue it on this CPU unless it is already scheduled. */
export function* tasklet_schedule(cur: Task, t: tasklet_struct): KernelBody<void> {
  if (yield* test_and_set_bit(cur, TASKLET_STATE_SCHED, t.state)) return;
  // __tasklet_schedule_common
  const flags = yield* local_irq_save(cur);
  const h = tasklet_vec(cur.cpu.machine)[cur.cpu.id];
  yield cur.thread.write(h.obj, fxEnqueue, h, t);
  yield* raise_softirq_irqoff(cur, TASKLET_SOFTIRQ);
  yield* local_irq_restore(cur, flags);
}

/** tasklet_clear_sched: clear SCHED and wake tasklet_kill; WARN_ONCE if it was not set. */
function* tasklet_clear_sched(cur: Task, t: tasklet_struct): KernelBody<boolean> {
  if (yield* test_and_clear_bit(cur, TASKLET_STATE_SCHED, t.state)) {
    yield* wake_up(cur, t.varWq); // wake_up_var(&t->state)
    return true;
  }
  cur.stack.push('tasklet_clear_sched');
  WARN_ON_ONCE(cur, true, `tasklet SCHED state not set: callback ${t.callback?.name || t.name}`);
  cur.stack.pop();
  return false;
}

/** tasklet_unlock: clear RUN and wake tasklet_unlock_wait. */
function* tasklet_unlock(cur: Task, t: tasklet_struct): KernelBody<void> {
  yield* clear_bit(cur, TASKLET_STATE_RUN, t.state);
  yield* wake_up(cur, t.varWq);
}

/** The TASKLET_SOFTIRQ action: run this CPU's scheduled tasklets. */
export function* tasklet_action(cur: Task): KernelBody<void> {
  const h = tasklet_vec(cur.cpu.machine)[cur.cpu.id];
  const stack = cur.stack;
  stack.push('tasklet_action');
  yield* local_irq_disable(cur);
  yield cur.thread.write(h.obj, fxTakeAll, h);
  const list = h.taken;
  h.taken = [];
  yield* local_irq_enable(cur);
  for (const t of list) {
    if (!(yield* test_and_set_bit(cur, TASKLET_STATE_RUN, t.state))) {
      // tasklet_trylock succeeded: nobody else runs it
      if ((yield* atomic_read(cur, t.count)) === 0) {
        if (yield* tasklet_clear_sched(cur, t)) {
          stack.push(t.callback!.name || t.name);
          yield* t.callback!(cur, t);
          stack.pop();
        }
        yield* tasklet_unlock(cur, t);
        continue;
      }
      yield* tasklet_unlock(cur, t);
    }
    // Running on another CPU, or disabled: back on the list, and raise again.
    yield* local_irq_disable(cur);
    yield cur.thread.write(h.obj, fxEnqueue, h, t);
    softirqMark(cur.cpu, TASKLET_SOFTIRQ); // __raise_softirq_irqoff
    yield* local_irq_enable(cur);
  }
  stack.pop();
}

/** tasklet_unlock_wait: wait_var_event(&t->state, !test_bit(TASKLET_STATE_RUN, &t->state)). */
export function* tasklet_unlock_wait(cur: Task, t: tasklet_struct): KernelBody<void> {
  const bits = t.state.bits;
  yield* wait_event(cur, t.varWq, () => bits[TASKLET_STATE_RUN] === 0);
}

/** tasklet_disable_nosync: count++ (the callback may still be running when it returns). */
export function* tasklet_disable_nosync(cur: Task, t: tasklet_struct): KernelBody<void> {
  yield* atomic_inc(cur, t.count);
}

/** tasklet_disable: count++, then wait until it is not running. Sleeps. */
export function* tasklet_disable(cur: Task, t: tasklet_struct): KernelBody<void> {
  yield* tasklet_disable_nosync(cur, t);
  yield* tasklet_unlock_wait(cur, t);
}

/** tasklet_enable: count--; a tasklet scheduled meanwhile runs at its next softirq. */
export function* tasklet_enable(cur: Task, t: tasklet_struct): KernelBody<void> {
  yield* atomic_dec(cur, t.count);
}

/**
 * tasklet_kill: wait until it is neither scheduled nor running, and leave it unscheduled. It
 * does not stop a later tasklet_schedule: the caller must have stopped the sources first.
 */
export function* tasklet_kill(cur: Task, t: tasklet_struct): KernelBody<void> {
  if (in_interrupt(cur.preempt_count)) cur.cpu.machine.log.printk(cur.cpu.id, 'Attempt to kill tasklet from interrupt');
  const bits = t.state.bits;
  cur.stack.push('tasklet_kill');
  while (yield* test_and_set_bit(cur, TASKLET_STATE_SCHED, t.state)) yield* wait_event(cur, t.varWq, () => bits[TASKLET_STATE_SCHED] === 0);
  yield* tasklet_unlock_wait(cur, t);
  yield* tasklet_clear_sched(cur, t);
  cur.stack.pop();
}
