import { expect } from 'chai';
import { kernelProgram as prog, everySchedule as every } from '../support/kernel';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { DECLARE_WORK, queue_work, system_wq } from '../../lib/kernel/workqueue';
import type { Task } from '../../lib/kernel/task';

describe('interrupts on an idle CPU', () => {
  it('a kworker woken by a hardirq on an idle CPU runs only after the handler returns', () => {
    const p = prog('idle-irq-wake', 2, (m, log) => {
      const w = DECLARE_WORK(m, 'w', function* (cur: Task) {
        log.push('work');
      });
      const irq = request_irq(m, 1, 'dev', function* (cur) {
        log.push('h0');
        yield* queue_work(cur, system_wq(m), w);
        yield cur.thread.work(10);
        yield cur.thread.point();
        log.push('h1');
      });
      m.kthread('raiser', 0, function* (cur) {
        yield cur.thread.point();
        yield* raise_irq(cur, irq);
      });
    });
    every(p, (log) => {
      expect(log.indexOf('work'), log.join(',')).to.be.greaterThan(log.indexOf('h1'));
    });
  });
});
