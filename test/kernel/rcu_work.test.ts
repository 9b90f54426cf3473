import { expect } from 'chai';
import { cleanOver, everyRunLogs, foundWithin } from '../support/race';
import { replaceConfig } from '../support/primitives';

describe('queue_rcu_work', () => {
  it('queue_work frees under a reader (use-after-free found); queue_rcu_work runs the work after a grace period', () => {
    foundWithin(replaceConfig(false), 500, 'use-after-free');
    cleanOver(replaceConfig(true), 1000);
    everyRunLogs(replaceConfig(true), 50, (log) => expect(log).to.deep.equal(['freed']));
  });
});
