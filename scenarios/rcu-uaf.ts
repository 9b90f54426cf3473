/**
 * An RCU-protected configuration pointer torn down under a reader: foo_poll reads dev->cfg under
 * rcu_read_lock while foo_detach unpublishes it and frees the old object. Freeing at once is a
 * use-after-free whenever the reader loaded the pointer just before the unpublish; kfree_rcu
 * (fixed) or synchronize_rcu before kfree (sync) waits for every reader that may hold it.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import {
  DEFINE_RCU_POINTER,
  DEFINE_SPINLOCK,
  fn,
  kfree_rcu,
  rcu_assign_pointer,
  rcu_dereference,
  rcu_dereference_protected,
  rcu_read_lock,
  rcu_read_unlock,
  spin_lock,
  spin_unlock,
  synchronize_rcu,
} from '../lib/kernel';
import { READ_ONCE, kfree, kobject_alloc } from '../lib/kernel/object';
import { defineScenario } from '../lib/scenario/define';

const scenario = defineScenario({
  id: 'rcu-uaf',
  name: 'RCU pointer freed without waiting for readers',
  description:
    'foo_poll on CPU0 does rcu_read_lock(); cfg = rcu_dereference(dev->cfg); reads cfg->mtu; rcu_read_unlock(), while foo_detach on CPU1 unpublishes dev->cfg under dev->lock with rcu_assign_pointer(dev->cfg, NULL) and frees the old config. buggy: kfree() at once (KASAN slab-use-after-free, or the free caught while the reader still holds it); fixed: kfree_rcu(); sync: synchronize_rcu() then kfree(). Extra readers run on CPUs 2 and up (or CPU0 again).',
  params: { cpus: 2, readers: 1, holdNs: 200 },
  machine: (p) => ({ cpus: Math.max(2, p.cpus) }),
  variants: [
    { name: 'buggy', expect: { findings: ['rcu'] } },
    { name: 'fixed', expect: { clean: true }, description: 'kfree_rcu(old): freed from RCU_SOFTIRQ after a grace period' },
    { name: 'sync', expect: { clean: true }, description: 'synchronize_rcu() then kfree(old)' },
  ],
  options: { iterations: 200 },
  build(m, { variant, params }) {
    const lock = DEFINE_SPINLOCK(m, 'foo_dev->lock');
    const cfgp = DEFINE_RCU_POINTER(m, 'foo_dev->cfg', kobject_alloc(m, 'foo_config', { mtu: 1500, flags: 0 }, { size: 64 }));
    const cpus = Math.max(2, params.cpus);
    for (let i = 0; i < params.readers; i++) {
      // Reader 0 on CPU0, the others on CPUs 2.. (CPU1 is the updater's), wrapping to CPU0.
      const cpu = i === 0 || cpus <= 2 ? 0 : 2 + ((i - 1) % (cpus - 2));
      m.kthread(`foo_poll/${i}`, cpu, function* (cur) {
        yield* fn(cur, 'foo_poll', (function* () {
          yield* rcu_read_lock(cur);
          const cfg = yield* rcu_dereference(cur, cfgp);
          if (cfg !== null) {
            yield cur.thread.work(params.holdNs);
            yield* READ_ONCE(cur, cfg, 'mtu');
          }
          yield* rcu_read_unlock(cur);
        })());
      });
    }
    m.kthread('foo_detach', 1, function* (cur) {
      yield* fn(cur, 'foo_detach', (function* () {
        yield* spin_lock(cur, lock);
        const old = yield* rcu_dereference_protected(cur, cfgp);
        yield* rcu_assign_pointer(cur, cfgp, null);
        yield* spin_unlock(cur, lock);
        if (variant === 'fixed') yield* kfree_rcu(cur, old);
        else {
          if (variant === 'sync') yield* synchronize_rcu(cur);
          yield* kfree(cur, old);
        }
      })());
    });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
