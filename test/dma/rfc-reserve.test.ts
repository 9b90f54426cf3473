/**
 * rfc-dynamic's `reserve` (the fixed variant of S2): mempools for descriptors, maple nodes and
 * buffer pages, created in process context by swiotlb_dyn_reserve_init. With the allocator
 * empty, a GFP_NOIO (DMA_ATTR_MAY_SLEEP) mapping past the full pool still succeeds from the
 * reserve, and unmapping gives the elements back; without a reserve it retries forever.
 * Also mempool_create_kmalloc_pool on its own.
 */
import { expect } from 'chai';
import { runIteration } from '../../scheduler';
import { GFP_KERNEL, GFP_NOWAIT } from '../../lib/kernel/gfp';
import { alloc_pages, mempool_alloc, mempool_create_kmalloc_pool, mempool_free, MIB, mm, mm_prepare, page_to_phys } from '../../lib/mm';
import { DMA_ATTR_MAY_SLEEP, DMA_ATTR_NO_WARN, DMA_MAPPING_ERROR, DMA_TO_DEVICE } from '../../lib/dma/attrs';
import { dma_init } from '../../lib/dma/init';
import { device_register } from '../../lib/dma/state';
import { swiotlb_map, swiotlb_tbl_unmap_single } from '../../lib/dma/swiotlb/map';
import { swiotlb_dyn_reserve_init } from '../../lib/dma/swiotlb/policies/rfc-dynamic';
import { swiotlb_prepare } from '../../lib/dma/swiotlb/setup';
import { swiotlb_state } from '../../lib/dma/swiotlb/state';
import { memProgram } from '../support/memory';

const KIB = 1024;

function run(reserve: number): { ok: boolean; counters: Record<string, number>; findings: string[]; poolBack: number } {
  const image = mm_prepare({ memory: 64 * MIB });
  const sw = swiotlb_prepare(image, { cpus: 1, size: MIB, policy: { name: 'rfc-dynamic', maySleepGfp: 'GFP_NOIO', reserve, reserveOrder: 2 } });
  const out = { ok: false, poolBack: -1 };
  const p = memProgram(`rfc-reserve-${reserve}`, { image, cpus: 1, kswapd: false }, (m) => {
    dma_init(m, { swiotlb: sw });
    const dev = device_register(m, { name: 'nvme0' });
    m.kthread('probe', 0, function* (cur) {
      expect(yield* swiotlb_dyn_reserve_init(cur, GFP_KERNEL)).to.equal(true);
      // take the whole boot pool
      const buf = yield* alloc_pages(cur, GFP_KERNEL, 6);
      for (let i = 0; i < 4; i++) expect(yield* swiotlb_map(cur, dev, page_to_phys(m, buf), 256 * KIB, DMA_TO_DEVICE, DMA_ATTR_NO_WARN)).to.not.equal(DMA_MAPPING_ERROR);
      // and every free page down to the min watermark (nothing is reclaimable: no page cache, no swap)
      for (let order = 10; order >= 0; order--) while ((yield* alloc_pages(cur, GFP_NOWAIT, order)) >= 0);
      const tlb = yield* swiotlb_map(cur, dev, page_to_phys(m, buf), 8 * KIB, DMA_TO_DEVICE, DMA_ATTR_MAY_SLEEP | DMA_ATTR_NO_WARN);
      out.ok = tlb !== DMA_MAPPING_ERROR;
      if (out.ok) {
        yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 8 * KIB, DMA_TO_DEVICE, 0);
        const pol = swiotlb_state(m).policy as unknown as { reservePools: { pages: { curr_nr: number } } | null };
        out.poolBack = pol.reservePools!.pages.curr_nr;
      }
      void mm;
    });
  });
  const r = runIteration(p, { iteration: 0, stepBudget: 20_000 });
  return { ...out, counters: (r.metrics.counters ?? {}) as Record<string, number>, findings: r.findings.map((f) => f.kind) };
}

describe('swiotlb rfc-dynamic: mempool reserve', () => {
  it('with the allocator empty, a GFP_NOIO mapping past the full pool comes from the reserve and gives it back', () => {
    const r = run(2);
    expect(r.findings).to.deep.equal([]);
    expect(r.ok).to.equal(true);
    expect(r.counters['mm.mempool_reserve_used']).to.be.at.least(1); // the pages (the slab still had descriptors and nodes)
    expect(r.poolBack).to.equal(2);
  });

  it('without a reserve the same mapping never completes: GFP_NOIO reclaims nothing and retries (no OOM without __GFP_FS)', () => {
    const r = run(0);
    expect(r.ok).to.equal(false);
    expect(r.findings).to.include('step_budget');
    expect(r.findings).to.not.include('oom_kill');
    expect(r.counters['mm.allocstall']).to.be.greaterThan(1);
  });

  it('mempool_create_kmalloc_pool: min_nr kmalloc elements; a free beyond min_nr goes back to kfree', () => {
    const p = memProgram('kmalloc-pool', { memory: 64 * MIB, cpus: 1 }, (m) => {
      m.kthread('t', 0, function* (cur) {
        const pool = (yield* mempool_create_kmalloc_pool(cur, 2, 48, GFP_KERNEL))!;
        expect(pool.curr_nr).to.equal(2);
        const a = (yield* mempool_alloc(cur, pool, GFP_KERNEL))!;
        const b = (yield* mempool_alloc(cur, pool, GFP_KERNEL))!;
        expect(a).to.be.greaterThan(0);
        expect(b).to.not.equal(a);
        expect(pool.curr_nr).to.equal(2); // the allocator had room: the reserve stays
        yield* mempool_free(cur, a, pool);
        yield* mempool_free(cur, b, pool);
        expect(pool.curr_nr).to.equal(2);
      });
    });
    expect(runIteration(p, { iteration: 0 }).findings).to.deep.equal([]);
  });
});
