/**
 * CONFIG_DEBUG_ATOMIC_SLEEP: __might_resched's conditions at every sleeping primitive, and
 * __schedule_bug ("scheduling while atomic") when a task really schedules from atomic context.
 * The splat follows the kernel's text (KERNEL-FACTS 4.2); the finding counts every occurrence,
 * the log prints what the kernel's ratelimit lets through.
 *
 * The ratelimit is __might_resched's own (kernel/sched/core.c), one static for every caller:
 *
 *     static unsigned long prev_jiffy;
 *     ...
 *     if (time_before(jiffies, prev_jiffy + HZ) && prev_jiffy)
 *         return;
 *     prev_jiffy = jiffies;
 *
 * so after a printed splat every other one within the next HZ jiffies is dropped whole (no text,
 * no stack, no taint), whichever code path it comes from: a second bug within a second of the
 * first is invisible in dmesg. jiffies start at INITIAL_JIFFIES (-300 s worth, as unsigned int),
 * so prev_jiffy is 0 only before the first splat ("&& prev_jiffy" exists for that); the
 * simulation's clock starts at 0 and is offset the same way. Metrics: might_sleep.printed and
 * might_sleep.suppressed (the "scheduling while atomic" bug is not ratelimited).
 */
import type { Machine } from '../kernel/machine';
import { jiffies } from '../kernel/timer';
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

/** The innermost transcribed frame that is not `where` itself, or the context's name. */
function callerOf(cur: Task, where: string): string {
  const st = cur.stack;
  for (let i = st.length - 1; i >= 0; i--) if (st[i] !== where) return st[i];
  return cur.context;
}

export function callTrace(t: Task, top: string[]): string {
  const frames = [...top, ...[...t.stack].reverse()];
  const ctx = t.depth > 0 ? 'IRQ' : 'TASK';
  return ['Call Trace:', ` <${ctx}>`, ...frames.map((f) => ` ${f}`), ` </${ctx}>`].join('\n');
}

/** INITIAL_JIFFIES: ((unsigned long)(unsigned int)(-300 * HZ)). */
export function initial_jiffies(hz: number): number {
  return 2 ** 32 - 300 * hz;
}

/** How irqs_disabled() prints: x86 1, ARM and arm64 the raw PSR I bit (0x80). */
export function irqs_disabled_flag(m: Machine): number {
  return m.arch === 'x86' ? 1 : 128;
}

export const M_MIGHT_SLEEP_PRINTED = 'might_sleep.printed';
export const M_MIGHT_SLEEP_SUPPRESSED = 'might_sleep.suppressed';

export function installMightSleep(m: Machine): void {
  const sim = m.sim;
  /** __might_resched's static prev_jiffy (0: nothing printed yet). */
  let prev_jiffy = 0;
  const j0 = initial_jiffies(m.hz);
  m.addHooks({
    mightSleep(cur: Task, where: string) {
      const pc = cur.preempt_count;
      const rcu = cur.rcu_read_depth;
      const irqsOff = cur.irqs_disabled;
      if (pc === 0 && rcu === 0 && !irqsOff && (cur.flags & PF_IDLE) === 0) return;
      const site = SITES[where] ?? SITES.might_sleep;
      // the caller of the sleeping function (alloc_pages' own frame is not where it was called)
      const caller = callerOf(cur, where);
      const irqFlag = irqsOff ? irqs_disabled_flag(m) : 0;
      const text = [
        `BUG: sleeping function called from invalid context at ${site}`,
        `in_atomic(): ${in_atomic(pc) ? 1 : 0}, irqs_disabled(): ${irqFlag}, non_block: 0, pid: ${cur.pid}, name: ${cur.comm}`,
        `preempt_count: ${(pc >>> 0).toString(16)}, expected: 0`,
        `RCU nest depth: ${rcu}, expected: 0`,
        heldText(cur),
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, ['dump_stack_lvl', '__might_resched', where]),
      ].join('\n');
      // 64-bit unsigned long: no wrap within a run (a 32-bit kernel wraps 300 s after boot)
      const now = j0 + jiffies(m);
      const logged = !(prev_jiffy !== 0 && now < prev_jiffy + m.hz);
      if (logged) {
        prev_jiffy = now;
        m.log.printk(cur.cpu.id, text);
      }
      sim.count(logged ? M_MIGHT_SLEEP_PRINTED : M_MIGHT_SLEEP_SUPPRESSED, 1);
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
