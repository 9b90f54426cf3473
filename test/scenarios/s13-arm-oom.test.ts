/**
 * S13 (Tesarik, v2 cover letter, seed 004): a 64 MiB static swiotlb on a 256 MiB Arm board
 * leads to OOM kills under load; a 1 MiB pool that grows on demand does not, and the I/O still
 * completes.
 */
import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s13-arm-oom';

chai.use(irqsimChai);

const MIB = 1 << 20;

describe('S13: Arm board, large fixed swiotlb vs small growing pool (scenarios/s13-arm-oom.ts)', function () {
  this.timeout(120_000);

  it('buggy (64 MiB static pool) reports oom_kill within 1 schedule, for seeds 1-3', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed, shrink: false });
      expect(r).to.report('oom_kill');
      expect(r).to.be.asExpected;
      expect(r.metrics['swiotlb.footprint_bytes_peak']).to.equal(64 * MIB);
    }
  });

  it('fixed (1 MiB pool + upstream growth) stays clean over 10 schedules (10x), completes every request, and holds under 1/8 of the static footprint', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1 });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(10);
    expect(r.metrics['mm.oom_kill']).to.equal(undefined);
    expect(r.metrics['swiotlb.full']).to.equal(undefined);
    // 3 fio jobs (CPUs 1-3) x 32 requests per schedule, all bounced and completed
    expect(r.metrics['blk.requests']).to.equal(10 * 3 * 32);
    expect(r.metrics['swiotlb.maps']).to.be.at.least(10 * 3 * 32);
    // the application got its whole working set (100 MiB of 4 KiB pages) every time
    expect(r.metrics['s13.app_pages']).to.equal(10 * 25_600);
    expect(r.metrics['swiotlb.footprint_bytes_peak']).to.be.below((64 * MIB) / 8);
  });

  for (const name of ['cpus-2', 'memory-2x']) {
    it(`perturbation ${name}: buggy still OOM-kills within 1 schedule, fixed clean over 10`, async () => {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      const buggy = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, params, shrink: false });
      expect(buggy).to.report('oom_kill');
      const fixed = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1, params });
      expect(fixed).to.be.clean;
      expect(fixed.metrics['swiotlb.footprint_bytes_peak']).to.be.below((64 * MIB) / 8);
    });
  }
});
