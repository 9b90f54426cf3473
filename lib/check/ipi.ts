/**
 * Cross-CPU calls from the wrong context, as kernel/smp.c checks them (docs/kernel-facts.md §6.1):
 * smp_call_function_single warns with IRQs off always; the _many/on_each_cpu path only asserts
 * it through lockdep (lockdep_assert_irqs_enabled), so only with the machine's lockdep on; every
 * form warns outside task context. WARN_ON_ONCE: printed once, counted every time.
 */
import type { Cpu } from '../kernel/cpu';
import type { Machine } from '../kernel/machine';
import { in_task } from '../kernel/preempt';
import type { Task } from '../kernel/task';
import { machineStates } from '../kernel/show-state';
import { callTrace } from '../kernel/show-state';

export function installIpiCheck(m: Machine): void {
  m.addHooks({
    crossCall(cur: Task, how: 'single' | 'many' | 'each', _targets: Cpu[], wait: boolean) {
      const fnName = how === 'single' ? 'smp_call_function_single' : how === 'many' ? 'smp_call_function_many_cond' : 'on_each_cpu_cond_mask';
      const problems: string[] = [];
      // smp_call_function_single: WARN_ON_ONCE(irqs_disabled()), unconditional. _many / on_each_cpu
      // (v6.x smp_call_function_many_cond): lockdep_assert_irqs_enabled(), which only fires while
      // lockdep is live (debug_locks): once lockdep reported and turned itself off, silence. 3.x
      // kernels WARN_ON_ONCE(irqs_disabled()) in smp_call_function_many too, unconditionally.
      const unconditional = how === 'single' || m.kernel.version === '3.x-arm';
      if (cur.irqs_disabled && (unconditional || (m.lockdep && m.debug_locks))) problems.push('irqs_disabled()');
      if (!in_task(cur.preempt_count)) problems.push('!in_task()');
      if (problems.length === 0) return;
      const caller = cur.site;
      const fp = `ipi_irqs_off:${fnName}@${caller}`;
      const logged = m.log.firstTime(fp);
      const text = [
        `WARNING: CPU: ${cur.cpu.id} PID: ${cur.pid} at kernel/smp.c ${fnName}`,
        `  ${problems.join(' && ')}${how === 'single' || m.kernel.version === '3.x-arm' ? '' : ' (lockdep_assert_irqs_enabled)'}; wait=${wait ? 1 : 0}`,
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, [fnName]),
      ].join('\n');
      if (logged) m.log.printk(cur.cpu.id, text);
      m.sim.report({
        kind: 'ipi_irqs_off',
        fingerprint: fp,
        headline: `WARNING: ${fnName} called with ${problems.join(' and ')} on CPU${cur.cpu.id} (${cur.comm})`,
        text,
        logged,
        data: { cpuStates: machineStates(m), cpus: [cur.cpu.id] },
      });
    },
  });
}
