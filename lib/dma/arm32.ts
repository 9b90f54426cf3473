/**
 * ARM32's coherent allocator (arch/arm/mm/dma-mapping.c; docs/kernel-facts.md §7), used instead of
 * dma-direct when DmaOptions.arm32 is set: v3.6+'s choice in __dma_alloc (CMA, the simple buddy
 * allocator, a vmalloc remap, the atomic pool). Two historical designs the threads weigh are in
 * lib/dma/historical/arm32-consistent.ts (the pre-3.6 consistent region) and the hypothetical
 * in-place section remap of Russell King's 2014 mail (same file); this file dispatches to them.
 */
import { ProgramError } from '../../scheduler';
import { __GFP_DMA, __GFP_NOWARN, __GFP_ZERO, GFP_KERNEL, gfpflags_allow_blocking } from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import { get_order } from '../kernel/sizes';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { mm } from '../mm/mm';
import { alloc_pages, __free_pages } from '../mm/page-alloc';
import { kfree, kmalloc, page_address } from '../mm/slab';
import { flush_tlb_kernel_range, get_vm_area_caller, map_vm_area, vunmap } from '../mm/vmalloc';
import { DMA_BIT_MASK } from './attrs';
import { dev_get_cma_area, dma_alloc_from_contiguous, dma_release_from_contiguous } from './contiguous';
import type { device } from './device';
import { arch_sync_dma, dma_coherent_limit, dma_page_size, fail, page_align, zeroBuffer, type DmaCoherent } from './direct';
import { change_section_attributes, consistent_remap, consistent_unmap, consistentRegions } from './historical/arm32-consistent';
import { dma_alloc_from_pool, dma_free_from_pool } from './pool';
import { dma_state, type Arm32Allocator } from './state';

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
