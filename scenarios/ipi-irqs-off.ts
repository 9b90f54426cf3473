/**
 * smp_call_function_single with wait, from IRQs-off context, on two CPUs at once: each CPU
 * spins until the other runs its function, and neither can take the other's IPI. The kernel
 * warns about the IRQs-off call (kernel/smp.c); the run really deadlocks on some schedules.
 * The fix makes the call with interrupts on.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { fn, local_irq_restore, local_irq_save, smp_call_function_single, type Task } from '../lib/kernel';
import { defineScenario } from '../lib/scenario/define';

const scenario = defineScenario({
  id: 'ipi-irqs-off',
  name: 'cross-CPU call with wait from IRQs-off context on two CPUs',
  description:
    'flush_remote_tlb on each of two CPUs calls smp_call_function_single(other, ..., wait=1). In the buggy variant the callers have interrupts disabled (inside local_irq_save), so each spins in csd_lock_wait while the IPI it must answer stays pending. docs/kernel-facts.md §6.1.',
  params: { cpus: 2, flushNs: 50 },
  machine: (p) => ({ cpus: Math.max(2, p.cpus) }),
  variants: [
    { name: 'buggy', expect: { findings: ['ipi_irqs_off', 'deadlock'] } },
    { name: 'fixed', expect: { clean: true } },
  ],
  options: { iterations: 500 },
  build(m, { variant, params }) {
    const flushLocal = function* (cur: Task) {
      yield cur.thread.work(params.flushNs);
    };
    for (const c of [0, 1]) {
      m.kthread(`flusher/${c}`, c, function* (cur) {
        yield* fn(cur, 'flush_remote_tlb', (function* () {
          const flags = variant === 'buggy' ? yield* local_irq_save(cur) : 0;
          yield* smp_call_function_single(cur, 1 - c, flushLocal, true);
          if (variant === 'buggy') yield* local_irq_restore(cur, flags);
        })());
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
