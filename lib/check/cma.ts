/**
 * cma_alloc from a context that cannot sleep (docs/kernel-facts.md §7): it takes cma->alloc_mutex and
 * migrates pages, and has no gfp to make it atomic, so a caller in hardirq / softirq / NMI
 * context, with preemption or IRQs disabled, or inside an RCU read-side section is a bug (the
 * might_sleep splat shows only with CONFIG_DEBUG_ATOMIC_SLEEP, and the mutex may really sleep).
 * There is no kernel message for it; the report is worded as a WARN would be. WARN_ON_ONCE:
 * printed once per call site, every occurrence counted. Fingerprinted on the caller.
 */
import type { Machine } from '../kernel/machine';
import { hex, in_atomic, in_irq, in_serving_softirq, NMI_MASK } from '../kernel/preempt';
import type { Task } from '../kernel/task';
import type { CmaAllocInfo } from '../mm/cma';
import { machineStates } from '../kernel/show-state';
import { callTrace } from '../kernel/show-state';
import { irqs_disabled_flag } from './might-sleep';

/** Why `cur` cannot sleep here (empty when it can). */
function atomicReasons(cur: Task): string[] {
  const pc = cur.preempt_count;
  const r: string[] = [];
  if (pc & NMI_MASK) r.push('NMI');
  else if (in_irq(pc)) r.push('hardirq');
  else if (in_serving_softirq(pc)) r.push('softirq');
  else if (in_atomic(pc)) r.push(`preempt_count ${hex(pc)}`);
  if (cur.irqs_disabled) r.push('IRQs disabled');
  if (cur.rcu_read_depth > 0) r.push(`RCU read-side section (depth ${cur.rcu_read_depth})`);
  return r;
}

export function installCmaCheck(m: Machine): void {
  m.addHooks({
    cmaAlloc(cur: Task, info: CmaAllocInfo) {
      const why = atomicReasons(cur);
      if (why.length === 0) return;
      const pc = cur.preempt_count;
      const irqFlag = cur.irqs_disabled ? irqs_disabled_flag(m) : 0;
      const caller = cur.site;
      const fp = `cma_atomic:cma_alloc@${caller}`;
      const logged = m.log.firstTime(fp);
      const req = `cma: ${info.cma}, count: ${info.count}, align: ${info.align}`;
      const text = [
        `WARNING: CPU: ${cur.cpu.id} PID: ${cur.pid} at mm/cma.c cma_alloc: called from atomic context (in_atomic(): ${in_atomic(pc) ? 1 : 0}, irqs_disabled(): ${irqFlag})`,
        `  ${why.join(', ')}${req ? `; ${req}` : ''}; preempt_count: ${(pc >>> 0).toString(16)}`,
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, ['cma_alloc']),
      ].join('\n');
      if (logged) m.log.printk(cur.cpu.id, text);
      m.sim.report({
        kind: 'cma_atomic',
        fingerprint: fp,
        headline: `WARNING: cma_alloc called from atomic context (${why.join(', ')}) in ${caller} of ${cur.comm} on CPU${cur.cpu.id}`,
        text,
        logged,
        data: { cpuStates: machineStates(m) },
      });
    },
  });
}
