import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s10-grow-from-irq';

chai.use(irqsimChai);

describe('S10: growing the swiotlb by chunks from IRQ context vs a worker with CMA (Tesarik, 2023)', function () {
  this.timeout(60_000);

  it('buggy: cma_alloc from the completion interrupt gives might_sleep, cma_atomic and lockdep in the first schedule (seed 1)', async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1 });
    expect(r).to.report('might_sleep');
    expect(r).to.report('cma_atomic');
    expect(r).to.report('lockdep', 'inconsistent');
    expect(r).to.be.asExpected;
    expect(r.findings.find((f) => f.kind === 'cma_atomic')!.headline).to.match(/hardirq/);
  });

  it('buggy: the DMA API gives nothing for GFP_ATOMIC at every miss, and order-10 buddy growth fails after uptime but not on a fresh machine (workload seeds 1..3)', async () => {
    for (const ageSeed of [1, 2, 3]) {
      const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, params: { ageSeed }, shrink: false });
      const m = r.metrics;
      expect(m['grow.cma_nonblocking'], `ageSeed ${ageSeed}`).to.equal(m['grow.attempts']);
      expect(m['grow.attempts'], `ageSeed ${ageSeed}`).to.equal(3 * 2);
      expect(m['grow.fail_rate.u0'], `ageSeed ${ageSeed}`).to.equal(0);
      expect(m['grow.fail_rate.u50'], `ageSeed ${ageSeed}`).to.be.at.least(0.5);
      expect(m['grow.fail_rate.u200'], `ageSeed ${ageSeed}`).to.be.at.least(m['grow.fail_rate.u50']);
      expect(m['grow.cma_from_irq'], `ageSeed ${ageSeed}`).to.equal(m['grow.buddy_failures']);
    }
  });

  it('fixed: the worker grows from CMA, clean over 10 schedules (seed 1), every chunk at every uptime', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1, all: true });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(10);
    expect(r.metrics['grow.fail_rate']).to.equal(0);
    expect(r.metrics['mm.cma_alloc']).to.equal(10 * 3 * 2);
  });

  it('perturbations chunk-8MiB (beyond MAX_PAGE_ORDER: the buddy path always fails) and 4-cpus keep both verdicts', async () => {
    for (const name of ['chunk-8MiB', '4-cpus']) {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      const b = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, params, shrink: false });
      expect(b, name).to.be.asExpected;
      if (name === 'chunk-8MiB') expect(b.metrics['grow.buddy_fail_rate'], name).to.equal(1);
      const f = await hunt(scenario, { variant: 'fixed', iterations: 2, seed: 1, params });
      expect(f, name).to.be.clean;
      expect(f.metrics['grow.fail_rate'], name).to.equal(0);
    }
  });
});
