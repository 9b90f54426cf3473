/**
 * S7 (Kelley on Tesarik's v2, seed 002): in a CoCo guest a per-mapping bounce buffer costs a
 * decrypt on every map and an encrypt on every unmap; the fixed pool decrypts once at boot and
 * pool-granular growth once per pool.
 */
import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai, type HuntReport } from '../../lib/testing';
import scenario from '../../scenarios/s07-coco-decrypt';

chai.use(irqsimChai);

const SEEDS = [1, 2, 3];
const per1000 = (r: HuntReport) => r.metrics.hypercalls_per_1000_maps;
const latency = (r: HuntReport) => r.metrics.map_latency_mean_ns;

describe('S7: CoCo per-mapping decrypt/encrypt (scenarios/s07-coco-decrypt.ts)', function () {
  this.timeout(120_000);

  it('buggy (rfc-dynamic, MAY_SLEEP) pays about 4 hypercalls per mapping from its first schedule; fixed and upstream at least 50x fewer, with at least 3x lower mean map latency (seeds 1-3)', async () => {
    for (const seed of SEEDS) {
      const buggy = await hunt(scenario, { variant: 'buggy', iterations: 1, seed });
      const fixed = await hunt(scenario, { variant: 'fixed', iterations: 1, seed });
      const upstream = await hunt(scenario, { variant: 'upstream', iterations: 1, seed });
      for (const r of [buggy, fixed, upstream]) expect(r).to.be.asExpected;
      // dma_set_decrypted on map + dma_set_encrypted on unmap, two hypercalls each
      expect(per1000(buggy), `seed ${seed}`).to.be.within(3900, 4100);
      expect(buggy.metrics['swiotlb.dyn_allocs']).to.equal(buggy.metrics['swiotlb.maps']);
      expect(buggy.metrics['mm.tlb_flush_kernel']).to.be.at.least(buggy.metrics['swiotlb.maps']);
      // the static pool: no conversion while running, only its one decryption at boot
      expect(fixed.metrics['mm.hypercalls'], `seed ${seed}`).to.equal(undefined);
      expect(fixed.metrics['swiotlb.boot_decrypt_hypercalls']).to.equal(2);
      expect(per1000(fixed)).to.be.below(per1000(buggy) / 100);
      // upstream: one decryption per growth pool (and per atomic-pool refill), not per mapping
      expect(upstream.metrics['swiotlb.grow_pools']).to.be.at.least(1);
      expect(per1000(upstream)).to.be.below(per1000(buggy) / 50);
      expect(latency(fixed)).to.be.below(latency(buggy) / 3);
      expect(latency(upstream)).to.be.below(latency(buggy) / 3);
    }
  });

  it('atomic (no MAY_SLEEP): no hypercall per map (buffers from the pre-decrypted atomic pool), but the atomic pool runs dry and every refill decrypts (1 schedule per seed, seeds 1-3)', async () => {
    for (const seed of SEEDS) {
      const atomic = await hunt(scenario, { variant: 'atomic', iterations: 1, seed });
      expect(atomic).to.be.asExpected;
      expect(atomic).not.to.report('might_sleep');
      expect(atomic.metrics['swiotlb.dyn_allocs']).to.be.greaterThan(0);
      expect(atomic.metrics['dma.atomic_pool.exhausted'], `seed ${seed}`).to.be.greaterThan(0);
      // every hypercall is an atomic_pool_expand's set_memory_decrypted: two per refill
      expect(atomic.metrics['mm.hypercalls']).to.equal(2 * atomic.metrics['dma.atomic_pool.expansions']);
      expect(atomic.metrics['mm.hypercalls']).to.be.below(atomic.metrics['swiotlb.dyn_allocs']);
      expect(per1000(atomic)).to.be.below(200);
    }
  });

  it('fixed stays clean over 10 schedules (10x the buggy budget above)', async () => {
    const fixed = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1 });
    expect(fixed).to.be.clean;
    expect(fixed.schedulesRun).to.equal(10);
  });

  for (const name of ['tdx', 'cpus-2']) {
    it(`perturbation ${name}: every variant as expected, buggy still >= 50x the hypercalls per map of fixed and upstream`, async () => {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      const r: Record<string, HuntReport> = {};
      for (const variant of ['buggy', 'atomic', 'fixed', 'upstream']) {
        r[variant] = await hunt(scenario, { variant, iterations: 1, seed: 1, params });
        expect(r[variant], variant).to.be.asExpected;
      }
      expect(per1000(r.buggy)).to.be.above(3000);
      expect(per1000(r.fixed)).to.be.below(per1000(r.buggy) / 50);
      expect(per1000(r.upstream)).to.be.below(per1000(r.buggy) / 50);
      expect(r.atomic.metrics['dma.atomic_pool.exhausted']).to.be.greaterThan(0);
    });
  }
});
