import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, everyRunLogs, foundWithin } from '../support/race';
import { ATOMIC_INIT, atomic_read } from '../../lib/kernel/atomic';
import { WARN_ON } from '../../lib/kernel/bug';
import { in_serving_softirq } from '../../lib/kernel/preempt';
import { NET_RX_SOFTIRQ, open_softirq, raise_softirq } from '../../lib/kernel/softirq';
import { tasklet_disable, tasklet_disable_nosync, tasklet_enable, tasklet_kill, tasklet_schedule, tasklet_setup } from '../../lib/kernel/tasklet';
import { free_irq, raise_irq, request_irq } from '../../lib/kernel/irq';
import { READ_ONCE, kfree, kobject_alloc } from '../../lib/kernel/object';
import type { Task } from '../../lib/kernel/task';
import type { Machine } from '../../lib/kernel/machine';
import { probe, rxFromBothCpus, disableWhileRunning, removeWithTasklet } from '../support/primitives';

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
