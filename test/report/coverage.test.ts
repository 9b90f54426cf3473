import { expect } from 'chai';
import { CoverageAccumulator, type RunMetrics } from '../../scheduler';
import { formatCoverage } from '../../lib/report/coverage';

const metrics = (steps: number, threads: number): RunMetrics =>
  ({ steps, threads, choices: 0, preemptions: 0, switches: 0, interrupts: 0, coalesced: 0, timers: 0, faults: 0, deviations: 0, endTime: 0 });

describe('formatCoverage', () => {
  it('names the kernel groups, the classes and, under PCT, the bound', () => {
    const acc = new CoverageAccumulator();
    for (let i = 0; i < 200; i++) {
      acc.add({ coverage: ['lockorder:a->b', `lockorder:b->${i % 7}`, `irqheld:x@${i % 3}`, 'misc:1'], interleaving: i % 41, metrics: metrics(i === 0 ? 180 : 100, 2) });
    }
    const lines = formatCoverage(acc.summary({ strategy: 'pct3' }));
    expect(lines).to.deep.equal([
      'coverage: 8 lock-order pairs, 3 irq-while-holding states, 1 misc key',
      '  41 interleaving classes over 200 schedules (mean 4.88 per class, max 5; 0 seen once)',
      '  PCT depth 3: >= 1/(2·180^2) = 1.5e-5 per schedule (n = 2 threads, k = 180 steps); even odds for a given depth-3 bug by 44916 schedules',
    ]);
  });

  it('shows zero groups, no PCT line for other strategies, and an empty hunt', () => {
    const acc = new CoverageAccumulator();
    acc.add({ coverage: null, interleaving: 0, metrics: metrics(10, 1) });
    expect(formatCoverage(acc.summary({ strategy: 'random' }))).to.deep.equal([
      'coverage: 0 lock-order pairs, 0 irq-while-holding states',
      '  1 interleaving class over 1 schedule (mean 1 per class, max 1; 1 seen once)',
    ]);
    expect(formatCoverage(acc.summary({ strategy: 'pct', depth: 1 }))[2]).to.match(/^  PCT depth 1: >= 1\/1 = 1 per schedule/);
    expect(formatCoverage(new CoverageAccumulator().summary({ strategy: 'pct3' }))).to.deep.equal(['coverage: no schedules run']);
  });
});
