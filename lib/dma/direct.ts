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
import { __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM, __GFP_NOWARN, __GFP_ZERO, GFP_KERNEL, gfpflags_allow_blocking } from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';
import { ZONE_DMA, ZONE_DMA32 } from '../mm/config';
import { phys_contents } from '../mm/contents';
import { set_memory_decrypted, set_memory_encrypted } from '../mm/decrypt';
import { mm, mmIfPresent } from '../mm/mm';
import { alloc_pages, __free_pages } from '../mm/page-alloc';
import { get_order } from '../kernel/sizes';
import { page_address } from '../mm/slab';
import { flush_tlb_kernel_range, get_vm_area_caller, map_vm_area, vmap, vunmap, VMALLOC_END, VMALLOC_START } from '../mm/vmalloc';
import { DEFINE_SPINLOCK, spin_lock_irqsave, spin_unlock_irqrestore, type spinlock_t } from '../kernel/spinlock';
import { fn } from '../kernel/stack';
import { MIGRATE_UNMOVABLE } from '../mm/config';
import { kfree, kmalloc } from '../mm/slab';
import { DMA_ATTR_NO_KERNEL_MAPPING, DMA_ATTR_NO_WARN, DMA_ATTR_SKIP_CPU_SYNC, DMA_BIT_MASK, DMA_MAPPING_ERROR } from './attrs';
import { dev_get_cma_area, dma_alloc_contiguous, dma_alloc_from_contiguous, dma_free_contiguous, dma_release_from_contiguous } from './contiguous';
import { dma_capable, type device, fmtMask } from './device';
import { dma_alloc_from_pool, dma_free_from_pool } from './pool';
import { for_each_sg, sg_phys, type scatterlist } from './scatterlist';
import { dma_state, dmaIfPresent, type Arm32Allocator } from './state';
import { is_swiotlb_active, is_swiotlb_force_bounce, swiotlb_find_pool, swiotlb_map, swiotlb_sync_single_for_cpu, swiotlb_sync_single_for_device, swiotlb_tbl_unmap_single, type DmaWarnInfo } from './swiotlb/map';
import type { BounceRef } from './swiotlb/policy';
import { EIO } from '../kernel/errno';

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

// ---- streaming mappings ----

/** The direct path's own bookkeeping per map/unmap (dma_map_page_attrs, phys_to_dma, checks). */
export const DIRECT_MAP_NS = 25;

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
function* arch_sync_dma(cur: Task, size: number): KernelBody<void> {
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
function* zeroBuffer(cur: Task, phys: number, size: number): KernelBody<void> {
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

function fail(cur: Task): null {
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

// ---- ARM32's allocator choice (arch/arm/mm/dma-mapping.c, KERNEL-FACTS 7) ----

/**
 * What served an ARM32 buffer: v3.6+'s choice (cma, simple, remap, pool), the pre-3.6
 * consistent region (`consistent`, DmaOptions.arm32Consistent) or the hypothetical in-place
 * section attribute change (`section`, DmaOptions.arm32SectionRemap).
 */
export type Arm32Choice = Arm32Allocator | 'consistent' | 'section';

interface Arm32Buffer {
  allocator: Arm32Choice;
  pfn: number;
  order: number;
  count: number;
  vaddr: number;
}

const arm32Buffers = new WeakMap<device, Map<number, Arm32Buffer>>();

export const M_ARM32 = {
  cma: 'dma.arm32.cma',
  simple: 'dma.arm32.simple',
  remap: 'dma.arm32.remap',
  pool: 'dma.arm32.pool',
  consistent: 'dma.arm32.consistent',
  section: 'dma.arm32.section',
} as const;
/** Section entries of the linear map whose attributes were changed (break-flush-make), each way. */
export const M_ARM32_SECTION_CHANGES = 'dma.arm32.section_changes';
/** PTE pages consistent_init allocated at boot for the consistent region. */
export const M_ARM32_CONSISTENT_PTES = 'dma.arm32.consistent_pte_pages';

/** ARM's 1 MiB section: one first-level entry of the linear map. */
export const SECTION_SIZE = 1 << 20;
/** One PTE page (a pgd entry pair) maps 2 MiB on ARM (PGDIR_SHIFT 21). */
export const PGDIR_SIZE = 1 << 21;
/** Writing one page-table entry and cleaning it to the point of unification (set_pte_ext, flush_pmd_entry). */
export const SET_PTE_NS = 10;
/** Default CONSISTENT_DMA_SIZE (2 MiB: CONSISTENT_BASE 0xffc00000 .. CONSISTENT_END 0xffe00000). */
export const CONSISTENT_DMA_SIZE = 2 << 20;
/** CONSISTENT_BASE on a v3.4 kernel with the default size. */
export const CONSISTENT_BASE = 0xffc00000;

/**
 * The pre-3.6 consistent DMA region (Russell King's design): a fixed virtual range whose PTE
 * pages consistent_init allocated at boot (core_initcall, GFP_KERNEL, IRQs on), handed out by
 * arm_vmregion_alloc under consistent_head.vm_lock (irqsave). Remapping a buffer into it only
 * writes PTEs: nothing on that path allocates page tables or sleeps.
 */
class ConsistentRegion {
  /** One byte per page of the region: 1 = in use. */
  readonly used: Uint8Array;
  constructor(
    readonly base: number,
    readonly size: number,
    readonly pageSize: number,
    /** consistent_pte[]: the preallocated PTE pages (pfns), one per 2 MiB. */
    readonly ptes: number[],
    readonly vm_lock: spinlock_t,
  ) {
    this.used = new Uint8Array(size / pageSize);
  }
}

const consistentRegions = new WeakMap<Machine, ConsistentRegion>();

/**
 * consistent_init (v3.4 arch/arm/mm/dma-mapping.c, core_initcall): one pte_alloc_kernel page per
 * 2 MiB of the consistent region, allocated at boot. Called by dma_atomic_pool_init when
 * DmaOptions.arm32Consistent is set; like the atomic pools' boot fill it takes the pages straight
 * from the free lists, before the run's clock starts.
 */
export function arm_consistent_init(m: Machine, size: number): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size % PGDIR_SIZE !== 0) throw new ProgramError(`arm32Consistent must be a positive multiple of 2 MiB, got ${size}`);
  const phys = mm(m).phys;
  const ptes: number[] = [];
  for (let base = 0; base < size; base += PGDIR_SIZE) {
    let pfn = -1;
    for (let i = phys.zones.length - 1; i >= 0 && pfn < 0; i--) pfn = phys.rmqueue(phys.zones[i], 0, MIGRATE_UNMOVABLE, 0);
    if (pfn < 0) {
      m.log.printk(0, 'consistent_init: no pte tables');
      return;
    }
    ptes.push(pfn);
  }
  consistentRegions.set(m, new ConsistentRegion(CONSISTENT_BASE, size, phys.pageSize, ptes, DEFINE_SPINLOCK(m, 'consistent_head.vm_lock')));
  m.sim.count(M_ARM32_CONSISTENT_PTES, ptes.length);
}

/**
 * arm_vmregion_alloc(head, align, size, gfp): the struct arm_vmregion with the caller's gfp
 * (kmalloc), then a first fit aligned to min(roundup_pow_of_two(size), 1 MiB) under the region's
 * irqsave lock. The virtual address, or 0.
 */
function* arm_vmregion_alloc(cur: Task, r: ConsistentRegion, size: number, gfp: number): KernelBody<number> {
  return yield* fn(cur, 'arm_vmregion_alloc', (function* () {
    const obj = yield* kmalloc(cur, 48, gfp);
    if (obj === 0) return 0;
    const nr = size / r.pageSize;
    const align = Math.min(2 ** Math.ceil(Math.log2(size)), SECTION_SIZE) / r.pageSize;
    const flags = yield* spin_lock_irqsave(cur, r.vm_lock);
    let at = -1;
    for (let i = 0; i + nr <= r.used.length; i += Math.max(1, align)) {
      let k = 0;
      while (k < nr && r.used[i + k] === 0) k++;
      if (k === nr) {
        at = i;
        break;
      }
    }
    if (at >= 0) r.used.fill(1, at, at + nr);
    yield* spin_unlock_irqrestore(cur, r.vm_lock, flags);
    if (at < 0) {
      yield* kfree(cur, obj);
      return 0;
    }
    yield* kfree(cur, obj); // the descriptor's lifetime is not followed further (simplified)
    return r.base + at * r.pageSize;
  })());
}

/** __dma_alloc_remap (v3.4): a range of the consistent region, then one set_pte_ext per page. */
function* consistent_remap(cur: Task, r: ConsistentRegion, size: number, gfp: number): KernelBody<number> {
  return yield* fn(cur, '__dma_alloc_remap', (function* () {
    const addr = yield* arm_vmregion_alloc(cur, r, size, gfp & ~(__GFP_DMA | __GFP_HIGHMEM));
    if (addr === 0) return 0;
    yield cur.thread.work((size / r.pageSize) * SET_PTE_NS + ARCH_SYNC_BARRIER_NS); // set_pte_ext per page, dsb()
    return addr;
  })());
}

/** __dma_free_remap (v3.4): clear the PTEs, flush the range's TLB entries, give the range back. */
function* consistent_unmap(cur: Task, r: ConsistentRegion, addr: number, size: number): KernelBody<void> {
  yield* fn(cur, '__dma_free_remap', (function* () {
    yield cur.thread.work((size / r.pageSize) * SET_PTE_NS);
    yield* flush_tlb_kernel_range(cur, addr, addr + size);
    const flags = yield* spin_lock_irqsave(cur, r.vm_lock);
    const first = (addr - r.base) / r.pageSize;
    r.used.fill(0, first, first + size / r.pageSize);
    yield* spin_unlock_irqrestore(cur, r.vm_lock, flags);
  })());
}

/**
 * The hypothetical design of Russell King's 2014 mail: keep lowmem pages where they are and make
 * the linear map's section entries covering them uncached. The section is shared by every CPU's
 * TLB, so each change is break (clear the entry), flush every CPU's TLB for the section and wait
 * (flush_tlb_kernel_range: on_each_cpu(ipi_flush_tlb_kernel_range, &ta, 1) on an SMP without
 * hardware broadcast), make (write the new entry). Section use counts say when a section goes
 * back to cacheable at free. Simplified: the other lowmem pages sharing the section change with it (a
 * real design would split the section into a PTE table, which allocates).
 */
const sectionUse = new WeakMap<Machine, Map<number, number>>();

function* change_section_attributes(cur: Task, physStart: number, size: number, uncached: boolean): KernelBody<void> {
  const m = cur.cpu.machine;
  let use = sectionUse.get(m);
  if (use === undefined) sectionUse.set(m, (use = new Map()));
  const first = Math.floor(physStart / SECTION_SIZE);
  const last = Math.floor((physStart + size - 1) / SECTION_SIZE);
  for (let sec = first; sec <= last; sec++) {
    const n = use.get(sec) ?? 0;
    use.set(sec, n + (uncached ? 1 : -1));
    // Every allocation writes its section entry (another CPU may be mid-change on it); a section
    // goes back to cacheable only when its last buffer is freed.
    if (!uncached && n !== 1) continue;
    const vstart = page_address(m, mm(m).phys.physToPfn(sec * SECTION_SIZE));
    cur.thread.sim.count(M_ARM32_SECTION_CHANGES, 1);
    yield* fn(cur, uncached ? '__dma_section_set_uncached' : '__dma_section_set_cached', (function* () {
      yield cur.thread.work(SET_PTE_NS); // break: pmd_clear + flush_pmd_entry
      yield* flush_tlb_kernel_range(cur, vstart, vstart + SECTION_SIZE);
      yield cur.thread.work(SET_PTE_NS); // make: the section entry with the new attributes
    })());
  }
}

/**
 * The ARM32 choice in __dma_alloc (v3.6+): CMA when the caller may block and an area exists, else
 * the simple buddy allocator for a coherent device, else remap when the caller may block, else
 * the atomic pool. With DmaOptions.arm32Consistent (pre-3.6): a non-coherent buffer is always
 * remapped into the consistent region. With arm32SectionRemap: an atomic non-coherent buffer
 * changes its section attributes instead of coming from the pool.
 */
export function arm32_choose_allocator(m: Machine, dev: device, gfp: number): Arm32Choice {
  const opts = dma_state(m).opts;
  const allowblock = gfpflags_allow_blocking(gfp);
  if (opts.arm32Consistent) return dev.dma_coherent ? 'simple' : 'consistent';
  if (allowblock && dev_get_cma_area(m, dev) !== null) return 'cma';
  if (dev.dma_coherent) return 'simple';
  if (allowblock) return 'remap';
  return opts.arm32SectionRemap ? 'section' : 'pool';
}

/**
 * __dma_alloc_buffer(dev, size, gfp): pages with the caller's gfp, zeroed and flushed from the
 * caches (__dma_clear_buffer). Simplified: the whole power-of-two block is kept (no split_page
 * and freeing of the tail).
 */
function* __dma_alloc_buffer(cur: Task, dev: device, size: number, gfp: number, order: number): KernelBody<number> {
  return yield* fn(cur, '__dma_alloc_buffer', (function* () {
    const pfn = yield* alloc_pages(cur, gfp, order);
    if (pfn < 0) return -1;
    yield* zeroBuffer(cur, mm(cur.cpu.machine).phys.pfnToPhys(pfn), size);
    if (!dev.dma_coherent) yield* arch_sync_dma(cur, size); // dmac_flush_range + outer_flush_range
    return pfn;
  })());
}

/**
 * dma_common_contiguous_remap(page, size, vm_flags, prot, caller) (v3.18 drivers/base/
 * dma-mapping.c): the page array with GFP_KERNEL, then get_vm_area_caller and map_vm_area,
 * whose page tables are GFP_KERNEL too: every allocation on this path may sleep whatever the
 * caller passed. 0 on failure.
 */
function* dma_common_contiguous_remap(cur: Task, pfn: number, count: number): KernelBody<number> {
  return yield* fn(cur, 'dma_common_contiguous_remap', (function* () {
    const m = cur.cpu.machine;
    const pages = yield* kmalloc(cur, 4 * count, GFP_KERNEL); // sizeof(struct page *) << get_order(size)
    if (pages === 0) return 0;
    const pfns: number[] = [];
    for (let i = 0; i < count; i++) pfns.push(pfn + i);
    const addr = yield* fn(cur, 'dma_common_pages_remap', (function* () {
      const area = yield* get_vm_area_caller(cur, count * dma_page_size(m));
      if (area === null) return 0;
      if ((yield* map_vm_area(cur, area, pfns)) !== 0) {
        yield* vunmap(cur, area.addr);
        return 0;
      }
      return area.addr;
    })());
    yield* kfree(cur, pages);
    return addr;
  })());
}

/**
 * arm_dma_alloc / __dma_alloc. Simplified: ARM32's own atomic pool (256 KiB, coherent_pool=) is
 * stood in for by the generic atomic pools; __dma_remap of CMA pages (the linear map made
 * uncached in place, v3.6+) costs a kernel TLB flush and cache maintenance.
 */
export function* arm_dma_alloc(cur: Task, dev: device, sizeIn: number, gfpIn: number, _attrs: number): KernelBody<DmaCoherent | null> {
  return yield* fn(cur, '__dma_alloc', (function* () {
    const m = cur.cpu.machine;
    const phys = mm(m).phys;
    const size = page_align(m, sizeIn);
    let gfp = gfpIn & ~__GFP_ZERO;
    if (dma_coherent_limit(dev) < DMA_BIT_MASK(32)) gfp |= __GFP_DMA;
    const allocator = arm32_choose_allocator(m, dev, gfp);
    const count = size / phys.pageSize;
    const order = get_order(size, phys.pageSize);
    let pfn = -1;
    let vaddr = 0;
    if (allocator === 'pool') {
      const got = yield* fn(cur, '__alloc_from_pool', dma_alloc_from_pool(cur, dev, size, gfp));
      if (got === null) return fail(cur);
      pfn = phys.physToPfn(got.phys);
      vaddr = got.vaddr;
    } else if (allocator === 'cma') {
      pfn = yield* fn(cur, '__alloc_from_contiguous', dma_alloc_from_contiguous(cur, dev, count, order, (gfp & __GFP_NOWARN) !== 0));
      if (pfn < 0) return fail(cur);
      yield* zeroBuffer(cur, phys.pfnToPhys(pfn), size);
      vaddr = page_address(m, pfn);
      if (!dev.dma_coherent) {
        yield* arch_sync_dma(cur, size);
        yield* fn(cur, '__dma_remap', flush_tlb_kernel_range(cur, vaddr, vaddr + size));
      }
    } else if (allocator === 'simple') {
      pfn = yield* fn(cur, '__alloc_simple_buffer', __dma_alloc_buffer(cur, dev, size, gfp, order));
      if (pfn < 0) return fail(cur);
      vaddr = page_address(m, pfn);
    } else if (allocator === 'remap') {
      const r = yield* fn(cur, '__alloc_remap_buffer', (function* () {
        const p = yield* __dma_alloc_buffer(cur, dev, size, gfp, order);
        if (p < 0) return null;
        const a = yield* fn(cur, '__dma_alloc_remap', dma_common_contiguous_remap(cur, p, count));
        if (a === 0) {
          __free_pages(cur, p, order);
          return null;
        }
        return { p, a };
      })());
      if (r === null) return fail(cur);
      pfn = r.p;
      vaddr = r.a;
    } else if (allocator === 'consistent') {
      const region = consistentRegions.get(m);
      if (region === undefined) throw new ProgramError('arm32Consistent: consistent_init did not run (dma_init sets it up)');
      if (size > region.size) {
        m.log.printk(cur.cpu.id, `coherent allocation too big (requested 0x${size.toString(16)} mask 0x${dev.coherent_dma_mask.toString(16)})`);
        return fail(cur);
      }
      pfn = yield* __dma_alloc_buffer(cur, dev, size, gfp, order);
      if (pfn < 0) return fail(cur);
      vaddr = yield* consistent_remap(cur, region, size, gfp);
      if (vaddr === 0) {
        __free_pages(cur, pfn, order);
        return fail(cur);
      }
    } else {
      pfn = yield* __dma_alloc_buffer(cur, dev, size, gfp, order);
      if (pfn < 0) return fail(cur);
      yield* change_section_attributes(cur, phys.pfnToPhys(pfn), size, true);
      vaddr = page_address(m, pfn);
    }
    let bufs = arm32Buffers.get(dev);
    if (bufs === undefined) arm32Buffers.set(dev, (bufs = new Map()));
    const handle = phys.pfnToPhys(pfn);
    bufs.set(handle, { allocator, pfn, order, count, vaddr });
    cur.thread.sim.count(M_ARM32[allocator], 1);
    return { vaddr, dma_handle: handle };
  })());
}

/** arm_dma_free: back through the allocator that served the buffer. */
export function* arm_dma_free(cur: Task, dev: device, sizeIn: number, _vaddr: number, dma_addr: number, _attrs: number): KernelBody<void> {
  const m = cur.cpu.machine;
  const buf = arm32Buffers.get(dev)?.get(dma_addr);
  if (buf === undefined) throw new ProgramError(`arm_dma_free(${dev.name}): 0x${dma_addr.toString(16)} was not allocated by arm_dma_alloc`);
  arm32Buffers.get(dev)!.delete(dma_addr);
  const size = page_align(m, sizeIn);
  switch (buf.allocator) {
    case 'pool':
      yield* dma_free_from_pool(cur, dev, dma_addr, size);
      return;
    case 'cma':
      if (!dev.dma_coherent) yield* flush_tlb_kernel_range(cur, buf.vaddr, buf.vaddr + size);
      if (!(yield* dma_release_from_contiguous(cur, dev, buf.pfn, buf.count))) __free_pages(cur, buf.pfn, buf.order);
      return;
    case 'remap':
      yield* vunmap(cur, buf.vaddr);
      __free_pages(cur, buf.pfn, buf.order);
      return;
    case 'consistent':
      yield* consistent_unmap(cur, consistentRegions.get(m)!, buf.vaddr, size);
      __free_pages(cur, buf.pfn, buf.order);
      return;
    case 'section':
      yield* change_section_attributes(cur, mm(m).phys.pfnToPhys(buf.pfn), size, false);
      __free_pages(cur, buf.pfn, buf.order);
      return;
    case 'simple':
      __free_pages(cur, buf.pfn, buf.order);
  }
}
