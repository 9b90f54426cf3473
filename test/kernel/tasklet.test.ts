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

/** A callback body with two visible steps inside, checking its context and that it runs alone. */
function probe(m: Machine, log: string[]) {
  const seen = ATOMIC_INIT(m, 'rx.stats', 0);
  let running = 0;
  return function* rx_action(cur: Task) {
    WARN_ON(cur, !in_serving_softirq(cur.preempt_count), 'not in softirq context');
    running++;
    log.push(`rx on CPU${cur.cpu.id} ${cur.context}`);
    yield* atomic_read(cur, seen);
    yield* atomic_read(cur, seen);
    WARN_ON(cur, running > 1, 'rx_action running on two CPUs at once');
    running--;
  };
}

/** Both CPUs schedule the deferred rx work: as a tasklet, or (buggy design) as a plain softirq. */
const rxFromBothCpus = (tasklet: boolean) =>
  kernelProgram(`rx-${tasklet ? 'tasklet' : 'softirq'}`, 2, (m, log) => {
    const body = probe(m, log);
    const t = tasklet ? tasklet_setup(m, 'rx_tasklet', function* rx_tasklet(cur) { yield* body(cur); }) : null;
    if (!tasklet) open_softirq(m, NET_RX_SOFTIRQ, body);
    for (const cpu of [0, 1])
      m.kthread(`rx${cpu}`, cpu, function* (cur) {
        for (let i = 0; i < 2; i++) {
          if (t !== null) yield* tasklet_schedule(cur, t);
          else yield* raise_softirq(cur, NET_RX_SOFTIRQ);
          yield cur.thread.point();
        }
      });
  });

/** A tasklet scheduled on CPU0 while CPU1 disables it and checks it is not running. */
const disableWhileRunning = (wait: boolean) =>
  kernelProgram(`tasklet-disable-${wait ? 'sync' : 'nosync'}`, 2, (m) => {
    let running = false;
    const stats = ATOMIC_INIT(m, 'stats', 0);
    const t = tasklet_setup(m, 'tx_tasklet', function* tx_tasklet(cur) {
      running = true;
      yield* atomic_read(cur, stats);
      yield* atomic_read(cur, stats);
      running = false;
    });
    m.kthread('tx', 0, (cur) => tasklet_schedule(cur, t));
    m.process('ethtool', 1, function* (cur) {
      for (let i = 0; i < 8; i++) yield cur.thread.point(); // the ioctl's work before it stops the queue
      if (wait) yield* tasklet_disable(cur, t);
      else yield* tasklet_disable_nosync(cur, t);
      WARN_ON(cur, running, 'tx_tasklet running after tasklet_disable');
      yield cur.thread.point();
      yield* tasklet_enable(cur, t);
    });
  });

/** Driver remove: the IRQ handler schedules a tasklet that reads `dev`; remove frees `dev`. */
const removeWithTasklet = (kill: boolean) =>
  kernelProgram(`tasklet-remove-${kill ? 'kill' : 'no-kill'}`, 2, (m, log) => {
    const dev = kobject_alloc(m, 'nic', { status: 1 });
    const t = tasklet_setup(m, 'nic_tasklet', function* nic_tasklet(cur) {
      log.push('tasklet');
      yield* READ_ONCE(cur, dev, 'status');
    });
    const line = request_irq(m, 0, 'nic', (cur) => tasklet_schedule(cur, t));
    m.kthread('nic-hw', 0, function* (cur) {
      raise_irq(m, line);
      yield cur.thread.point();
    });
    m.process('rmmod', 1, function* (cur) {
      yield* free_irq(cur, line);
      if (kill) yield* tasklet_kill(cur, t);
      yield* kfree(cur, dev);
    });
  });

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
