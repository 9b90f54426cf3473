/**
 * Softirqs (kernel/softirq.c): ten vectors with a per-CPU pending mask. raise_softirq marks a
 * vector pending on this CPU; pending vectors run in softirq context (SOFTIRQ_OFFSET in
 * preempt_count, IRQs on) at irq_exit when the interrupted context was not itself in interrupt
 * or bh-disabled context, at local_bh_enable when the count drops to zero, and in the per-CPU
 * ksoftirqd thread when __do_softirq had to give up after MAX_SOFTIRQ_RESTART rounds or the raise
 * came from process context.
 *
 * Simplification: __do_softirq's 2 ms time limit is not modelled, only the restart count.
 */
import type { Cpu } from './cpu';
import { local_irq_disable, local_irq_enable } from './irqflags';
import type { KernelBody, Machine } from './machine';
import { SOFTIRQ_OFFSET, in_interrupt } from './preempt';
import { cond_resched, sleep_until, try_to_wake_up } from './sched';
import { preempt_latency_start } from './preempt-ip';
import type { Task } from './task';

export const HI_SOFTIRQ = 0;
export const TIMER_SOFTIRQ = 1;
export const NET_TX_SOFTIRQ = 2;
export const NET_RX_SOFTIRQ = 3;
export const BLOCK_SOFTIRQ = 4;
export const IRQ_POLL_SOFTIRQ = 5;
export const TASKLET_SOFTIRQ = 6;
export const SCHED_SOFTIRQ = 7;
export const HRTIMER_SOFTIRQ = 8;
export const RCU_SOFTIRQ = 9;
export const NR_SOFTIRQS = 10;
export const softirq_to_name = ['HI', 'TIMER', 'NET_TX', 'NET_RX', 'BLOCK', 'IRQ_POLL', 'TASKLET', 'SCHED', 'HRTIMER', 'RCU'];

export const MAX_SOFTIRQ_RESTART = 10;

export type SoftirqAction = (cur: Task) => KernelBody;

/** Per-machine softirq state: the registered actions and the lazily started ksoftirqd threads. */
export class SoftirqState {
  readonly actions: (SoftirqAction | null)[] = new Array(NR_SOFTIRQS).fill(null);
  readonly ksoftirqd: (Task | null)[];
  constructor(m: Machine) {
    this.ksoftirqd = new Array(m.cpus.length).fill(null);
  }
}

function check(nr: number): void {
  if (!Number.isInteger(nr) || nr < 0 || nr >= NR_SOFTIRQS) throw new Error(`softirq vector must be 0..${NR_SOFTIRQS - 1}, got ${nr}`);
}

/** open_softirq(nr, action): register the action of a vector (once, at boot, as the kernel does). */
export function open_softirq(m: Machine, nr: number, action: SoftirqAction): void {
  check(nr);
  m.softirq.actions[nr] = action;
}

/** Mark `nr` pending on `cpu` (the part every raise shares). */
export function softirqMark(cpu: Cpu, nr: number): void {
  check(nr);
  cpu.softirqPending |= 1 << nr;
}

/** raise_softirq_irqoff(nr): with IRQs off; outside interrupt context it wakes ksoftirqd. */
export function* raise_softirq_irqoff(cur: Task, nr: number): KernelBody<void> {
  softirqMark(cur.cpu, nr);
  if (!in_interrupt(cur.preempt_count)) wakeup_softirqd(cur.cpu);
}

/** raise_softirq(nr): local_irq_save, raise_softirq_irqoff, local_irq_restore. */
export function* raise_softirq(cur: Task, nr: number): KernelBody<void> {
  yield* raise_softirq_irqoff(cur, nr);
}

/** Wake (starting it the first time) the CPU's ksoftirqd, which runs what is pending. */
export function wakeup_softirqd(cpu: Cpu): void {
  const m = cpu.machine;
  const st = m.softirq;
  let k = st.ksoftirqd[cpu.id];
  if (k === null) {
    k = m.kthread(
      `ksoftirqd/${cpu.id}`,
      cpu.id,
      function* (cur) {
        for (;;) {
          yield* sleep_until(cur, () => cur.cpu.softirqPending !== 0, { kind: 'wait_queue', what: 'softirq work', idle: true }, 'smpboot_thread_fn');
          // run_ksoftirqd: __do_softirq with IRQs off around the pending check, then
          // cond_resched() so a task waiting for this CPU gets it.
          yield* local_irq_disable(cur);
          if (cur.cpu.softirqPending !== 0) yield* __do_softirq(cur);
          yield* local_irq_enable(cur);
          yield* cond_resched(cur);
        }
      },
      { service: true },
    );
    st.ksoftirqd[cpu.id] = k;
    return;
  }
  try_to_wake_up(k);
}

/**
 * __do_softirq: run every pending vector in softirq context with IRQs enabled, restarting while
 * new ones were raised, at most MAX_SOFTIRQ_RESTART times; what is left goes to ksoftirqd.
 * Called with IRQs off; returns with IRQs off.
 */
export function* __do_softirq(cur: Task): KernelBody<void> {
  const cpu = cur.cpu;
  const actions = cpu.machine.softirq.actions;
  const d = cur.depth;
  const savedContext = cur.contexts[d];
  const stack = cur.stack;
  const base = stack.length;
  cur.preempt_count += SOFTIRQ_OFFSET;
  preempt_latency_start(cur, SOFTIRQ_OFFSET, '__do_softirq');
  stack.push('__do_softirq');
  let restart = MAX_SOFTIRQ_RESTART;
  for (;;) {
    let pending = cpu.softirqPending;
    cpu.softirqPending = 0;
    yield* local_irq_enable(cur);
    for (let nr = 0; pending !== 0; nr++, pending >>>= 1) {
      if ((pending & 1) === 0) continue;
      const action = actions[nr];
      if (action === null) continue; // raised but never opened: the kernel would crash; ignore
      cur.contexts[d] = `softirq ${softirq_to_name[nr]}`;
      cpu.machine.emit('softirqEnter', cur, softirq_to_name[nr]);
      yield* action(cur);
      cpu.machine.emit('softirqExit', cur, softirq_to_name[nr]);
    }
    yield* local_irq_disable(cur);
    if (cur.cpu.softirqPending === 0) break;
    if (--restart === 0) {
      wakeup_softirqd(cur.cpu);
      break;
    }
  }
  stack.length = base;
  cur.contexts[d] = savedContext;
  cur.preempt_count -= SOFTIRQ_OFFSET;
}

/**
 * irq_exit's invoke_softirq: with HARDIRQ_OFFSET already removed, run pending softirqs unless the
 * interrupted context was in interrupt or bh-disabled context (it will run them itself).
 */
export function* irqExitSoftirqs(cur: Task): KernelBody<void> {
  if (cur.cpu.softirqPending === 0 || in_interrupt(cur.preempt_count)) return;
  yield* __do_softirq(cur);
}

/** local_bh_enable's part: pending softirqs run once the count is back to zero, in task context. */
export function* bhEnableSoftirqs(cur: Task): KernelBody<void> {
  if (cur.cpu.softirqPending === 0 || in_interrupt(cur.preempt_count)) return;
  const wasOff = cur.irqs_disabled;
  if (!wasOff) yield* local_irq_disable(cur);
  yield* __do_softirq(cur);
  if (!wasOff) yield* local_irq_enable(cur);
}
