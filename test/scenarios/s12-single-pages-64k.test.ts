import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s12-single-pages-64k';

chai.use(irqsimChai);

/** Chunks below the 64 KiB granule (orders 0..3) and at or above it, from the iommu.alloc.o<N> counters. */
function chunks(m: Record<string, number>): { below: number; above: number } {
  let below = 0;
  let above = 0;
  for (let o = 0; o <= 10; o++) {
    const n = m[`iommu.alloc.o${o}`] ?? 0;
    if (o < 4) below += n;
    else above += n;
  }
  return { below, above };
}

describe('S12: DMA_ATTR_ALLOC_SINGLE_PAGES into a 64 KiB-granule IOMMU domain (Will Deacon vs Doug Anderson)', () => {
  it('buggy (Yong Wu\'s patch): iommu_map "unaligned" within 1 schedule; every buffer fails, every chunk order 0 (seeds 1, 2, 3)', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed });
      expect(r).to.report('iommu_map');
      expect(r).to.be.asExpected;
      expect(r.schedulesRun).to.equal(1);
      expect(r.findings[0].headline).to.include('min_pagesz 0x10000');
      expect(r.metrics['iommu.alloc_failures']).to.equal(8);
      expect(r.metrics['iommu.alloc.o0']).to.equal(8 * 768);
      expect(chunks(r.metrics).above).to.equal(0);
    }
  });

  it('fixed (order from pgsize_bitmap): clean over 10 schedules, every chunk exactly the 64 KiB granule (order 4)', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1, all: true });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(10);
    expect(r.metrics['iommu.alloc.o4']).to.equal(10 * 8 * 48);
    expect(chunks(r.metrics).below).to.equal(0);
    expect(r.metrics['iommu.alloc_failures'] ?? 0).to.equal(0);
  });

  it("existing-aged (Will's side): the 2016 order selection on an aged machine still gets order >= 4 chunks and maps cleanly over 10 schedules", async () => {
    const r = await hunt(scenario, { variant: 'existing-aged', iterations: 10, seed: 1, all: true });
    expect(r).to.be.clean;
    const c = chunks(r.metrics);
    expect(c.below).to.equal(0);
    expect(c.above).to.be.greaterThan(0);
    expect(r.metrics['iommu.alloc.o9']).to.equal(10 * 8); // one 2 MiB chunk per 3 MiB buffer
  });

  it("existing-fragmented (Doug's side): with no free 64 KiB block the 2016 order selection falls below the granule and iommu_map fails within 1 schedule, as the patch does (seeds 1, 2, 3)", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await hunt(scenario, { variant: 'existing-fragmented', iterations: 1, seed });
      expect(r).to.report('iommu_map');
      expect(r).to.be.asExpected;
      expect(r.metrics['iommu.alloc_failures']).to.equal(8);
      const c = chunks(r.metrics);
      expect(c.above).to.equal(0);
      expect(r.metrics['iommu.alloc.o3']).to.equal(8 * 96); // order 3, not 0: the largest order left
    }
  });

  for (const name of ['small-buffers', '4-cpus']) {
    it(`perturbation ${name}: every variant's verdict holds`, async () => {
      const p = scenario.perturbations!.find((x) => x.name === name)!;
      for (const v of scenario.variants) {
        const r = await hunt(scenario, { variant: v.name, iterations: 2, seed: 1, params: p.params });
        expect(r, `${name}/${v.name}`).to.be.asExpected;
      }
    });
  }
});
