import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai, type HuntReport } from '../../lib/testing';
import scenario from '../../scenarios/s09-chunked-growth-burst';

chai.use(irqsimChai);

/** Failed maps per schedule, from a hunt that spent its whole budget. */
const fullPer = (r: HuntReport) => (r.metrics['swiotlb.full'] ?? 0) / r.schedulesRun;
const perturb = (name: string) => scenario.perturbations!.find((p) => p.name === name)!.params;

describe('scenario S9: swiotlb growth by background chunks vs an NVMe burst (timed mode)', function () {
  this.timeout(120_000);

  it('buggy (chunked-growth, reserve 25%): swiotlb_full within 1 schedule, every failure in the window before a chunk lands (seeds 1..3)', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed });
      expect(r, `seed ${seed}`).to.report('swiotlb_full');
      expect(r, `seed ${seed}`).to.be.asExpected;
      const m = r.metrics;
      expect(m['swiotlb.full'], `seed ${seed}`).to.be.at.least(50);
      expect(m['swiotlb.misses_while_growing'], `seed ${seed}`).to.equal(m['swiotlb.chunk_misses']);
      expect(m['swiotlb.chunk_misses'], `seed ${seed}`).to.equal(m['swiotlb.full']);
      // the window: schedule_work to the decrypted chunk on the pool list, some 100 us in SEV-SNP
      expect(m['swiotlb.grow_latency_max_ns'], `seed ${seed}`).to.be.within(50_000, 1_000_000);
      expect(m['swiotlb.grow_pools'], `seed ${seed}`).to.be.at.least(4);
      // blk-mq requeued what failed, and every request completed
      expect(m['blk.requeues'], `seed ${seed}`).to.be.greaterThan(0);
      expect(m['blk.requests'], `seed ${seed}`).to.equal(scenario.params.cpus * scenario.params.requests);
    }
  });

  it('fixed (upstream transient pools from the decrypted atomic pool): clean over 10 schedules (10x), no swiotlb_full', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1, all: true });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(10);
    expect(r.metrics['swiotlb.transient_pools']).to.be.greaterThan(0);
    expect(r.metrics['swiotlb.full'] ?? 0).to.equal(0);
  });

  it('large-reserve: at least 5x fewer failed maps than reserve 25%, at the price of a larger footprint (seeds 1..3)', async () => {
    for (const seed of [1, 2, 3]) {
      const small = await hunt(scenario, { variant: 'buggy', iterations: 2, seed, all: true });
      const large = await hunt(scenario, { variant: 'large-reserve', iterations: 2, seed, all: true });
      expect(large, `seed ${seed}`).to.be.asExpected;
      expect(fullPer(large) * 5, `seed ${seed}: ${fullPer(large)} vs ${fullPer(small)}`).to.be.at.most(fullPer(small));
      expect(large.metrics['swiotlb.footprint_bytes_peak'], `seed ${seed}`).to.be.greaterThan(small.metrics['swiotlb.footprint_bytes_peak']);
    }
  });

  it('failures grow with the burst rate (100k -> 200k IOPS per CPU: >= 2x) and shrink with the reserve (25% -> 50%: >= 2x)', async () => {
    const at = async (params: Partial<typeof scenario.params>) => fullPer(await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, all: true, params }));
    const slow = await at(perturb('slow-burst'));
    const base = await at({});
    const half = await at({ reserve: 0.5 });
    expect(base, `${slow} -> ${base}`).to.be.at.least(2 * slow);
    expect(slow).to.be.greaterThan(0);
    expect(base, `${base} -> ${half}`).to.be.at.least(2 * half);
  });

  it('perturbations slow-burst and tdx keep every verdict', async () => {
    for (const name of ['slow-burst', 'tdx']) {
      for (const variant of ['buggy', 'fixed', 'large-reserve']) {
        const r = await hunt(scenario, { variant, seed: 1, params: perturb(name) });
        expect(r, `${name}/${variant}`).to.be.asExpected;
      }
    }
  });
});
