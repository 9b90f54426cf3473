/**
 * npm run hunt:long — every schedule (no task-switch bound, ~47,500) of the hardirq reader
 * against a queued writer; test/kernel/rwlock.test.ts runs the same check within two task
 * switches, which already deadlocks when in-interrupt readers queue behind the writer.
 */
import { expect } from 'chai';
import { everySchedule } from '../support/kernel';
import { irqProg } from '../support/rwlock-irq';

describe('rwlock_t (queued rwlock), every schedule', () => {
  it('a hardirq reader gets in while a writer is queued behind a process-context reader', () => {
    const seen = new Set<string>();
    const n = everySchedule(irqProg(false, false), (log, r) => {
      expect(r.findings).to.deep.equal([]);
      for (const x of log) seen.add(x);
    }, { limit: 100_000 });
    expect(n).to.be.greaterThan(1);
    expect(seen).to.include('r0 in, irqs on');
    // the handler interrupted r0's read section and went past the queued writer
    expect(seen).to.include('irq in, writer queued, readers 2');
  });
});
