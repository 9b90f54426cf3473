/**
 * A sleeping call under spin_lock_irqsave: mutex_lock may sleep, and sleeping with a spinlock
 * held and interrupts off is the kernel's "BUG: sleeping function called from invalid context".
 * The fix takes the mutex before the spinlock.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { DEFINE_MUTEX, DEFINE_SPINLOCK, fn, mutex_lock, mutex_unlock, spin_lock_irqsave, spin_unlock_irqrestore } from '../lib/kernel';
import { defineScenario } from '../lib/scenario/define';

const scenario = defineScenario({
  id: 'sleep-in-atomic',
  name: 'mutex_lock under spin_lock_irqsave',
  description:
    'drv_update_config takes dev->lock with spin_lock_irqsave and then cfg_mutex, which may sleep: might_sleep fires whether or not the mutex is contended. The fixed variant takes cfg_mutex first. A second task contends for the mutex on another CPU.',
  params: { cpus: 2, holdNs: 100 },
  machine: (p) => ({ cpus: Math.max(2, p.cpus) }),
  variants: [
    { name: 'buggy', expect: { findings: ['might_sleep'] } },
    { name: 'fixed', expect: { clean: true } },
  ],
  options: { iterations: 200 },
  build(m, { variant, params }) {
    const lock = DEFINE_SPINLOCK(m, 'dev_lock');
    const cfg = DEFINE_MUTEX(m, 'cfg_mutex');
    m.kthread('drv', 0, function* (cur) {
      yield* fn(cur, 'drv_update_config', (function* () {
        if (variant === 'fixed') {
          yield* mutex_lock(cur, cfg);
          const flags = yield* spin_lock_irqsave(cur, lock);
          yield cur.thread.work(params.holdNs);
          yield* spin_unlock_irqrestore(cur, lock, flags);
          yield* mutex_unlock(cur, cfg);
        } else {
          const flags = yield* spin_lock_irqsave(cur, lock);
          yield* mutex_lock(cur, cfg);
          yield cur.thread.work(params.holdNs);
          yield* mutex_unlock(cur, cfg);
          yield* spin_unlock_irqrestore(cur, lock, flags);
        }
      })());
    });
    m.kthread('cfg_reader', 1, function* (cur) {
      yield* fn(cur, 'drv_read_config', (function* () {
        yield* mutex_lock(cur, cfg);
        yield cur.thread.work(params.holdNs);
        yield* mutex_unlock(cur, cfg);
      })());
    });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
