/**
 * A lock shared between process context and a hardirq handler, taken with plain spin_lock in
 * process context: the device interrupt lands on the CPU holding it and its handler spins on
 * the lock forever (the holder cannot run until the handler returns). spin_lock_irqsave keeps
 * the interrupt off the CPU while the lock is held.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { DEFINE_SPINLOCK, fn, raise_irq, request_irq, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore } from '../lib/kernel';
import { defineScenario } from '../lib/scenario/define';

const scenario = defineScenario({
  id: 'irq-self-deadlock',
  name: 'spinlock shared with a hardirq handler, taken without irqsave',
  description:
    'nvme_submit takes io_lock with spin_lock in process context while nvme_irq, the completion handler on the same CPU, takes io_lock too. The fixed variant uses spin_lock_irqsave in process context, as a lock shared with hardirq context must be.',
  params: { cpus: 1, requests: 2, holdNs: 300 },
  machine: (p) => ({ cpus: Math.max(1, p.cpus) }),
  variants: [
    { name: 'buggy', expect: { findings: ['lockdep', 'deadlock'] }, confirm: true },
    { name: 'fixed', expect: { clean: true } },
  ],
  options: { iterations: 500 },
  build(m, { variant, params }) {
    const io = DEFINE_SPINLOCK(m, 'io_lock');
    let completed = 0;
    const line = request_irq(m, 0, 'nvme_irq', function* (cur) {
      yield* fn(cur, 'nvme_complete_rq', (function* () {
        yield* spin_lock(cur, io);
        completed++;
        yield* spin_unlock(cur, io);
      })());
    });
    m.kthread('kworker/0:1H', 0, function* (cur) {
      for (let r = 0; r < params.requests; r++) {
        yield* fn(cur, 'nvme_submit', (function* () {
          if (variant === 'fixed') {
            const flags = yield* spin_lock_irqsave(cur, io);
            yield* raise_irq(cur, line); // the device may complete at once
            yield cur.thread.work(params.holdNs);
            yield* spin_unlock_irqrestore(cur, io, flags);
          } else {
            yield* spin_lock(cur, io);
            yield* raise_irq(cur, line);
            yield cur.thread.work(params.holdNs);
            yield* spin_unlock(cur, io);
          }
        })());
      }
    });
    void completed;
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
