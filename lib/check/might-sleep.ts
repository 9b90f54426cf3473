/**
 * CONFIG_DEBUG_ATOMIC_SLEEP: __might_resched's conditions at every sleeping primitive, and
 * __schedule_bug ("scheduling while atomic") when a task really schedules from atomic context.
 * The splat follows the kernel's text (KERNEL-FACTS 4.2); the log prints at most one per
 * second, as the kernel's ratelimit does, while the finding counts every occurrence.
 */
import type { Machine } from '../kernel/machine';
import { NSEC_PER_SEC } from '../kernel/log';
import { hex, in_atomic } from '../kernel/preempt';
import { PF_IDLE, type Task } from '../kernel/task';
import { machineStates } from '../report/cpu-state';

/** Where the kernel's might_sleep call sits, for the "at file" line. */
const SITES: Record<string, string> = {
  mutex_lock: 'kernel/locking/mutex.c',
  down_read: 'kernel/locking/rwsem.c',
  down_write: 'kernel/locking/rwsem.c',
  wait_for_completion: 'kernel/sched/completion.c',
  flush_work: 'kernel/workqueue.c',
  cancel_work_sync: 'kernel/workqueue.c',
  flush_workqueue: 'kernel/workqueue.c',
  destroy_workqueue: 'kernel/workqueue.c',
  wait_event: 'include/linux/wait.h',
  wait_event_timeout: 'include/linux/wait.h',
  synchronize_irq: 'kernel/irq/manage.c',
  set_cpus_allowed_ptr: 'kernel/sched/core.c',
  synchronize_rcu: 'kernel/rcu/tree.c',
  rcu_barrier: 'kernel/rcu/tree.c',
  msleep: 'kernel/time/sleep_timeout.c',
  might_sleep: 'include/linux/kernel.h',
  // the memory model (lib/mm): where the kernel's check sits for each allocation path
  alloc_pages: 'include/linux/sched/mm.h', // might_alloc()
  might_alloc: 'include/linux/sched/mm.h',
  mempool_alloc: 'include/linux/sched/mm.h',
  cma_alloc: 'mm/cma.c',
  alloc_vmap_area: 'mm/vmalloc.c',
  vfree: 'mm/vmalloc.c',
  vunmap: 'mm/vmalloc.c',
  vmap: 'mm/vmalloc.c',
  remove_vm_area: 'mm/vmalloc.c',
};

function heldText(t: Task): string {
  if (t.held.length === 0) return `no locks held by ${t.comm}/${t.pid}.`;
  const head = `${t.held.length} lock${t.held.length > 1 ? 's' : ''} held by ${t.comm}/${t.pid}:`;
  return [head, ...t.held.map((h, i) => ` #${i}: (${h.lock.lockClass}){....}, at: ${h.at}`)].join('\n');
}

export function callTrace(t: Task, top: string[]): string {
  const frames = [...top, ...[...t.stack].reverse()];
  const ctx = t.depth > 0 ? 'IRQ' : 'TASK';
  return ['Call Trace:', ` <${ctx}>`, ...frames.map((f) => ` ${f}`), ` </${ctx}>`].join('\n');
}

export function installMightSleep(m: Machine): void {
  const sim = m.sim;
  m.addHooks({
    mightSleep(cur: Task, where: string) {
      const pc = cur.preempt_count;
      const rcu = cur.rcu_read_depth;
      const irqsOff = cur.irqs_disabled;
      if (pc === 0 && rcu === 0 && !irqsOff && (cur.flags & PF_IDLE) === 0) return;
      const site = SITES[where] ?? SITES.might_sleep;
      const caller = cur.site;
      const irqFlag = irqsOff ? (m.arch === 'arm64' ? 128 : 1) : 0;
      const text = [
        `BUG: sleeping function called from invalid context at ${site}`,
        `in_atomic(): ${in_atomic(pc) ? 1 : 0}, irqs_disabled(): ${irqFlag}, non_block: 0, pid: ${cur.pid}, name: ${cur.comm}`,
        `preempt_count: ${(pc >>> 0).toString(16)}, expected: 0`,
        `RCU nest depth: ${rcu}, expected: 0`,
        heldText(cur),
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, ['dump_stack_lvl', '__might_resched', where]),
      ].join('\n');
      const logged = m.log.ratelimit('might_sleep', NSEC_PER_SEC, 1);
      if (logged) m.log.printk(cur.cpu.id, text);
      sim.report({
        kind: 'might_sleep',
        fingerprint: `might_sleep:${where}@${caller}`,
        headline: `BUG: sleeping function called from invalid context: ${where} in ${cur.context} of ${cur.comm} (preempt_count ${hex(pc)}, irqs ${irqsOff ? 'off' : 'on'}${rcu ? `, RCU depth ${rcu}` : ''})`,
        text,
        logged,
        data: { cpuStates: machineStates(m) },
      });
    },
    schedule(cur: Task, where: string) {
      const pc = cur.preempt_count;
      if (pc === 0 && cur.depth === 0) return;
      const caller = cur.site;
      const text = [
        `BUG: scheduling while atomic: ${cur.comm}/${cur.pid}/${hex(pc)}`,
        heldText(cur),
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, ['dump_stack_lvl', '__schedule_bug', '__schedule', 'schedule', where]),
      ].join('\n');
      m.log.printk(cur.cpu.id, text);
      sim.report({
        kind: 'might_sleep',
        subkind: 'scheduling_while_atomic',
        fingerprint: `scheduling_while_atomic:${where}@${caller}`,
        headline: `BUG: scheduling while atomic: ${cur.comm}/${cur.pid}/${hex(pc)} in ${where}`,
        text,
        data: { cpuStates: machineStates(m) },
      });
    },
  });
}
