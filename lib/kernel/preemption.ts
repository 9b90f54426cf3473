/**
 * preempt_disable/enable and local_bh_disable/enable: they move the preempt_count fields the
 * way include/linux/preempt.h does. preempt_enable is a preemption point under full preemption.
 * Softirqs pending at local_bh_enable run there, in softirq context on this task's stack.
 */
import { trace_softirqs_off, trace_softirqs_on } from './irqtrace';
import { preempt_latency_start } from './preempt-ip';
import { PREEMPT_OFFSET, SOFTIRQ_DISABLE_OFFSET, SOFTIRQ_MASK } from './preempt';
import { preemptionPoint } from './sched';
import { bhEnableSoftirqs } from './softirq';
import type { Task } from './task';

export function* preempt_disable(cur: Task): Generator<unknown, void, unknown> {
  cur.preempt_count += PREEMPT_OFFSET;
  preempt_latency_start(cur, PREEMPT_OFFSET, cur.site);
}

export function* preempt_enable(cur: Task): Generator<unknown, void, unknown> {
  cur.preempt_count -= PREEMPT_OFFSET;
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}

export function* preempt_enable_no_resched(cur: Task): Generator<unknown, void, unknown> {
  cur.preempt_count -= PREEMPT_OFFSET;
}

export function* local_bh_disable(cur: Task): Generator<unknown, void, unknown> {
  if ((cur.preempt_count & SOFTIRQ_MASK) === 0) trace_softirqs_off(cur, cur.site);
  cur.preempt_count += SOFTIRQ_DISABLE_OFFSET;
  preempt_latency_start(cur, SOFTIRQ_DISABLE_OFFSET, cur.site);
}

export function* local_bh_enable(cur: Task): Generator<unknown, void, unknown> {
  yield* __local_bh_enable_ip(cur, SOFTIRQ_DISABLE_OFFSET);
}

/** __local_bh_enable_ip(ip, cnt): drop `cnt` (SOFTIRQ_LOCK_OFFSET for the *_unlock_bh forms), run pending softirqs. */
export function* __local_bh_enable_ip(cur: Task, cnt: number): Generator<unknown, void, unknown> {
  cur.preempt_count -= cnt;
  if ((cur.preempt_count & SOFTIRQ_MASK) === 0) trace_softirqs_on(cur, cur.site);
  yield* bhEnableSoftirqs(cur);
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}
