import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s02-noio-deadlock';

chai.use(irqsimChai);

describe('S2: GFP_KERNEL bounce-buffer allocation in the I/O path of a swap device (Hellwig on Tesarik RFC)', () => {
  it('buggy (RFC, GFP_KERNEL behind DMA_ATTR_MAY_SLEEP): writers holding the tags reclaim through the same queue -> deadlock within 5 PCT schedules', async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 5, seed: 1 });
    expect(r).to.report('deadlock');
    const f = r.findings.find((x) => x.kind === 'deadlock')!;
    expect(f.text).to.match(/waiting for sda:hctx0:tags/);
    expect(f.text).to.match(/swap_writepage <- shrink_node <- __perform_reclaim <- __alloc_pages_slowpath/);
    expect(f.text).to.match(/swiotlb_dyn_map/);
  });

  it('fixed (GFP_NOIO + mempool reserve) stays clean over 50 PCT schedules and draws on the reserve', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 50, seed: 1, all: true });
    expect(r).to.be.clean;
    expect(r.metrics['mm.mempool_reserve_used'] ?? 0).to.be.greaterThan(0);
    expect(r.metrics['swiotlb.dyn_allocs']).to.be.greaterThan(0);
  });

  it('noio-only (GFP_NOIO, no reserve): a stall within 10 fair-PCT timed schedules, no deadlock, no OOM kill', async () => {
    const r = await hunt(scenario, { variant: 'noio-only', iterations: 10, seed: 1 });
    expect(r).to.report('stall');
    expect(r).not.to.report('deadlock');
    expect(r).not.to.report('oom_kill');
    expect(r.findings.find((x) => x.kind === 'stall')!.text).to.match(/reclaim_throttle/);
  });

  it('nowait (no MAY_SLEEP: GFP_NOWAIT): no deadlock over 3 schedules, dynamic buffers still made; any GFP_NOWAIT failure falls back to the pool (the RFC\'s order), so no mapping fails', async () => {
    const r = await hunt(scenario, { variant: 'nowait', iterations: 3, seed: 1, all: true });
    expect(r).not.to.report('deadlock');
    expect(r).not.to.report('no_progress');
    expect(r.metrics['swiotlb.dyn_allocs']).to.be.greaterThan(0);
    expect(r.metrics['swiotlb.dyn_fallbacks'] ?? 0).to.equal(r.metrics['swiotlb.dyn_alloc_failures'] ?? 0);
    expect(r.metrics['nvme.map_failures']).to.equal(0);
  });

  it('nvme (the RFC on an NVMe swap device): every mapping refused a dynamic buffer, nothing allocated, no deadlock over 6 schedules', async () => {
    const r = await hunt(scenario, { variant: 'nvme', iterations: 6, seed: 1, all: true });
    expect(r).to.be.asExpected;
    expect(r).not.to.report('deadlock');
    expect(r.metrics['swiotlb.dyn_allocs'] ?? 0).to.equal(0);
    expect(r.metrics['swiotlb.dyn_refused']).to.be.greaterThan(0);
  });

  for (const name of ['rx-ring', 'memory-2x']) {
    it(`perturbation ${name}: buggy deadlocks within 5 schedules, fixed clean over 50`, async () => {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      expect(await hunt(scenario, { variant: 'buggy', iterations: 5, seed: 1, params })).to.report('deadlock');
      expect(await hunt(scenario, { variant: 'fixed', iterations: 50, seed: 1, params })).to.be.clean;
    });
  }
});
