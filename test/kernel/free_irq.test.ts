import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { free_irq, raise_irq, request_irq } from '../../lib/kernel/irq';
import { removeWhileHandling } from '../support/primitives';

describe('free_irq', () => {
  it('a remove that only masks the line frees under a running handler (use-after-free found); free_irq waits for it', () => {
    const f = foundWithin(removeWhileHandling(false), 300, 'use-after-free');
    expect(f.headline).to.match(/nic->(isr|ring)/);
    cleanOver(removeWhileHandling(true), 1000);
  });

  it('from interrupt context: "Trying to free IRQ <n> from IRQ context!" and might_sleep', () => {
    const p = kernelProgram('free_irq-in-irq', 1, (m) => {
      const other = request_irq(m, 0, 'other', function* () {});
      const line = request_irq(m, 0, 'watchdog', (cur) => free_irq(cur, other));
      m.kthread('t', 0, function* (cur) {
        raise_irq(m, line);
        yield cur.thread.point();
      });
    });
    const f = foundWithin(p, 20, 'Trying to free IRQ 16 from IRQ context!');
    expect(f.headline).to.equal('WARNING at __free_irq: Trying to free IRQ 16 from IRQ context!');
    foundWithin(p, 20, 'might_sleep');
  });
});
