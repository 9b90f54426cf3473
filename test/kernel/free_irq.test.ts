import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { disable_irq_nosync, free_irq, raise_irq, request_irq } from '../../lib/kernel/irq';
import { READ_ONCE, kfree, kobject_alloc } from '../../lib/kernel/object';

/** The handler reads the device's registers twice; remove takes the line away, then frees the device. */
const removeWhileHandling = (free: boolean) =>
  kernelProgram(`free_irq-${free ? 'free_irq' : 'disable_irq_nosync'}`, 2, (m) => {
    const dev = kobject_alloc(m, 'nic', { isr: 1, ring: 0 });
    const line = request_irq(m, 0, 'nic', function* (cur) {
      yield* READ_ONCE(cur, dev, 'isr');
      yield* READ_ONCE(cur, dev, 'ring');
    });
    m.kthread('nic-hw', 0, function* (cur) {
      raise_irq(m, line);
      yield cur.thread.point();
    });
    m.process('rmmod', 1, function* (cur) {
      if (free) yield* free_irq(cur, line);
      else yield* disable_irq_nosync(cur, line); // masks the line but does not wait
      yield* kfree(cur, dev);
    });
  });

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
