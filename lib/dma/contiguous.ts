/**
 * The DMA layer's face of CMA (kernel/dma/contiguous.c, docs/kernel-facts.md §7): dma_alloc_contiguous
 * tries the default CMA area for a coherent buffer, dma_free_contiguous gives it back (or to the
 * buddy allocator when it did not come from CMA), dma_alloc_from_contiguous is the raw wrapper
 * pool.c's expansion uses.
 *
 * Simplified: no per-device (`dev->cma_area`) or per-NUMA areas; the default area is the one
 * declared as CMA_DEFAULT_NAME ("reserved", as dma_contiguous_reserve names it) on the machine's
 * memory, and a machine without it has no CMA for DMA. CONFIG_CMA_ALIGNMENT is 8 as upstream.
 */
import { gfpflags_allow_blocking, __GFP_NOWARN } from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';
import { cma_alloc, cma_area, cma_declarations, cma_release, CMA_DEFAULT_NAME, type cma } from '../mm/cma';
import { mmIfPresent } from '../mm/mm';
import { __free_pages } from '../mm/page-alloc';
import { get_order } from '../kernel/sizes';
import type { device } from './device';

/** CONFIG_CMA_ALIGNMENT: the largest alignment order a CMA allocation asks for. */
export const CONFIG_CMA_ALIGNMENT = 8;

/** dma_contiguous_default_area: the machine's default CMA area, or null when none was declared. */
export function dma_contiguous_default_area(m: Machine): cma | null {
  const model = mmIfPresent(m);
  if (model === null) return null;
  if (!cma_declarations(model.phys).some((d) => d.name === CMA_DEFAULT_NAME)) return null;
  return cma_area(m, CMA_DEFAULT_NAME);
}

/** dev_get_cma_area(dev): no per-device areas in this model, so always the default one. */
export function dev_get_cma_area(m: Machine, _dev: device | null): cma | null {
  return dma_contiguous_default_area(m);
}

/** cma_alloc_aligned: `size` bytes (page aligned by the caller), aligned to min(order, CMA_ALIGNMENT). */
function* cma_alloc_aligned(cur: Task, c: cma, size: number, gfp: number): KernelBody<number> {
  const ps = mmIfPresent(cur.cpu.machine)!.phys.pageSize;
  const align = Math.min(get_order(size, ps), CONFIG_CMA_ALIGNMENT);
  return yield* cma_alloc(cur, c, Math.ceil(size / ps), align, (gfp & __GFP_NOWARN) !== 0);
}

/**
 * dma_alloc_contiguous(dev, size, gfp): the first pfn of `size` bytes from CMA, or -1. Nothing
 * at once when the caller cannot sleep (cma_alloc sleeps), and nothing for a single page (CMA
 * is kept for what the buddy allocator finds hard).
 */
export function* dma_alloc_contiguous(cur: Task, dev: device, size: number, gfp: number): KernelBody<number> {
  // CMA can be used only where sleeping is permitted.
  if (!gfpflags_allow_blocking(gfp)) return -1;
  const model = mmIfPresent(cur.cpu.machine);
  if (model === null || size <= model.phys.pageSize) return -1;
  const c = dev_get_cma_area(cur.cpu.machine, dev);
  if (c === null) return -1;
  return yield* cma_alloc_aligned(cur, c, size, gfp);
}

/**
 * dma_free_contiguous(dev, pfn, size): back to the CMA area when the pages are in it, otherwise
 * to the buddy allocator at get_order(size).
 */
export function* dma_free_contiguous(cur: Task, dev: device, pfn: number, size: number): KernelBody<void> {
  const m = cur.cpu.machine;
  const ps = mmIfPresent(m)!.phys.pageSize;
  const count = Math.ceil(size / ps);
  const c = dev_get_cma_area(m, dev);
  if (c !== null && (yield* cma_release(cur, c, pfn, count))) return;
  __free_pages(cur, pfn, get_order(size, ps));
}

/**
 * dma_alloc_from_contiguous(dev, count, align, no_warn): cma_alloc on the device's area with no
 * gfp check: the caller must be able to sleep (pool.c calls it from its worker). -1 without CMA.
 */
export function* dma_alloc_from_contiguous(cur: Task, dev: device | null, count: number, align: number, no_warn: boolean): KernelBody<number> {
  const c = dev_get_cma_area(cur.cpu.machine, dev);
  if (c === null) return -1;
  return yield* cma_alloc(cur, c, count, Math.min(align, CONFIG_CMA_ALIGNMENT), no_warn);
}

/** dma_release_from_contiguous: false when the pages are not CMA pages. */
export function* dma_release_from_contiguous(cur: Task, dev: device | null, pfn: number, count: number): KernelBody<boolean> {
  const c = dev_get_cma_area(cur.cpu.machine, dev);
  if (c === null) return false;
  return yield* cma_release(cur, c, pfn, count);
}
