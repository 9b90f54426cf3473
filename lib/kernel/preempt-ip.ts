/**
 * current->preempt_disable_ip (CONFIG_DEBUG_PREEMPT, kernel/sched/core.c preempt_latency_start
 * and kernel/softirq.c __local_bh_disable_ip): where the running task's preempt_count last went
 * from zero to non-zero, as get_lock_parent_ip() names it (the caller of the lock function). The
 * sleeping-in-atomic reports print it as "Preemption disabled at:".
 *
 * Recorded by preempt_disable / local_bh_disable (preemption.ts), rcu_read_lock without
 * PREEMPT_RCU (rcu.ts), irq entry (irq.ts) and, through the lock hooks, by spin_lock*,
 * read_lock* and write_lock* (their preempt_count add happens right before the hook).
 */
import type { Machine } from './machine';
import type { Task } from './task';

const ips = new WeakMap<Task, string>();

/** preempt_latency_start: call after adding `val`; records when the count was zero before. */
export function preempt_latency_start(t: Task, val: number, ip: string): void {
  if (t.preempt_count === val) ips.set(t, ip);
}

/** get_preempt_disable_ip(current), or null when nothing recorded one. */
export function get_preempt_disable_ip(t: Task): string | null {
  return ips.get(t) ?? null;
}

export function preempt_ip_init(m: Machine): void {
  m.addHooks({
    lockAcquire(cur, lock, how) {
      if (lock.kind !== 'spinlock' && lock.kind !== 'raw_spinlock' && lock.kind !== 'rwlock') return;
      // *_lock_bh adds SOFTIRQ_DISABLE_OFFSET (0x200; upstream SOFTIRQ_LOCK_OFFSET, 0x201)
      if (how.endsWith('_bh')) {
        if (cur.preempt_count === 0x200 || cur.preempt_count === 0x201) preempt_latency_start(cur, cur.preempt_count, cur.site);
      } else preempt_latency_start(cur, 0x1, cur.site);
    },
  });
}
