/**
 * dma-direct (kernel/dma/direct.c, direct.h; KERNEL-FACTS 1.6, 7, 9): the DMA API for devices
 * that see physical memory one to one (no IOMMU).
 *
 * Coherent allocations: the zone from the device's coherent mask (GFP_DMA / GFP_DMA32, retried
 * lower when the page lands above the mask), CMA first when the caller may sleep, then the buddy
 * allocator; in a CoCo guest the buffer is decrypted (shared with the host), for a non-coherent
 * device with CONFIG_DMA_DIRECT_REMAP it is remapped uncached; callers that cannot sleep while
 * either is needed get memory from the atomic pools (pool.ts) instead, since both steps sleep.
 *
 * Streaming mappings: the bus address is the physical address; a buffer bounces through swiotlb
 * when the device must (force bounce: CoCo, swiotlb=force) or cannot reach it; a non-coherent
 * device pays the cache maintenance (arch_sync_dma_for_device / _for_cpu) on map, unmap and sync.
 *
 * Simplified: phys_to_dma is the identity (no memory encryption bit in bus addresses, no
 * dma_range_map); no P2PDMA, no dma_kmalloc_needs_bounce, no swiotlb_alloc (restricted pools),
 * no highmem; arch_dma_prep_coherent and the cache maintenance cost ARCH_SYNC_NS_PER_LINE per
 * 64-byte line plus a barrier; zeroing a buffer costs ZERO_BYTES_PER_NS.
 */
import { ProgramError } from '../../scheduler';
import { __GFP_DMA, __GFP_DMA32 } from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';
import { ZONE_DMA, ZONE_DMA32 } from '../mm/config';
import { set_memory_decrypted, set_memory_encrypted } from '../mm/decrypt';
import { mm, mmIfPresent } from '../mm/mm';
import { alloc_pages, __free_pages } from '../mm/page-alloc';
import { get_order } from '../mm/slab';
import { DMA_BIT_MASK } from './attrs';
import { dma_alloc_contiguous, dma_free_contiguous } from './contiguous';
import type { device } from './device';
import { dmaIfPresent } from './state';

/** Cache maintenance (clean / invalidate by VA) per 64-byte line, and the barrier after it. */
export const ARCH_SYNC_NS_PER_LINE = 2;
export const ARCH_SYNC_BARRIER_NS = 20;
/** memset of a fresh coherent buffer. */
export const ZERO_BYTES_PER_NS = 16;

export const M_ALLOC_CMA = 'dma.direct.alloc_cma';
export const M_ALLOC_BUDDY = 'dma.direct.alloc_buddy';
export const M_ALLOC_RETRY = 'dma.direct.alloc_zone_retry';
export const M_ALLOC_FAIL = 'dma.direct.alloc_fail';
export const M_LEAKED = 'dma.direct.leaked_pages';

/** The machine's page size (4 KiB without a memory model). */
export function dma_page_size(m: Machine): number {
  const model = mmIfPresent(m);
  return model === null ? 4096 : model.phys.pageSize;
}

/** PAGE_ALIGN(size). */
export function page_align(m: Machine, size: number): number {
  const ps = dma_page_size(m);
  return Math.ceil(size / ps) * ps;
}

/** force_dma_unencrypted(dev): DMA memory must be shared with the host (CoCo guest). */
export function force_dma_unencrypted(dev: device): boolean {
  const st = dmaIfPresent(dev.m);
  return st !== null && st.cc;
}

/** zone_dma_limit: the highest address ZONE_DMA covers (0 without ZONE_DMA). */
function zone_dma_limit(m: Machine): number {
  const phys = mm(m).phys;
  const z = phys.zoneByIdx(ZONE_DMA);
  return z === null ? 0 : phys.pfnToPhys(z.endPfn) - 1;
}

/** min_not_zero(dev->coherent_dma_mask, dev->bus_dma_limit). */
export function dma_coherent_limit(dev: device): number {
  return dev.bus_dma_limit === 0 ? dev.coherent_dma_mask : Math.min(dev.coherent_dma_mask, dev.bus_dma_limit);
}

/**
 * dma_direct_optimal_gfp_mask(dev, &phys_limit): the zone the coherent mask falls into, tried
 * first; a page that still lands above the mask sends the caller one zone lower.
 */
export function dma_direct_optimal_gfp_mask(dev: device): { gfp: number; phys_limit: number } {
  const phys_limit = dma_coherent_limit(dev);
  if (phys_limit <= zone_dma_limit(dev.m)) return { gfp: __GFP_DMA, phys_limit };
  if (phys_limit <= DMA_BIT_MASK(32)) return { gfp: __GFP_DMA32, phys_limit };
  return { gfp: 0, phys_limit };
}

/** dma_coherent_ok(dev, phys, size): the whole buffer lies below the coherent limit. */
export function dma_coherent_ok(dev: device, phys: number, size: number): boolean {
  return phys + size - 1 <= dma_coherent_limit(dev);
}

/**
 * __dma_direct_alloc_pages(dev, size, gfp): `size` bytes of pages the device can reach with its
 * coherent mask: CMA first (nothing for a caller that cannot sleep), then the buddy allocator,
 * retrying in GFP_DMA32 and then GFP_DMA when a page lands too high. The first pfn, or -1.
 * No decryption, no remap, no zeroing.
 */
export function* __dma_direct_alloc_pages(cur: Task, dev: device, sizeIn: number, gfpIn: number): KernelBody<number> {
  const m = cur.cpu.machine;
  if (!Number.isSafeInteger(sizeIn) || sizeIn <= 0) throw new ProgramError(`__dma_direct_alloc_pages(${dev.name}): size must be a positive integer, got ${sizeIn}`);
  const phys = mm(m).phys;
  const size = page_align(m, sizeIn);
  const sim = cur.thread.sim;
  const { gfp: zoneGfp, phys_limit } = dma_direct_optimal_gfp_mask(dev);
  let gfp = gfpIn | zoneGfp;
  const order = get_order(size, phys.pageSize);
  let pfn = yield* dma_alloc_contiguous(cur, dev, size, gfp);
  if (pfn >= 0) {
    if (!dma_coherent_ok(dev, phys.pfnToPhys(pfn), size)) {
      yield* dma_free_contiguous(cur, dev, pfn, size);
      pfn = -1;
    } else {
      sim.count(M_ALLOC_CMA, 1);
      return pfn;
    }
  }
  const hasDma = phys.zoneByIdx(ZONE_DMA) !== null;
  const hasDma32 = phys.zoneByIdx(ZONE_DMA32) !== null;
  for (;;) {
    pfn = yield* alloc_pages(cur, gfp, order);
    if (pfn < 0) break;
    if (dma_coherent_ok(dev, phys.pfnToPhys(pfn), size)) {
      sim.count(M_ALLOC_BUDDY, 1);
      return pfn;
    }
    __free_pages(cur, pfn, order);
    pfn = -1;
    sim.count(M_ALLOC_RETRY, 1);
    if (hasDma32 && phys_limit < DMA_BIT_MASK(64) && (gfp & (__GFP_DMA32 | __GFP_DMA)) === 0) {
      gfp |= __GFP_DMA32;
      continue;
    }
    if (hasDma && (gfp & __GFP_DMA) === 0) {
      gfp = (gfp & ~__GFP_DMA32) | __GFP_DMA;
      continue;
    }
    break;
  }
  sim.count(M_ALLOC_FAIL, 1);
  return -1;
}

/** __dma_direct_free_pages(dev, pfn, size): back to CMA or the buddy allocator. */
export function* __dma_direct_free_pages(cur: Task, dev: device, pfn: number, size: number): KernelBody<void> {
  yield* dma_free_contiguous(cur, dev, pfn, page_align(cur.cpu.machine, size));
}

/**
 * dma_set_decrypted(dev, vaddr, size): share the pages with the host when DMA memory must be
 * unencrypted; a no-op otherwise. Sleeps (set_memory_decrypted). 0 or -errno.
 */
export function* dma_set_decrypted(cur: Task, dev: device, vaddr: number, size: number): KernelBody<number> {
  if (!force_dma_unencrypted(dev)) return 0;
  return yield* set_memory_decrypted(cur, vaddr, Math.ceil(size / dma_page_size(cur.cpu.machine)));
}

/**
 * dma_set_encrypted(dev, vaddr, size): make the pages private again before they are freed. On
 * failure the caller leaks them on purpose (the host could still see them), with a ratelimited
 * "leaking DMA memory that can't be re-encrypted".
 */
export function* dma_set_encrypted(cur: Task, dev: device, vaddr: number, size: number): KernelBody<number> {
  if (!force_dma_unencrypted(dev)) return 0;
  const m = cur.cpu.machine;
  const ret = yield* set_memory_encrypted(cur, vaddr, Math.ceil(size / dma_page_size(m)));
  if (ret !== 0) {
    cur.thread.sim.count(M_LEAKED, Math.ceil(size / dma_page_size(m)));
    if (m.log.ratelimit('dma_set_encrypted', 5_000_000_000, 10)) m.log.printk(cur.cpu.id, "leaking DMA memory that can't be re-encrypted");
  }
  return ret;
}

/** arch_sync_dma_for_device / _for_cpu / arch_dma_prep_coherent: cache maintenance by VA. */
export function arch_sync_cost(size: number): number {
  return ARCH_SYNC_BARRIER_NS + Math.ceil(size / 64) * ARCH_SYNC_NS_PER_LINE;
}
