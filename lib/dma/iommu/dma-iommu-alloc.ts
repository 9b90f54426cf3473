/**
 * dma-iommu coherent allocation (drivers/iommu/dma-iommu.c, v6.12; docs/kernel-facts.md §8.2).
 *
 * iommu_dma_alloc: the remap path (blocking, not FORCE_CONTIGUOUS) builds the buffer from
 * chunks chosen as __iommu_dma_alloc_pages does (orders from pgsize_bitmap, capped at
 * MAX_PAGE_ORDER; ALLOC_SINGLE_PAGES keeps the smallest; __GFP_NORETRY while a smaller order
 * remains; an order that fails is never tried again; total failure frees everything), maps
 * them at one IOVA and vmaps them; atomic non-coherent allocations come from the atomic pools;
 * the rest is one contiguous alloc_pages block.
 */
import { ProgramError } from '../../../scheduler';
import { __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM, __GFP_NORETRY, __GFP_NOWARN, __GFP_ZERO, gfpflags_allow_blocking } from '../../kernel/gfp';
import type { KernelBody } from '../../kernel/machine';
import { get_order } from '../../kernel/sizes';
import { fn } from '../../kernel/stack';
import type { Task } from '../../kernel/task';
import { phys_contents } from '../../mm/contents';
import { mm } from '../../mm/mm';
import { __free_pages, alloc_pages, page_to_phys } from '../../mm/page-alloc';
import { page_address } from '../../mm/slab';
import { vmap, vunmap } from '../../mm/vmalloc';
import { DMA_ATTR_ALLOC_SINGLE_PAGES, DMA_ATTR_FORCE_CONTIGUOUS, DMA_BIDIRECTIONAL, DMA_MAPPING_ERROR } from '../attrs';
import { dma_alloc_contiguous, dma_free_contiguous } from '../contiguous';
import type { device } from '../device';
import { ZERO_BYTES_PER_NS } from '../costs';
import { dma_alloc_from_pool, dma_free_from_pool } from '../pool';
import { dma_state } from '../state';
import { iommu_map, iommu_unmap, M_IOMMU_ALLOC_FAIL_ORDER, M_IOMMU_ALLOC_FAILURES, M_IOMMU_ALLOC_ORDER, M_IOMMU_POOL_ALLOCS } from './iommu';
import { __iommu_dma_map, __iommu_dma_unmap, dma_info_to_prot, domainOf, iommu_dma_alloc_iova, iommu_dma_free_iova } from './dma-iommu';

/** How a dma-iommu coherent buffer was built, so iommu_dma_free can undo it. */
interface IommuAlloc {
  kind: 'remap' | 'pages' | 'pool';
  /** Buddy chunks [pfn, order] (remap, pages). */
  chunks: [number, number][];
  /** Pool buffers: the physical address; pool and contiguous buffers: the size allocated. */
  phys: number;
  poolSize: number;
}

const allocations = new WeakMap<device, Map<number, IommuAlloc>>();

function allocsOf(dev: device): Map<number, IommuAlloc> {
  let a = allocations.get(dev);
  if (a === undefined) {
    a = new Map();
    allocations.set(dev, a);
  }
  return a;
}

/**
 * dma_common_pages_remap for an IOMMU allocation already mapped at `iova`: vmap the chunks' pages
 * (sleeps for page tables); on failure undo the IOMMU mapping and free the pages.
 */
export function* remap_chunks(cur: Task, dev: device, chunks: [number, number][], iova: number, len: number, size: number): KernelBody<{ vaddr: number; dma_handle: number; size: number } | null> {
  const pfns: number[] = [];
  for (const [pfn, order] of chunks) for (let k = 0; k < 2 ** order; k++) pfns.push(pfn + k);
  const vaddr = yield* vmap(cur, pfns, pfns.length);
  if (vaddr === 0) {
    yield* __iommu_dma_unmap(cur, dev, iova, len);
    free_chunks(cur, chunks);
    cur.thread.sim.count(M_IOMMU_ALLOC_FAILURES, 1);
    return null;
  }
  allocsOf(dev).set(vaddr, { kind: 'remap', chunks, phys: 0, poolSize: 0 });
  return { vaddr, dma_handle: iova, size };
}

export function free_chunks(cur: Task, chunks: [number, number][]): void {
  for (const [pfn, order] of chunks) __free_pages(cur, pfn, order);
}

/**
 * __iommu_dma_alloc_pages: `count` pages as chunks of the orders in `orderMask`, largest that
 * fits first. Every order but the smallest remaining is tried with __GFP_NORETRY; an order that
 * fails is dropped for the rest of the allocation. Null (everything freed) on failure.
 */
export function* __iommu_dma_alloc_pages(cur: Task, dev: device, count: number, orderMask: number, gfp: number): KernelBody<[number, number][] | null> {
  return yield* fn(cur, '__iommu_dma_alloc_pages', (function* () {
    const sim = cur.thread.sim;
    const maxOrder = mm(dev.m).phys.maxOrder;
    let mask = orderMask % 2 ** (maxOrder + 1);
    if (mask === 0) return null;
    const flags = gfp | __GFP_NOWARN | __GFP_HIGHMEM;
    const chunks: [number, number][] = [];
    let left = count;
    while (left > 0) {
      // Orders above the pages still needed are dropped for good.
      let fls = 0;
      while (2 ** (fls + 1) <= left) fls++;
      mask %= 2 ** (fls + 1);
      let got = -1;
      let gotOrder = 0;
      while (mask !== 0) {
        let order = 0;
        while (2 ** (order + 1) <= mask) order++;
        const size = 2 ** order;
        const f = mask > size ? flags | __GFP_NORETRY : flags;
        const pfn = yield* alloc_pages(cur, f, order);
        if (pfn >= 0) {
          got = pfn;
          gotOrder = order;
          break;
        }
        sim.count(M_IOMMU_ALLOC_FAIL_ORDER[order], 1);
        mask -= size;
      }
      if (got < 0) {
        free_chunks(cur, chunks);
        return null;
      }
      sim.count(M_IOMMU_ALLOC_ORDER[gotOrder], 1);
      chunks.push([got, gotOrder]);
      left -= 2 ** gotOrder;
    }
    return chunks;
  })());
}

export interface IommuDmaBuffer {
  vaddr: number;
  dma_handle: number;
  size: number;
}

/**
 * iommu_dma_alloc: a zeroed coherent buffer mapped through the device's domain, or null.
 * Blocking callers without FORCE_CONTIGUOUS get the remap path; atomic callers of a
 * non-coherent device the atomic pool (DMA_DIRECT_REMAP); others one contiguous block.
 */
export function* iommu_dma_alloc(cur: Task, dev: device, size: number, gfp: number, attrs = 0): KernelBody<IommuDmaBuffer | null> {
  return yield* fn(cur, 'iommu_dma_alloc', (function* () {
    if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`iommu_dma_alloc: size must be a positive integer, got ${size}`);
    const domain = domainOf(dev);
    const m = dev.m;
    const model = mm(m);
    const pageSize = model.phys.pageSize;
    const sim = cur.thread.sim;
    const zgfp = gfp | __GFP_ZERO;
    const prot = dma_info_to_prot(DMA_BIDIRECTIONAL, dev.dma_coherent, attrs);
    const blocking = gfpflags_allow_blocking(zgfp);

    if (blocking && !(attrs & DMA_ATTR_FORCE_CONTIGUOUS)) {
      // iommu_dma_alloc_remap / __iommu_dma_alloc_noncontiguous.
      let sizes = domain.pgsize_bitmap;
      let minSize = domain.granule;
      let sz = size;
      if (minSize < pageSize) {
        minSize = pageSize;
        sizes = addBit(sizes, pageSize);
      } else {
        sz = Math.ceil(sz / minSize) * minSize;
      }
      if (attrs & DMA_ATTR_ALLOC_SINGLE_PAGES) sizes = minSize;
      const count = Math.ceil(sz / pageSize);
      const orderMask = Math.floor(sizes / pageSize);
      const chunks = yield* __iommu_dma_alloc_pages(cur, dev, count, orderMask, zgfp);
      if (chunks === null) {
        sim.count(M_IOMMU_ALLOC_FAILURES, 1);
        return null;
      }
      // __GFP_ZERO: clear every page.
      for (const [pfn, order] of chunks) yield* zeroPages(cur, page_to_phys(m, pfn), 2 ** order * pageSize);
      const len = domain.iova_align(sz);
      const iova = yield* iommu_dma_alloc_iova(cur, domain, len, dev.coherent_dma_mask, dev);
      if (iova === 0) {
        free_chunks(cur, chunks);
        sim.count(M_IOMMU_ALLOC_FAILURES, 1);
        return null;
      }
      // iommu_map_sg over the chunks, in order.
      let at = iova;
      for (const [pfn, order] of chunks) {
        const bytes = 2 ** order * pageSize;
        if ((yield* iommu_map(cur, domain, at, page_to_phys(m, pfn), bytes, prot)) !== 0) {
          if (at > iova) yield* iommu_unmap(cur, domain, iova, at - iova);
          iommu_dma_free_iova(cur, domain, iova, len);
          free_chunks(cur, chunks);
          sim.count(M_IOMMU_ALLOC_FAILURES, 1);
          return null;
        }
        at += bytes;
      }
      return yield* remap_chunks(cur, dev, chunks, iova, len, size);
    }

    const allocSize = Math.ceil(size / pageSize) * pageSize;
    let rec: IommuAlloc;
    let phys: number;
    let vaddr: number;
    if (dma_state(m).remap && !blocking && !dev.dma_coherent) {
      const got = yield* dma_alloc_from_pool(cur, dev, allocSize, zgfp);
      if (got === null) {
        sim.count(M_IOMMU_ALLOC_FAILURES, 1);
        return null;
      }
      sim.count(M_IOMMU_POOL_ALLOCS, 1);
      phys = got.phys;
      vaddr = got.vaddr;
      rec = { kind: 'pool', chunks: [], phys, poolSize: allocSize };
    } else {
      // iommu_dma_alloc_pages: CMA first, then one buddy block (no zone restriction: the IOMMU
      // reaches all memory).
      const order = get_order(allocSize, pageSize);
      let pfn = yield* dma_alloc_contiguous(cur, dev, allocSize, zgfp);
      const fromCma = pfn >= 0;
      if (!fromCma) pfn = yield* alloc_pages(cur, zgfp & ~(__GFP_DMA | __GFP_DMA32), order);
      if (pfn < 0) {
        sim.count(M_IOMMU_ALLOC_FAILURES, 1);
        return null;
      }
      if (!fromCma) sim.count(M_IOMMU_ALLOC_ORDER[order], 1);
      phys = page_to_phys(m, pfn);
      vaddr = page_address(m, pfn);
      yield* zeroPages(cur, phys, allocSize);
      rec = { kind: 'pages', chunks: [[pfn, order]], phys, poolSize: allocSize };
    }
    const handle = yield* __iommu_dma_map(cur, dev, phys, size, prot, dev.coherent_dma_mask);
    if (handle === DMA_MAPPING_ERROR) {
      yield* release(cur, dev, rec);
      sim.count(M_IOMMU_ALLOC_FAILURES, 1);
      return null;
    }
    allocsOf(dev).set(vaddr, rec);
    return { vaddr, dma_handle: handle, size };
  })());
}

/** __GFP_ZERO's clearing: its cost, and the bytes when contents are tracked. */
function* zeroPages(cur: Task, phys: number, bytes: number): KernelBody<void> {
  yield cur.thread.work(Math.ceil(bytes / ZERO_BYTES_PER_NS));
  phys_contents(cur.cpu.machine)?.fill(phys, bytes, 0);
}

function addBit(bitmap: number, bit: number): number {
  return Math.floor(bitmap / bit) % 2 === 1 ? bitmap : bitmap + bit;
}

function* release(cur: Task, dev: device, rec: IommuAlloc): KernelBody<void> {
  if (rec.kind === 'pool') yield* dma_free_from_pool(cur, dev, rec.phys, rec.poolSize);
  else if (rec.kind === 'pages') yield* dma_free_contiguous(cur, dev, rec.chunks[0][0], rec.poolSize);
  else free_chunks(cur, rec.chunks);
}

/** iommu_dma_free: unmap, then give back what iommu_dma_alloc took (vunmap for the remap path). */
export function* iommu_dma_free(cur: Task, dev: device, size: number, vaddr: number, handle: number): KernelBody<void> {
  yield* fn(cur, 'iommu_dma_free', (function* () {
    const domain = domainOf(dev);
    const rec = allocsOf(dev).get(vaddr);
    if (rec === undefined) throw new ProgramError(`iommu_dma_free(${dev.name}): 0x${vaddr.toString(16)} was not allocated by iommu_dma_alloc`);
    let sz = size;
    if (rec.kind === 'remap' && domain.granule > mm(dev.m).phys.pageSize) sz = Math.ceil(sz / domain.granule) * domain.granule;
    yield* __iommu_dma_unmap(cur, dev, handle, sz);
    allocsOf(dev).delete(vaddr);
    if (rec.kind === 'remap') yield* vunmap(cur, vaddr);
    yield* release(cur, dev, rec);
  })());
}

/** The pages behind a dma-iommu buffer (tests, device models). */
export function iommu_dma_buffer_chunks(dev: device, vaddr: number): readonly [number, number][] {
  return allocsOf(dev).get(vaddr)?.chunks ?? [];
}


