/**
 * S14 (Tesarik, v2 cover letter, seed 004): the CoCo swiotlb sized at 6% of memory is mostly idle
 * under light I/O and too small under heavy I/O; a growing pool's footprint follows the load.
 */
import * as chai from 'chai';
import { expect } from 'chai';
import { swiotlb_sizing } from '../../lib/dma/swiotlb/setup';
import { hunt, irqsimChai, type HuntReport } from '../../lib/testing';
import scenario from '../../scenarios/s14-coco-sizing';

chai.use(irqsimChai);

const MIB = 1 << 20;
const GIB = 1 << 30;
const held = (r: HuntReport, phase: string) => r.metrics[`s14.${phase}.footprint_bytes_peak`];
const used = (r: HuntReport, phase: string) => r.metrics[`s14.${phase}.used_bytes_peak`];

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

  it('buggy (static, 6% rule) reports swiotlb_full within 1 schedule under the heavy phase and idles at under 1% of its 64 MiB in the light one (seeds 1-3)', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed, shrink: false });
      expect(r).to.report('swiotlb_full');
      expect(r).to.be.asExpected;
      expect(held(r, 'light')).to.equal(64 * MIB);
      expect(used(r, 'light')).to.be.below(held(r, 'light') / 100);
      // heavy: the whole pool in use (less what alignment strands) and no more to be had
      expect(used(r, 'heavy')).to.be.at.least(0.99 * 64 * MIB);
      expect(held(r, 'heavy')).to.equal(64 * MIB);
      expect(r.metrics['blk.requeues']).to.be.greaterThan(0);
    }
  });

  it('fixed (1 MiB pool, chunked growth) follows demand: at most 1/16 of the static pool under light I/O, past it under heavy I/O; as expected over 10 schedules (10x)', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1, shrink: false });
    expect(r).to.be.asExpected;
    expect(r.schedulesRun).to.equal(10);
    expect(r).not.to.report('deadlock');
    expect(held(r, 'light')).to.be.at.most((64 * MIB) / 16);
    expect(held(r, 'heavy')).to.be.above(64 * MIB);
    expect(held(r, 'heavy')).to.be.at.least(16 * held(r, 'light'));
    // every request completed in the end (requeued ones included): 4 CPUs x (16 + 96) x 10
    expect(r.metrics['blk.requests']).to.equal(10 * 4 * (16 + 96));
  });

  for (const name of ['memory-2x', 'cpus-2']) {
    it(`perturbation ${name}: buggy still full under heavy I/O and idle under light; fixed still follows demand`, async () => {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      const buggy = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, params, shrink: false });
      const fixed = await hunt(scenario, { variant: 'fixed', iterations: 1, seed: 1, params, shrink: false });
      expect(buggy).to.be.asExpected;
      expect(fixed).to.be.asExpected;
      expect(used(buggy, 'light')).to.be.below(held(buggy, 'light') / 100);
      expect(used(buggy, 'heavy')).to.be.at.least(0.99 * held(buggy, 'heavy'));
      expect(held(fixed, 'light')).to.be.at.most(held(buggy, 'light') / 16);
      expect(held(fixed, 'heavy')).to.be.above(held(buggy, 'heavy'));
    });
  }
});
