/**
 * HISTORICAL: the 2016 dma-iommu allocator, kept only to transcribe a mailing-list thread.
 * Current kernels do not work this way; the live allocator is lib/dma/iommu/dma-iommu-alloc.ts.
 *
 * v4.5/v4.6 drivers/iommu/dma-iommu.c, as arm64's __iommu_alloc_attrs used it, for the
 * DMA_ATTR_ALLOC_SINGLE_PAGES thread (Yong Wu's patch, Will Deacon and Doug Anderson, March
 * 2016; docs/kernel-facts.md §8.2; scenario s12). It never consulted the domain's pgsize_bitmap: chunks
 * are whatever the buddy allocator gives, and iommu_map_sg then maps each physically contiguous
 * run, which a domain whose granule is above PAGE_SIZE refuses unless the run is aligned to it.
 */
import { ProgramError } from '../../../scheduler';
import { __GFP_HIGHMEM, __GFP_NORETRY, __GFP_NOWARN, gfpflags_allow_blocking } from '../../kernel/gfp';
import type { KernelBody } from '../../kernel/machine';
import { fn } from '../../kernel/stack';
import type { Task } from '../../kernel/task';
import { mm } from '../../mm/mm';
import { alloc_pages, page_to_phys } from '../../mm/page-alloc';
import { DMA_ATTR_ALLOC_SINGLE_PAGES, DMA_BIDIRECTIONAL } from '../attrs';
import type { device } from '../device';
import { dma_info_to_prot, domainOf, iommu_dma_alloc_iova, iommu_dma_free_iova } from '../iommu/dma-iommu';
import { free_chunks, remap_chunks, type IommuDmaBuffer } from '../iommu/dma-iommu-alloc';
import { iommu_map, iommu_unmap, M_IOMMU_ALLOC_FAIL_ORDER, M_IOMMU_ALLOC_FAILURES, M_IOMMU_ALLOC_ORDER, type iommu_domain } from '../iommu/iommu';

/** Which allocator iommu_dma_alloc_2016 transcribes. */
export interface IommuAlloc2016Options {
  /**
   * Yong Wu's patch: DMA_ATTR_ALLOC_SINGLE_PAGES goes straight to order 0 ("Go straight to 4K
   * chunks if caller says it's OK"). Without it the attribute is ignored (default true).
   */
  singlePagesPatch?: boolean;
}

export const M_IOMMU_2016_SEGMENTS = 'iommu.map_sg_segments';

/**
 * v4.5 __iommu_dma_alloc_pages(count, gfp) with Yong Wu's `attrs`: from MAX_ORDER down, the
 * largest order that fits the pages still needed, tried with __GFP_NORETRY down to order 1 and
 * then a plain order-0 page. The order reached is kept for the next chunk (the loop variable
 * lives across chunks), so once a chunk falls back to order 0 every later one is order 0 too.
 * High-order blocks are split_page()d into single pages (here kept as blocks: freeing them as
 * blocks is the same). Null, everything freed, when even order 0 fails.
 */
export function* __iommu_dma_alloc_pages_2016(cur: Task, dev: device, count: number, gfp: number, attrs: number, o: IommuAlloc2016Options = {}): KernelBody<[number, number][] | null> {
  return yield* fn(cur, '__iommu_dma_alloc_pages', (function* () {
    const sim = cur.thread.sim;
    // MAX_ORDER (11 then) is past the largest order: alloc_pages fails it silently (__GFP_NOWARN).
    let order = mm(dev.m).phys.maxOrder;
    const flags = gfp | __GFP_NOWARN | __GFP_HIGHMEM;
    // Go straight to 4K chunks if caller says it's OK.
    if ((o.singlePagesPatch ?? true) && attrs & DMA_ATTR_ALLOC_SINGLE_PAGES) order = 0;
    const chunks: [number, number][] = [];
    let left = count;
    while (left > 0) {
      let fls = 0;
      while (2 ** (fls + 1) <= left) fls++;
      let page = -1;
      // Higher-order allocations are a convenience rather than a necessity.
      for (order = Math.min(order, fls); order > 0; order--) {
        page = yield* alloc_pages(cur, flags | __GFP_NORETRY, order);
        if (page >= 0) break;
        sim.count(M_IOMMU_ALLOC_FAIL_ORDER[order], 1);
      }
      if (page < 0) page = yield* alloc_pages(cur, flags, 0);
      if (page < 0) {
        sim.count(M_IOMMU_ALLOC_FAIL_ORDER[0], 1);
        free_chunks(cur, chunks);
        return null;
      }
      sim.count(M_IOMMU_ALLOC_ORDER[order], 1);
      chunks.push([page, order]);
      left -= 2 ** order;
    }
    return chunks;
  })());
}

/**
 * v4.5 default_iommu_map_sg: each segment mapped where the previous ended; a segment whose
 * offset is not granule-aligned, or an iommu_map that fails (an unaligned paddr or length is
 * refused with "iommu: unaligned"), unmaps what was mapped and returns 0. The bytes mapped
 * otherwise.
 */
function* default_iommu_map_sg(cur: Task, domain: iommu_domain, iova: number, segs: { phys: number; len: number }[], prot: number): KernelBody<number> {
  let mapped = 0;
  for (const s of segs) {
    if ((yield* iommu_map(cur, domain, iova + mapped, s.phys, s.len, prot)) !== 0) {
      if (mapped > 0) yield* iommu_unmap(cur, domain, iova, mapped);
      return 0;
    }
    mapped += s.len;
  }
  return mapped;
}

/**
 * v4.5 iommu_dma_alloc + arm64 __iommu_alloc_attrs (blocking path): pages from
 * __iommu_dma_alloc_pages_2016, an IOVA range of iova_align(size), sg_alloc_table_from_pages
 * (physically contiguous pages merged into one segment), iommu_map_sg, then the vmap. Null when
 * any step fails (pages and IOVA given back). iommu_dma_free releases the result.
 */
export function* iommu_dma_alloc_2016(cur: Task, dev: device, size: number, gfp: number, attrs = 0, o: IommuAlloc2016Options = {}): KernelBody<IommuDmaBuffer | null> {
  return yield* fn(cur, 'iommu_dma_alloc', (function* () {
    if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`iommu_dma_alloc: size must be a positive integer, got ${size}`);
    if (!gfpflags_allow_blocking(gfp)) throw new ProgramError('iommu_dma_alloc_2016 transcribes the blocking path only');
    const domain = domainOf(dev);
    const m = dev.m;
    const pageSize = mm(m).phys.pageSize;
    const sim = cur.thread.sim;
    const prot = dma_info_to_prot(DMA_BIDIRECTIONAL, dev.dma_coherent, attrs);
    const count = Math.ceil(size / pageSize);
    const chunks = yield* __iommu_dma_alloc_pages_2016(cur, dev, count, gfp, attrs, o);
    if (chunks === null) {
      sim.count(M_IOMMU_ALLOC_FAILURES, 1);
      return null;
    }
    const len = domain.iova_align(size);
    const iova = yield* iommu_dma_alloc_iova(cur, domain, len, dev.coherent_dma_mask, dev);
    if (iova === 0) {
      free_chunks(cur, chunks);
      sim.count(M_IOMMU_ALLOC_FAILURES, 1);
      return null;
    }
    // sg_alloc_table_from_pages: the pages array in order, contiguous runs merged.
    const segs: { phys: number; len: number }[] = [];
    for (const [pfn, order] of chunks) {
      const phys = page_to_phys(m, pfn);
      const bytes = 2 ** order * pageSize;
      const last = segs[segs.length - 1];
      if (last !== undefined && last.phys + last.len === phys) last.len += bytes;
      else segs.push({ phys, len: bytes });
    }
    sim.count(M_IOMMU_2016_SEGMENTS, segs.length);
    if ((yield* default_iommu_map_sg(cur, domain, iova, segs, prot)) < count * pageSize) {
      iommu_dma_free_iova(cur, domain, iova, len);
      free_chunks(cur, chunks);
      sim.count(M_IOMMU_ALLOC_FAILURES, 1);
      return null;
    }
    return yield* remap_chunks(cur, dev, chunks, iova, len, size);
  })());
}
