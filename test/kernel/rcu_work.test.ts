import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, everyRunLogs, foundWithin } from '../support/race';
import { DEFINE_RCU_POINTER, rcu_assign_pointer, rcu_dereference, rcu_read_lock, rcu_read_unlock } from '../../lib/kernel/rcu';
import { INIT_RCU_WORK, INIT_WORK, queue_rcu_work, queue_work, rcu_work, system_wq, work_struct } from '../../lib/kernel/workqueue';
import { READ_ONCE, kfree, kobject_alloc } from '../../lib/kernel/object';

/** Replace the published config and free the old one from a work item (it may sleep there). */
const replaceConfig = (rcu: boolean) =>
  kernelProgram(`rcu_work-${rcu ? 'queue_rcu_work' : 'queue_work'}`, 2, (m, log) => {
    const old = kobject_alloc(m, 'cfg', { mtu: 1500 });
    const ptr = DEFINE_RCU_POINTER(m, 'priv->cfg', old);
    const free_old_cfg = function* free_old_cfg(cur: Parameters<Parameters<typeof INIT_WORK>[1]>[0]) {
      yield* kfree(cur, old);
      log.push('freed');
    };
    const rwork = INIT_RCU_WORK(new rcu_work(m, 'free_cfg'), free_old_cfg);
    const work = INIT_WORK(new work_struct(m, 'free_cfg_now'), free_old_cfg);
    m.kthread('reader', 0, function* (cur) {
      yield* rcu_read_lock(cur);
      const c = yield* rcu_dereference(cur, ptr);
      for (let i = 0; i < 10; i++) yield cur.thread.point(); // the lookup's other work
      if (c !== null) yield* READ_ONCE(cur, c, 'mtu');
      yield* rcu_read_unlock(cur);
    });
    m.kthread('updater', 1, function* (cur) {
      yield* rcu_assign_pointer(cur, ptr, null);
      if (rcu) expect(yield* queue_rcu_work(cur, system_wq(m), rwork)).to.equal(true);
      else yield* queue_work(cur, system_wq(m), work);
    });
  });

describe('queue_rcu_work', () => {
  it('queue_work frees under a reader (use-after-free found); queue_rcu_work runs the work after a grace period', () => {
    foundWithin(replaceConfig(false), 500, 'use-after-free');
    cleanOver(replaceConfig(true), 1000);
    everyRunLogs(replaceConfig(true), 50, (log) => expect(log).to.deep.equal(['freed']));
  });
});
