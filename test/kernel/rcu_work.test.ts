import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, everyRunLogs, foundWithin } from '../support/race';
import { DEFINE_RCU_POINTER, rcu_assign_pointer, rcu_dereference, rcu_read_lock, rcu_read_unlock } from '../../lib/kernel/rcu';
import { INIT_RCU_WORK, INIT_WORK, queue_rcu_work, queue_work, rcu_work, system_wq, work_struct } from '../../lib/kernel/workqueue';
import { READ_ONCE, kfree, kobject_alloc } from '../../lib/kernel/object';
import { replaceConfig } from '../support/primitives';

describe('queue_rcu_work', () => {
  it('queue_work frees under a reader (use-after-free found); queue_rcu_work runs the work after a grace period', () => {
    foundWithin(replaceConfig(false), 500, 'use-after-free');
    cleanOver(replaceConfig(true), 1000);
    everyRunLogs(replaceConfig(true), 50, (log) => expect(log).to.deep.equal(['freed']));
  });
});
