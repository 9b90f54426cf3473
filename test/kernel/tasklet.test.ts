import { expect } from 'chai';
import { cleanOver, everyRunLogs, foundWithin } from '../support/race';
import { rxFromBothCpus, disableWhileRunning, removeWithTasklet } from '../support/primitives';

describe('tasklets', () => {
  it('a softirq action runs on two CPUs at once (found); a tasklet runs in softirq context and never concurrently with itself', () => {
    foundWithin(rxFromBothCpus(false), 500, 'rx_action running on two CPUs at once');
    cleanOver(rxFromBothCpus(true), 1000);
    const where = new Set<string>();
    everyRunLogs(rxFromBothCpus(true), 100, (log) => log.forEach((l) => where.add(l)));
    expect([...where].sort()).to.deep.equal(['rx on CPU0 softirq TASKLET', 'rx on CPU1 softirq TASKLET']);
  });

  it('tasklet_disable_nosync returns while the callback runs (found); tasklet_disable waits for it', () => {
    foundWithin(disableWhileRunning(false), 500, 'tx_tasklet running after tasklet_disable');
    cleanOver(disableWhileRunning(true), 1000);
  });

  it('remove without tasklet_kill frees what a pending tasklet reads (use-after-free found); free_irq + tasklet_kill is clean', () => {
    const f = foundWithin(removeWithTasklet(false), 500, 'use-after-free');
    expect(f.headline).to.include('nic->status');
    cleanOver(removeWithTasklet(true), 1000);
    // the clean side is not clean by never running the tasklet
    let ran = 0;
    everyRunLogs(removeWithTasklet(true), 100, (log) => (ran += log.includes('tasklet') ? 1 : 0));
    expect(ran).to.be.greaterThan(10);
  });
});
