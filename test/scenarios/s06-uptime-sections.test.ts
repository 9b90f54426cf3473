import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s06-uptime-sections';
import { parseSteps } from '../../lib/scenario/params';

chai.use(irqsimChai);

describe('S6: order-8 sections after uptime (Russell King, 2014)', function () {
  this.timeout(60_000);

  it('buggy: alloc_pages(GFP_KERNEL, 8) at run time reports "page allocation failure: order:8" in the first schedule (seed 1), and no OOM kill', async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1 });
    expect(r).to.report('alloc_failure');
    expect(r).not.to.report('oom_kill');
    expect(r).to.be.asExpected;
    expect(r.findings.find((f) => f.kind === 'alloc_failure')!.headline).to.match(/order:8, mode:0xcc0\(GFP_KERNEL\)/);
  });

  it('buggy: the failure rate rises with uptime, 0 on a fresh machine and at least 0.75 after 200 rounds, over workload seeds 1..3', async () => {
    for (const ageSeed of [1, 2, 3]) {
      const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, params: { ageSeed }, shrink: false });
      const rate = (u: number) => r.metrics[`coherent.fail_rate.u${u}`];
      expect(rate(0), `ageSeed ${ageSeed}`).to.equal(0);
      expect(rate(50), `ageSeed ${ageSeed}`).to.be.at.most(rate(100));
      expect(rate(100), `ageSeed ${ageSeed}`).to.be.at.most(rate(200));
      expect(rate(200), `ageSeed ${ageSeed}`).to.be.at.least(0.75);
      expect(r.metrics['mm.compact_stall'], 'costly orders try compaction').to.be.greaterThan(0);
    }
  });

  it('fixed (CMA reserved at boot): clean over 10 schedules (seed 1), every section at every uptime allocated by migrating page cache', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1, all: true });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(10);
    expect(r.metrics['coherent.fail_rate']).to.equal(0);
    expect(r.metrics['coherent.attempts']).to.equal(10 * 4 * 8);
    expect(r.metrics['mm.cma_migrated_pages']).to.be.greaterThan(0);
  });

  it('perturbations prealloc (boot-time pool) and 4-cpus keep both verdicts', async () => {
    for (const name of ['prealloc', '4-cpus']) {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      const b = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, params, shrink: false });
      expect(b, name).to.report('alloc_failure');
      expect(b, name).to.be.asExpected;
      const f = await hunt(scenario, { variant: 'fixed', iterations: 2, seed: 1, params });
      expect(f, name).to.be.clean;
      expect(f.metrics['coherent.fail_rate'], name).to.equal(0);
    }
  });

  it('uptimeSteps must be ascending non-negative integers', () => {
    expect(parseSteps('0, 50,200')).to.deep.equal([0, 50, 200]);
    expect(() => parseSteps('50,0')).to.throw(/ascending/);
    expect(() => parseSteps('x')).to.throw(/ascending/);
  });
});
