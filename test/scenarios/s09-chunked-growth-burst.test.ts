import * as chai from 'chai';
import { expect } from 'chai';
import { conversionCost } from '../../lib/mm/decrypt';
import { hunt, huntClaims, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s09-chunked-growth-burst';

chai.use(irqsimChai);

const failed = (r: ReturnType<typeof huntClaims>) => r.claims.filter((c) => c.holds !== true).map((c) => `${c.name}: ${c.relation} ${c.note ?? ''}`);
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
      // the window: schedule_work to the decrypted chunk on the pool list, at least the chunk's
      // decryption (1 MiB, not a 2 MiB unit: 4 PSC exits and 256 KVM_HC_MAP_GPA_RANGE, 10 us each)
      const c = conversionCost('sev-snp', 2 ** 30 + 2 ** 20, 256, 4096, false);
      expect(m['swiotlb.grow_latency_max_ns'], `seed ${seed}`).to.be.at.least((c.pscExits + c.mapGpa) * 10_000);
      expect(m['swiotlb.grow_pools'], `seed ${seed}`).to.be.at.least(1);
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

  it('every claim holds (seed 1): failures only while growing, fewer with a 75% reserve than 25%, fewer with 2 MiB chunks, none for upstream', () => {
    const r = huntClaims(scenario, { seed: 1 });
    for (const run of r.runs) expect(run.verdict, run.variant).to.equal('as-expected');
    expect(r.claims).to.have.length(4);
    expect(failed(r)).to.deep.equal([]);
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
