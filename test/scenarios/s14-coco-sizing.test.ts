/**
 * S14 (Tesarik, v2 cover letter, seed 004): the CoCo swiotlb sized at 6% of memory is mostly idle
 * under light I/O and too small under heavy I/O; a growing pool's footprint follows the load.
 */
import * as chai from 'chai';
import { expect } from 'chai';
import { swiotlb_sizing } from '../../lib/dma/swiotlb/setup';
import { hunt, huntClaims, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s14-coco-sizing';

chai.use(irqsimChai);

const MIB = 1 << 20;
const GIB = 1 << 30;

describe('S14: CoCo swiotlb sized at 6% of memory vs a growing pool (scenarios/s14-coco-sizing.ts)', function () {
  this.timeout(120_000);

  it('the CoCo sizing rule: 6% of memory, clamped to [64 MiB, 1 GiB], rounded up to a power of two', () => {
    const size = (memory: number) => (swiotlb_sizing({ cpus: 4, cc: true, memory }).nslabs * 2048) / MIB;
    expect(size(1 * GIB)).to.equal(64); // 61 MiB, clamped up
    expect(size(2 * GIB)).to.equal(128); // 122.9 MiB, rounded up
    expect(size(8 * GIB)).to.equal(512); // 491.5 MiB, rounded up
    expect(size(32 * GIB)).to.equal(1024); // clamped down
    expect(swiotlb_sizing({ cpus: 4, cc: true, memory: 2 * GIB }).messages[0]).to.equal('SWIOTLB bounce buffer size adjusted to 122MB');
  });

  it('every claim holds (seed 1): the static pool idles under light I/O and is used up under heavy I/O; the growing pool holds 1/16 of it under light I/O and grows past it under heavy I/O', () => {
    const r = huntClaims(scenario, { seed: 1 });
    for (const run of r.runs) expect(run.verdict, `${run.variant}: ${run.why ?? ''}`).to.equal('as-expected');
    expect(r.claims).to.have.length(4);
    expect(r.claims.filter((c) => c.holds !== true).map((c) => `${c.name}: ${c.relation}`)).to.deep.equal([]);
    const buggy = r.runs.find((x) => x.variant === 'buggy')!;
    expect(buggy.metrics['s14.light.footprint_bytes_peak']).to.equal(64 * MIB);
    expect(buggy.metrics['blk.requeues']).to.be.greaterThan(0);
  });

  it('fixed (1 MiB pool, chunked growth) as expected over 10 schedules (10x); every request completed in the end', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1, shrink: false });
    expect(r).to.be.asExpected;
    expect(r.schedulesRun).to.equal(10);
    // requeued ones included: 4 CPUs x (16 + 96) x 10
    expect(r.metrics['blk.requests']).to.equal(10 * 4 * (16 + 96));
  });

  for (const name of ['memory-2x', 'cpus-2']) {
    it(`perturbation ${name}: every variant as expected, every claim holds`, () => {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      const r = huntClaims(scenario, { iterations: 1, seed: 1, params });
      for (const run of r.runs) expect(run.verdict, run.variant).to.equal('as-expected');
      expect(r.claims.filter((c) => c.holds !== true).map((c) => `${c.name}: ${c.relation}`)).to.deep.equal([]);
    });
  }
});
