import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, huntClaims, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s01-rpi4-dmabuf';

chai.use(irqsimChai);

const FRAME = 1920 * 1080 * 4;

describe('S1: Raspberry Pi 4, v3d dma-buf frames mapped for vc4 through a static swiotlb', () => {
  it('buggy: swiotlb_full within 1 schedule; one failure per frame (60), 10 printed (10 per 5 s), short runs bounced for nothing, nothing shown (seeds 1, 2, 3)', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed });
      expect(r).to.report('swiotlb_full');
      expect(r).to.be.asExpected;
      expect(r.schedulesRun).to.equal(1);
      const f = r.findings.find((x) => x.kind === 'swiotlb_full')!;
      expect(f.headline).to.include('vc4: swiotlb buffer is full (sz: 4194304 bytes)');
      expect(f.headline).to.include('exceeds the largest swiotlb mapping');
      expect(r.metrics['swiotlb.full']).to.equal(60);
      expect(r.metrics['display.map_failures']).to.equal(60);
      expect(r.metrics['swiotlb.full_printed']).to.equal(10);
      expect(r.metrics['display.frames'] ?? 0).to.equal(0);
      // every bounce copy was wasted: the copies made equal the copies thrown away
      expect(r.metrics['display.wasted_bounce_bytes']).to.be.greaterThan(0);
      expect(r.metrics['display.wasted_bounce_bytes']).to.equal(r.metrics['swiotlb.bounce_bytes']);
    }
  });

  it('every claim holds (seed 1): every frame fails for buggy, none for fixed; below-1g shows every frame without one byte bounced', () => {
    const r = huntClaims(scenario, { seed: 1 });
    for (const run of r.runs) expect(run.verdict, run.variant).to.equal('as-expected');
    expect(r.claims).to.have.length(4);
    expect(r.claims.filter((c) => c.holds !== true).map((c) => `${c.name}: ${c.relation}`)).to.deep.equal([]);
  });

  it('fixed (segments capped to the importer): clean over 10 schedules, every frame bounced and shown, no segment above 256 KiB', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1, all: true });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(10);
    expect(r.metrics['display.frames']).to.equal(600);
    expect(r.metrics['display.bounce_bytes']).to.equal(600 * FRAME);
    expect(r.metrics['display.max_segment_bytes']).to.be.at.most(256 * 1024);
  });

  it('perturbation 10s-flood: 600 failures in 10 s of vblanks, 20 printed (the window reopens after 5 s)', async () => {
    const p = scenario.perturbations!.find((x) => x.name === '10s-flood')!;
    const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, params: p.params });
    expect(r).to.be.asExpected;
    expect(r.metrics['swiotlb.full']).to.equal(600);
    expect(r.metrics['swiotlb.full_printed']).to.equal(20);
  });

  for (const name of ['2-cpus', '720p-16bpp']) {
    it(`perturbation ${name}: every variant's verdict holds`, async () => {
      const p = scenario.perturbations!.find((x) => x.name === name)!;
      for (const v of scenario.variants) {
        const r = await hunt(scenario, { variant: v.name, iterations: 2, seed: 1, params: p.params });
        expect(r, `${name}/${v.name}`).to.be.asExpected;
      }
    });
  }
});
