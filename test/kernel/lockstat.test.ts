import { expect } from 'chai';
import { runIteration } from '../../scheduler';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore } from '../../lib/kernel';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { kernelProgram } from '../support/kernel';

const sum = (c: Record<string, number>, re: RegExp) => Object.entries(c).filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);

describe('kernel: lock statistics and the irqsoff tracer', () => {
  it('counts acquisitions, contentions, wait and hold per lock class; IRQs-off time is hold plus irqsave spinning', () => {
    const p = kernelProgram('ls', { cpus: 2, lockStat: true, irqsoffTracer: true }, (m) => {
      const l = DEFINE_SPINLOCK(m, 'demo_lock');
      for (let c = 0; c < 2; c++) {
        m.kthread(`t${c}`, c, function* (cur) {
          for (let i = 0; i < 3; i++) {
            const f = yield* spin_lock_irqsave(cur, l);
            yield cur.thread.work(1000);
            yield* spin_unlock_irqrestore(cur, l, f);
            yield cur.thread.work(500);
          }
        });
      }
    });
    let contended = 0;
    for (let it = 0; it < 20; it++) {
      const { counters = {}, peaks = {} } = runIteration(p, { iteration: it, strategy: 'random' }).metrics;
      expect(counters['lock.demo_lock.acquisitions']).to.equal(6);
      expect(counters['lock.demo_lock.hold_ns']).to.equal(6000);
      expect(peaks['lock.demo_lock.hold_max_ns']).to.equal(1000);
      const wait = counters['lock.demo_lock.wait_ns'] ?? 0;
      expect(sum(counters, /^irqsoff\.cpu\d\.ns$/)).to.equal(6000 + wait);
      if (wait > 0) contended++;
    }
    expect(contended).to.be.greaterThan(0);
  });

  it('plain spin_lock holds are not IRQs-off time; a hardirq handler is', () => {
    const p = kernelProgram('ls2', { cpus: 1, lockStat: true, irqsoffTracer: true }, (m) => {
      const l = DEFINE_SPINLOCK(m, 'plain_lock');
      const line = request_irq(m, 0, 'dev_irq', function* (cur) {
        yield cur.thread.work(700);
      });
      m.kthread('t', 0, function* (cur) {
        yield* spin_lock(cur, l);
        yield cur.thread.work(1000);
        yield* spin_unlock(cur, l);
        yield* raise_irq(cur, line);
        yield cur.thread.work(100);
      });
    });
    const { counters = {}, peaks = {} } = runIteration(p, { iteration: 0 }).metrics;
    expect(counters['lock.plain_lock.hold_ns']).to.equal(1000);
    expect(counters['irqsoff.cpu0.ns']).to.equal(700);
    expect(peaks['irqsoff.cpu0.max_ns']).to.equal(700);
  });

  it('is off by default', () => {
    const p = kernelProgram('ls3', 1, (m) => {
      const l = DEFINE_SPINLOCK(m, 'x');
      m.kthread('t', 0, function* (cur) {
        const f = yield* spin_lock_irqsave(cur, l);
        yield* spin_unlock_irqrestore(cur, l, f);
      });
    });
    const { counters } = runIteration(p, { iteration: 0 }).metrics;
    expect(Object.keys(counters ?? {}).filter((k) => k.startsWith('lock.') || k.startsWith('irqsoff.'))).to.deep.equal([]);
  });
});
