/**
 * ABBA: two paths take the same two spinlocks in opposite orders on two CPUs. Each CPU gets its
 * first lock and spins forever on the other's: a real deadlock, reached by a hunt. The fix takes
 * them in one global order.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { DEFINE_SPINLOCK, fn, spin_lock, spin_unlock, type Task, type spinlock_t } from '../lib/kernel';
import { defineScenario } from '../lib/scenario/define';

function* take_both(cur: Task, first: spinlock_t, second: spinlock_t, holdNs: number) {
  yield* spin_lock(cur, first);
  yield cur.thread.work(holdNs);
  yield* spin_lock(cur, second);
  yield cur.thread.work(holdNs);
  yield* spin_unlock(cur, second);
  yield* spin_unlock(cur, first);
}

const scenario = defineScenario({
  id: 'abba',
  name: 'ABBA lock-order inversion across two CPUs',
  description:
    'The classic lock-order inversion: dev_update_stats takes stats_lock then cfg_lock on CPU0 while dev_reconfigure takes cfg_lock then stats_lock on CPU1 (the fixed variant takes cfg_lock first on both). Extra CPUs run bystander tasks that take one of the locks.',
  params: { cpus: 2, holdNs: 200, rounds: 1 },
  machine: (p) => ({ cpus: Math.max(2, p.cpus) }),
  variants: [
    { name: 'buggy', expect: { findings: ['lockdep', 'deadlock'] }, confirm: true },
    { name: 'fixed', expect: { clean: true } },
  ],
  options: { iterations: 500 },
  build(m, { variant, params }) {
    const stats = DEFINE_SPINLOCK(m, 'stats_lock');
    const cfg = DEFINE_SPINLOCK(m, 'cfg_lock');
    m.kthread('kworker/0:1', 0, function* (cur) {
      for (let i = 0; i < params.rounds; i++) {
        yield* fn(cur, 'dev_update_stats', variant === 'fixed' ? take_both(cur, cfg, stats, params.holdNs) : take_both(cur, stats, cfg, params.holdNs));
      }
    });
    m.kthread('kworker/1:1', 1, function* (cur) {
      for (let i = 0; i < params.rounds; i++) yield* fn(cur, 'dev_reconfigure', take_both(cur, cfg, stats, params.holdNs));
    });
    for (let c = 2; c < params.cpus; c++) {
      m.kthread(`kworker/${c}:1`, c, function* (cur) {
        yield* fn(cur, 'dev_read_stats', (function* () {
          yield* spin_lock(cur, stats);
          yield cur.thread.work(params.holdNs);
          yield* spin_unlock(cur, stats);
        })());
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
