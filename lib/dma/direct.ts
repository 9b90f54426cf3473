/**
 * dma-direct (kernel/dma/direct.c, direct.h; docs/kernel-facts.md §1.6, 7, 9): the DMA API for devices
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
 * 64-byte line plus a barrier; zeroing a buffer costs ZERO_BYTES_PER_NS (costs.ts). ARM32's
 * allocator choice is arm32.ts.
 */
import { ProgramError } from '../../scheduler';
import { __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM, __GFP_NOWARN, __GFP_ZERO, gfpflags_allow_blocking } from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';
import { ZONE_DMA, ZONE_DMA32 } from '../mm/config';
import { phys_contents } from '../mm/contents';
import { set_memory_decrypted, set_memory_encrypted } from '../mm/decrypt';
import { mm, mmIfPresent } from '../mm/mm';
import { alloc_pages, __free_pages } from '../mm/page-alloc';
import { get_order } from '../kernel/sizes';
import { page_address } from '../mm/slab';
import { vmap, vunmap, VMALLOC_END, VMALLOC_START } from '../mm/vmalloc';
import { DMA_ATTR_NO_KERNEL_MAPPING, DMA_ATTR_NO_WARN, DMA_ATTR_SKIP_CPU_SYNC, DMA_BIT_MASK, DMA_MAPPING_ERROR } from './attrs';
import { dma_alloc_contiguous, dma_free_contiguous } from './contiguous';
import { dma_capable, type device, fmtMask } from './device';
import { dma_alloc_from_pool, dma_free_from_pool } from './pool';
import { for_each_sg, sg_phys, type scatterlist } from './scatterlist';
import { dma_state, dmaIfPresent } from './state';
import { is_swiotlb_active, is_swiotlb_force_bounce, swiotlb_find_pool, swiotlb_map, swiotlb_sync_single_for_cpu, swiotlb_sync_single_for_device, swiotlb_tbl_unmap_single, type DmaWarnInfo } from './swiotlb/map';
import type { BounceRef } from './swiotlb/policy';
import { EIO } from '../kernel/errno';
import { arm_dma_alloc, arm_dma_free } from './arm32';
import { arch_sync_cost, DIRECT_MAP_NS, ZERO_BYTES_PER_NS } from './costs';

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

// ---- streaming mappings ----

export const M_DIRECT_MAPS = 'dma.direct.maps';
export const M_DIRECT_BOUNCED = 'dma.direct.bounced';
export const M_DIRECT_OVERFLOW = 'dma.direct.overflow';
export const M_ARCH_SYNC = 'dma.direct.arch_syncs';

/** A mask or limit as the kernel prints it (%llx): DMA_BIT_MASK(64) is all ones. */

function directWarn(cur: Task, dev: device, subkind: string, message: string): void {
  const info: DmaWarnInfo = { subkind, dev: dev.name, message };
  cur.cpu.machine.emit('dmaDebug', cur, info);
}

/** arch_sync_dma_for_device / arch_sync_dma_for_cpu: cache maintenance of a non-coherent device's buffer. */
export function* arch_sync_dma(cur: Task, size: number): KernelBody<void> {
  cur.thread.sim.count(M_ARCH_SYNC, 1);
  yield cur.thread.work(arch_sync_cost(size));
}

/**
 * dma_direct_map_page(dev, phys, size, dir, attrs): the bus address of [phys, phys + size), or
 * DMA_MAPPING_ERROR. Bounces through swiotlb when the device must (force bounce) or cannot reach
 * the buffer; without a swiotlb an unreachable buffer WARNs "DMA addr ... overflow".
 */
export function* dma_direct_map_page(cur: Task, dev: device, phys: number, size: number, dir: number, attrs: number): KernelBody<number> {
  const sim = cur.thread.sim;
  yield cur.thread.work(DIRECT_MAP_NS);
  let addr = phys; // phys_to_dma
  if (is_swiotlb_force_bounce(dev)) {
    addr = yield* swiotlb_map(cur, dev, phys, size, dir, attrs);
    if (addr !== DMA_MAPPING_ERROR) sim.count(M_DIRECT_BOUNCED, 1);
  } else if (!dma_capable(dev, addr, size)) {
    if (!is_swiotlb_active(dev)) {
      sim.count(M_DIRECT_OVERFLOW, 1);
      directWarn(cur, dev, 'map_overflow', `DMA addr 0x${addr.toString(16)}+${size} overflow (mask ${fmtMask(dev.dma_mask)}, bus limit ${fmtMask(dev.bus_dma_limit)}).`);
      return DMA_MAPPING_ERROR;
    }
    addr = yield* swiotlb_map(cur, dev, phys, size, dir, attrs);
    if (addr !== DMA_MAPPING_ERROR) sim.count(M_DIRECT_BOUNCED, 1);
  }
  if (addr === DMA_MAPPING_ERROR) return addr;
  if (!dev.dma_coherent && !(attrs & DMA_ATTR_SKIP_CPU_SYNC)) yield* arch_sync_dma(cur, size);
  sim.count(M_DIRECT_MAPS, 1);
  return addr;
}

/** The bounce buffer at `addr`, if `addr` is one (swiotlb_find_pool), else null. */
function* findBounce(cur: Task, dev: device, addr: number): KernelBody<BounceRef | null> {
  if (dev.dma_io_tlb_mem === null) return null;
  return yield* swiotlb_find_pool(cur, dev, addr);
}

/**
 * dma_direct_unmap_page: unless DMA_ATTR_SKIP_CPU_SYNC, dma_direct_sync_single_for_cpu (cache
 * maintenance, copy back); then, if the address is a bounce buffer, release it.
 */
export function* dma_direct_unmap_page(cur: Task, dev: device, addr: number, size: number, dir: number, attrs: number): KernelBody<void> {
  yield cur.thread.work(DIRECT_MAP_NS);
  // As upstream: the CPU sync first (its own is_swiotlb_buffer / swiotlb_find_pool and copy
  // back), then the unmap looks the address up again and releases with DMA_ATTR_SKIP_CPU_SYNC.
  if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC)) yield* dma_direct_sync_single_for_cpu(cur, dev, addr, size, dir);
  const ref = yield* findBounce(cur, dev, addr);
  if (ref !== null) yield* swiotlb_tbl_unmap_single(cur, dev, addr, size, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC, ref);
}

/** dma_direct_sync_single_for_cpu: cache maintenance, then copy a bounce buffer back. */
export function* dma_direct_sync_single_for_cpu(cur: Task, dev: device, addr: number, size: number, dir: number): KernelBody<void> {
  if (!dev.dma_coherent) yield* arch_sync_dma(cur, size);
  const ref = yield* findBounce(cur, dev, addr);
  if (ref !== null) yield* swiotlb_sync_single_for_cpu(cur, dev, addr, size, dir, ref);
}

/** dma_direct_sync_single_for_device: fill a bounce buffer, then cache maintenance. */
export function* dma_direct_sync_single_for_device(cur: Task, dev: device, addr: number, size: number, dir: number): KernelBody<void> {
  const ref = yield* findBounce(cur, dev, addr);
  if (ref !== null) yield* swiotlb_sync_single_for_device(cur, dev, addr, size, dir, ref);
  if (!dev.dma_coherent) yield* arch_sync_dma(cur, size);
}

/**
 * dma_direct_map_sg: map each segment; at the first failure unmap the segments already mapped
 * (without CPU sync) and fail with -EIO (dma_map_sg turns it into 0).
 */
export function* dma_direct_map_sg(cur: Task, dev: device, sgl: readonly scatterlist[], nents: number, dir: number, attrs: number): KernelBody<number> {
  const m = cur.cpu.machine;
  for (const [i, sg] of for_each_sg(sgl, nents)) {
    sg.dma_address = yield* dma_direct_map_page(cur, dev, sg_phys(m, sg), sg.length, dir, attrs);
    if (sg.dma_address === DMA_MAPPING_ERROR) {
      yield* dma_direct_unmap_sg(cur, dev, sgl, i, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
      return -EIO;
    }
    sg.dma_length = sg.length;
  }
  return nents;
}

/** dma_direct_unmap_sg. */
export function* dma_direct_unmap_sg(cur: Task, dev: device, sgl: readonly scatterlist[], nents: number, dir: number, attrs: number): KernelBody<void> {
  for (const [, sg] of for_each_sg(sgl, nents)) yield* dma_direct_unmap_page(cur, dev, sg.dma_address, sg.dma_length, dir, attrs);
}

export function* dma_direct_sync_sg_for_cpu(cur: Task, dev: device, sgl: readonly scatterlist[], nents: number, dir: number): KernelBody<void> {
  for (const [, sg] of for_each_sg(sgl, nents)) yield* dma_direct_sync_single_for_cpu(cur, dev, sg.dma_address, sg.length, dir);
}

export function* dma_direct_sync_sg_for_device(cur: Task, dev: device, sgl: readonly scatterlist[], nents: number, dir: number): KernelBody<void> {
  for (const [, sg] of for_each_sg(sgl, nents)) yield* dma_direct_sync_single_for_device(cur, dev, sg.dma_address, sg.length, dir);
}

// ---- coherent allocations ----

/** What dma_direct_alloc hands back: the CPU address (a cookie with NO_KERNEL_MAPPING) and the bus address. */
export interface DmaCoherent {
  vaddr: number;
  dma_handle: number;
}

export const M_COHERENT_POOL = 'dma.coherent.from_pool';
export const M_COHERENT_PAGES = 'dma.coherent.from_pages';
export const M_COHERENT_FAIL = 'dma.coherent.fail';

/** Zero a fresh buffer (memset): its cost, and its bytes when contents are tracked. */
export function* zeroBuffer(cur: Task, phys: number, size: number): KernelBody<void> {
  yield cur.thread.work(Math.ceil(size / ZERO_BYTES_PER_NS));
  phys_contents(cur.cpu.machine)?.fill(phys, size, 0);
}

/** dma_direct_alloc_from_pool: the atomic pools, accepting only memory the coherent mask reaches. */
function* dma_direct_alloc_from_pool(cur: Task, dev: device, size: number, gfp: number): KernelBody<DmaCoherent | null> {
  const got = yield* dma_alloc_from_pool(cur, dev, size, gfp | dma_direct_optimal_gfp_mask(dev).gfp, dma_coherent_ok);
  if (got === null) return null;
  cur.thread.sim.count(M_COHERENT_POOL, 1);
  return { vaddr: got.vaddr, dma_handle: got.phys };
}

/**
 * dma_direct_alloc(dev, size, &dma_handle, gfp, attrs): a zeroed coherent buffer. Callers that
 * cannot sleep get the atomic pools when the buffer must be decrypted (CoCo) or remapped
 * (non-coherent device with CONFIG_DMA_DIRECT_REMAP); everyone else gets pages (CMA or buddy),
 * decrypted in place in a CoCo guest, remapped uncached for a non-coherent device.
 */
export function* dma_direct_alloc(cur: Task, dev: device, sizeIn: number, gfpIn: number, attrs: number): KernelBody<DmaCoherent | null> {
  const m = cur.cpu.machine;
  const st = dma_state(m);
  if (st.opts.arm32) return yield* arm_dma_alloc(cur, dev, sizeIn, gfpIn, attrs);
  const size = page_align(m, sizeIn);
  let gfp = gfpIn;
  if (attrs & DMA_ATTR_NO_WARN) gfp |= __GFP_NOWARN;
  const cc = force_dma_unencrypted(dev);
  if ((attrs & DMA_ATTR_NO_KERNEL_MAPPING) && !cc) {
    // dma_direct_alloc_no_mapping: the page itself is the cookie; nothing to zero or map.
    const pfn = yield* __dma_direct_alloc_pages(cur, dev, size, gfp & ~__GFP_ZERO);
    if (pfn < 0) return fail(cur);
    if (!dev.dma_coherent) yield* arch_sync_dma(cur, size); // arch_dma_prep_coherent
    cur.thread.sim.count(M_COHERENT_PAGES, 1);
    return { vaddr: page_address(m, pfn), dma_handle: mm(m).phys.pfnToPhys(pfn) };
  }
  let remap = false;
  if (!dev.dma_coherent) {
    remap = st.remap;
    if (!remap) {
      if (m.log.firstTime('dma_direct_alloc:unsupported')) m.log.printk(cur.cpu.id, 'coherent DMA allocations not supported on this platform.');
      return fail(cur);
    }
  }
  // Remapping or decrypting may block: a caller that cannot gets the atomic pools.
  if ((remap || cc) && !gfpflags_allow_blocking(gfp)) {
    const r = yield* dma_direct_alloc_from_pool(cur, dev, size, gfp);
    return r ?? fail(cur);
  }
  const pfn = yield* __dma_direct_alloc_pages(cur, dev, size, gfp & ~__GFP_ZERO);
  if (pfn < 0) return fail(cur);
  const phys = mm(m).phys.pfnToPhys(pfn);
  let vaddr: number;
  if (remap) {
    yield* arch_sync_dma(cur, size); // arch_dma_prep_coherent: no dirty lines on the kernel alias
    const count = size / dma_page_size(m);
    const pfns: number[] = [];
    for (let i = 0; i < count; i++) pfns.push(pfn + i);
    vaddr = yield* vmap(cur, pfns, count); // dma_common_contiguous_remap
    if (vaddr === 0) {
      yield* __dma_direct_free_pages(cur, dev, pfn, size);
      return fail(cur);
    }
  } else {
    vaddr = page_address(m, pfn);
    // A failed decryption may have left pages shared: leak them rather than hand them back.
    if ((yield* dma_set_decrypted(cur, dev, vaddr, size)) !== 0) {
      cur.thread.sim.count(M_LEAKED, size / dma_page_size(m));
      return fail(cur);
    }
  }
  yield* zeroBuffer(cur, phys, size);
  cur.thread.sim.count(M_COHERENT_PAGES, 1);
  return { vaddr, dma_handle: phys };
}

export function fail(cur: Task): null {
  cur.thread.sim.count(M_COHERENT_FAIL, 1);
  return null;
}

/**
 * dma_direct_free(dev, size, cpu_addr, dma_addr, attrs): back to the atomic pool it came from,
 * or unmap / re-encrypt (leaking on failure) and free the pages.
 */
export function* dma_direct_free(cur: Task, dev: device, sizeIn: number, vaddr: number, dma_addr: number, attrs: number): KernelBody<void> {
  const m = cur.cpu.machine;
  if (dma_state(m).opts.arm32) return yield* arm_dma_free(cur, dev, sizeIn, vaddr, dma_addr, attrs);
  const size = page_align(m, sizeIn);
  const phys = mm(m).phys;
  const pfn = phys.physToPfn(dma_addr); // dma_direct_to_page
  if ((attrs & DMA_ATTR_NO_KERNEL_MAPPING) && !force_dma_unencrypted(dev)) {
    yield* dma_free_contiguous(cur, dev, pfn, size);
    return;
  }
  if (yield* dma_free_from_pool(cur, dev, dma_addr, size)) return;
  if (vaddr >= VMALLOC_START && vaddr < VMALLOC_END) {
    yield* vunmap(cur, vaddr);
  } else if ((yield* dma_set_encrypted(cur, dev, vaddr, size)) !== 0) {
    return; // leaked on purpose
  }
  yield* __dma_direct_free_pages(cur, dev, pfn, size);
}
