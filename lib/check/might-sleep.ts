/**
 * CONFIG_DEBUG_ATOMIC_SLEEP: __might_resched's conditions at every sleeping primitive, and
 * __schedule_bug ("scheduling while atomic") when a task really schedules from atomic context.
 * The splat follows the kernel's text (docs/kernel-facts.md §4.2); the finding counts every occurrence,
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
 *
 * The texts follow kernel/sched/core.c at the machine's version (lib/kernel/config.ts):
 *  - __might_resched (v5.16+): the header, "in_atomic(): %d, irqs_disabled(): %d, non_block: %d,
 *    pid: %d, name: %s", "preempt_count: %x, expected: %x", "RCU nest depth: %d, expected: %u"
 *    only with CONFIG_PREEMPT_RCU (without it rcu_read_lock() is in preempt_count instead),
 *    debug_show_held_locks, print_irqtrace_events when IRQs are off, "Preemption disabled at:"
 *    with CONFIG_DEBUG_PREEMPT when preempt_count is not the expected 0, then the stack. Before
 *    any of that, rcu_sleep_check(): with PROVE_RCU and without PREEMPT_RCU, a sleep inside
 *    rcu_read_lock() is lockdep-RCU's "Illegal context switch in RCU read-side critical section".
 *    3.x's __might_sleep prints only the header and "in_atomic(): %d, irqs_disabled(): %d, pid:
 *    %d, name: %s", and ignores the RCU depth.
 *  - __schedule_bug: "scheduling while atomic: %s/%d/0x%08x" with preempt_count() as seen inside
 *    __schedule, i.e. with schedule()'s own preempt_disable (+1: one spinlock held -> 0x00000002,
 *    in hardirq 0x00010001, serving a softirq 0x00000101), then debug_show_held_locks,
 *    print_modules, print_irqtrace_events if IRQs are off, "Preemption disabled at:" with
 *    DEBUG_PREEMPT, and the stack.
 */
import type { Machine } from '../kernel/machine';
import { kernelAtLeast } from '../kernel/config';
import { print_irqtrace_events } from '../kernel/irqtrace';
import { get_preempt_disable_ip } from '../kernel/preempt-ip';
import { jiffies } from '../kernel/timer';
import { hex, in_atomic } from '../kernel/preempt';
import { PF_IDLE, type Task } from '../kernel/task';
import { callTrace, machineStates } from '../kernel/show-state';
import { callerOf } from './caller';
import { debug_show_held_locks } from './lockdep';

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
  might_sleep: 'include/linux/kernel.h',
  // the memory model (lib/mm): where the kernel's check sits for each allocation path
  alloc_pages: 'include/linux/sched/mm.h', // might_alloc()
  might_alloc: 'include/linux/sched/mm.h',
  mempool_alloc: 'include/linux/sched/mm.h',
  // cma_alloc's might_sleep is the one in mutex_lock(&cma_mutex) (lib/mm/cma.ts emits mutex_lock)
  alloc_vmap_area: 'mm/vmalloc.c',
  vfree: 'mm/vmalloc.c',
  vunmap: 'mm/vmalloc.c',
  vmap: 'mm/vmalloc.c',
  remove_vm_area: 'mm/vmalloc.c',
};

/** print_ip_sym's "[<address>] symbol" for the recorded preempt_disable_ip (none: 0x0). */
function preemptDisabledAt(t: Task): string[] {
  const ip = get_preempt_disable_ip(t);
  return ['Preemption disabled at:', ip === null ? '[<0000000000000000>] 0x0' : `[<${symAddr(ip)}>] ${ip}`];
}

/** A stand-in kernel text address for a symbol (the model has none). */
function symAddr(sym: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < sym.length; i++) h = Math.imul(h ^ sym.charCodeAt(i), 0x01000193);
  return `ffffffff8${((h >>> 0) >>> 4).toString(16).padStart(7, '0')}`;
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
  /**
   * rcu_preempt_sleep_check (include/linux/rcupdate.h, PROVE_RCU && !PREEMPT_RCU): lockdep-RCU's
   * splat via lockdep_rcu_suspicious; RCU_LOCKDEP_WARN warns once per call site.
   */
  const rcuSleepCheck = (cur: Task, where: string): void => {
    const caller = callerOf(cur, (f) => f === where);
    const fp = `rcu:illegal_context_switch:${where}@${caller}`;
    const logged = m.log.firstTime(fp);
    const text = [
      '=============================',
      'WARNING: suspicious RCU usage',
      '-----------------------------',
      'include/linux/rcupdate.h: Illegal context switch in RCU read-side critical section!',
      '',
      'other info that might help us debug this:',
      '',
      '',
      `rcu_scheduler_active = 2, debug_locks = ${m.debug_locks ? 1 : 0}`,
      ...debug_show_held_locks(m, cur),
      '',
      'stack backtrace:',
      `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
      callTrace(cur, ['dump_stack_lvl', 'lockdep_rcu_suspicious', '__might_resched', where]),
    ].join('\n');
    if (logged) m.log.printk(cur.cpu.id, text);
    sim.report({
      kind: 'rcu',
      subkind: 'illegal_context_switch',
      fingerprint: fp,
      headline: `suspicious RCU usage: Illegal context switch in RCU read-side critical section: ${where} in ${caller} (${cur.comm}/${cur.pid})`,
      text,
      logged,
      data: { cpuStates: machineStates(m), cpus: [cur.cpu.id] },
    });
  };
  /** __might_resched's static prev_jiffy (0: nothing printed yet). */
  let prev_jiffy = 0;
  const j0 = initial_jiffies(m.hz);
  m.addHooks({
    mightSleep(cur: Task, where: string) {
      const k = m.kernel;
      const pc = cur.preempt_count;
      // rcu_preempt_depth(): only PREEMPT_RCU counts it (else rcu_read_lock is in preempt_count);
      // 3.x's __might_sleep did not look at it at all
      const modern = kernelAtLeast(k, '6.3');
      const rcu = k.PREEMPT_RCU && modern ? cur.rcu_read_depth : 0;
      const irqsOff = cur.irqs_disabled;
      // rcu_sleep_check() runs first, whether or not the rest reports (WARN_ONCE per site)
      if (k.PROVE_RCU && !k.PREEMPT_RCU && cur.rcu_read_depth > 0 && m.debug_locks) rcuSleepCheck(cur, where);
      if (pc === 0 && rcu === 0 && !irqsOff && (cur.flags & PF_IDLE) === 0) return;
      const site = SITES[where] ?? SITES.might_sleep;
      // the caller of the sleeping function (alloc_pages' own frame is not where it was called)
      const caller = callerOf(cur, (f) => f === where);
      const irqFlag = irqsOff ? irqs_disabled_flag(m) : 0;
      const text = [
        `BUG: sleeping function called from invalid context at ${site}`,
        ...(modern
          ? [
              `in_atomic(): ${in_atomic(pc) ? 1 : 0}, irqs_disabled(): ${irqFlag}, non_block: 0, pid: ${cur.pid}, name: ${cur.comm}`,
              `preempt_count: ${(pc >>> 0).toString(16)}, expected: 0`,
              ...(k.PREEMPT_RCU ? [`RCU nest depth: ${rcu}, expected: 0`] : []),
            ]
          : [`in_atomic(): ${in_atomic(pc) ? 1 : 0}, irqs_disabled(): ${irqFlag}, pid: ${cur.pid}, name: ${cur.comm}`]),
        ...debug_show_held_locks(m, cur),
        ...(irqsOff ? print_irqtrace_events(cur) : []),
        ...(k.DEBUG_PREEMPT && pc !== 0 ? preemptDisabledAt(cur) : []),
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, ['dump_stack_lvl', modern ? '__might_resched' : '__might_sleep', where]),
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
        // the CPU the text names (JSON `cpus`)
        data: { cpuStates: machineStates(m), cpus: [cur.cpu.id] },
      });
    },
    schedule(cur: Task, where: string) {
      const pc = cur.preempt_count;
      if (pc === 0 && cur.depth === 0) return;
      const caller = cur.site;
      // preempt_count() inside __schedule: schedule() has done its own preempt_disable()
      const seen = pc + 1;
      const text = [
        `BUG: scheduling while atomic: ${cur.comm}/${cur.pid}/${hex(seen)}`,
        ...debug_show_held_locks(m, cur),
        'Modules linked in:',
        ...(cur.irqs_disabled ? print_irqtrace_events(cur) : []),
        ...(m.kernel.DEBUG_PREEMPT ? preemptDisabledAt(cur) : []),
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, ['dump_stack_lvl', '__schedule_bug', '__schedule', 'schedule', where]),
      ].join('\n');
      m.log.printk(cur.cpu.id, text);
      sim.report({
        kind: 'might_sleep',
        subkind: 'scheduling_while_atomic',
        fingerprint: `scheduling_while_atomic:${where}@${caller}`,
        headline: `BUG: scheduling while atomic: ${cur.comm}/${cur.pid}/${hex(seen)} in ${where}`,
        text,
        data: { cpuStates: machineStates(m), cpus: [cur.cpu.id] },
      });
    },
  });
}
