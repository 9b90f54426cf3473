/**
 * The DMA API drivers call (kernel/dma/mapping.c, include/linux/dma-mapping.h): streaming
 * mappings (dma_map_page/single/sg, unmap, sync), coherent allocations (dma_alloc_coherent /
 * dma_alloc_attrs, dma_free_coherent), and the device-side access device models use to read and
 * write memory at a bus address. Each call goes to dma-iommu when the device sits behind an IOMMU
 * domain, to dma-direct otherwise, and tells DMA-API debug what happened.
 *
 * Simplified: no dma_map_ops table (only dma-direct and dma-iommu exist), no per-device coherent
 * memory (dma_alloc_from_dev_coherent), no dma_need_sync / skip-sync shortcut, no tracepoints,
 * no kmsan. dma_map_single of a vmalloc address WARNs and fails, as upstream.
 */
import { ProgramError } from '../../scheduler';
import { BUG_ON, WARN_ON_ONCE } from '../kernel/bug';
import { __GFP_COMP, __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM, __GFP_NOWARN } from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { phys_contents } from '../mm/contents';
import { mmIfPresent } from '../mm/mm';
import { PAGE_OFFSET } from '../mm/slab';
import { VMALLOC_END, VMALLOC_START } from '../mm/vmalloc';
import { DMA_ATTR_NO_WARN, DMA_MAPPING_ERROR, valid_dma_direction } from './attrs';
import {
  debug_dma_alloc_coherent, debug_dma_free_coherent, debug_dma_map_page, debug_dma_map_sg, debug_dma_sync_sg, debug_dma_sync_single,
  debug_dma_unmap_page, debug_dma_unmap_sg, type DmaDebugType,
} from './debug';
import type { device } from './device';
import {
  dma_direct_alloc, dma_direct_free, dma_direct_map_page, dma_direct_map_sg, dma_direct_sync_sg_for_cpu, dma_direct_sync_sg_for_device,
  dma_direct_sync_single_for_cpu, dma_direct_sync_single_for_device, dma_direct_unmap_page, dma_direct_unmap_sg,
} from './direct';
import {
  iommu_dma_alloc, iommu_dma_free, iommu_dma_map_page, iommu_dma_map_sg, iommu_dma_sync_sg, iommu_dma_sync_single_for_cpu,
  iommu_dma_sync_single_for_device, iommu_dma_unmap_page, iommu_dma_unmap_sg, iommu_iova_to_phys,
} from './iommu';
import type { scatterlist } from './scatterlist';
import type { DmaWarnInfo } from './swiotlb/map';

/** A coherent buffer: the CPU address, the device's bus address, and the size asked for. */
export interface DmaCoherentBuffer {
  vaddr: number;
  dma_handle: number;
  size: number;
}

function pfnToPhys(m: Machine, pfn: number): number {
  const model = mmIfPresent(m);
  return model === null ? pfn * 4096 : model.phys.pfnToPhys(pfn);
}

function checkSize(dev: device, what: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new ProgramError(`${what}(${dev.name}): size must be a non-negative integer, got ${size}`);
}

/** BUG_ON(!valid_dma_direction(dir)): false (and a fatal finding) for a bad direction. */
function checkDir(cur: Task, dir: number): boolean {
  if (valid_dma_direction(dir)) return true;
  BUG_ON(cur, true, `invalid DMA direction ${dir}`);
  return false;
}

function mapWarn(cur: Task, dev: device, subkind: string, message: string): void {
  const info: DmaWarnInfo = { subkind, dev: dev.name, message };
  cur.cpu.machine.emit('dmaDebug', cur, info);
}

/** dma_map_page_attrs with the physical address worked out: the dispatch and the debug entry. */
function* map_phys(cur: Task, dev: device, phys: number, size: number, dir: number, attrs: number, type: DmaDebugType): KernelBody<number> {
  if (!checkDir(cur, dir)) return DMA_MAPPING_ERROR;
  const addr = dev.iommu !== null
    ? yield* iommu_dma_map_page(cur, dev, phys, size, dir, attrs)
    : yield* dma_direct_map_page(cur, dev, phys, size, dir, attrs);
  if (addr !== DMA_MAPPING_ERROR) {
    debug_dma_map_page(cur, dev, addr, size, dir, type);
    dev.m.emit('alloc', cur, 'dma_map', size, 0);
  }
  return addr;
}

/** dma_map_page_attrs(dev, page, offset, size, dir, attrs): a bus address or DMA_MAPPING_ERROR. */
export function* dma_map_page_attrs(cur: Task, dev: device, pfn: number, offset: number, size: number, dir: number, attrs = 0): KernelBody<number> {
  checkSize(dev, 'dma_map_page', size);
  return yield* fn(cur, 'dma_map_page_attrs', map_phys(cur, dev, pfnToPhys(dev.m, pfn) + offset, size, dir, attrs, 'page'));
}

export function dma_map_page(cur: Task, dev: device, pfn: number, offset: number, size: number, dir: number, attrs = 0): KernelBody<number> {
  return dma_map_page_attrs(cur, dev, pfn, offset, size, dir, attrs);
}

/**
 * dma_map_single_attrs(dev, ptr, size, dir, attrs): a direct-map (kmalloc) buffer. A vmalloc
 * address cannot be mapped this way: WARN and DMA_MAPPING_ERROR.
 */
export function* dma_map_single_attrs(cur: Task, dev: device, vaddr: number, size: number, dir: number, attrs = 0): KernelBody<number> {
  checkSize(dev, 'dma_map_single', size);
  return yield* fn(cur, 'dma_map_single_attrs', (function* () {
    if (vaddr >= VMALLOC_START && vaddr < VMALLOC_END) {
      mapWarn(cur, dev, 'map_single_vmalloc', `rejecting DMA map of vmalloc memory (0x${vaddr.toString(16)})`);
      return DMA_MAPPING_ERROR;
    }
    if (vaddr < PAGE_OFFSET) throw new ProgramError(`dma_map_single(${dev.name}): 0x${vaddr.toString(16)} is not a kernel direct-map address`);
    return yield* map_phys(cur, dev, vaddr - PAGE_OFFSET, size, dir, attrs, 'single');
  })());
}

export function dma_map_single(cur: Task, dev: device, vaddr: number, size: number, dir: number, attrs = 0): KernelBody<number> {
  return dma_map_single_attrs(cur, dev, vaddr, size, dir, attrs);
}

function* unmap(cur: Task, dev: device, addr: number, size: number, dir: number, attrs: number, type: DmaDebugType): KernelBody<void> {
  if (!checkDir(cur, dir)) return;
  debug_dma_unmap_page(cur, dev, addr, size, dir, type);
  if (addr === DMA_MAPPING_ERROR) return; // nothing was mapped; dma-debug has said so
  if (dev.iommu !== null) yield* iommu_dma_unmap_page(cur, dev, addr, size, dir, attrs);
  else yield* dma_direct_unmap_page(cur, dev, addr, size, dir, attrs);
}

/** dma_unmap_page_attrs. */
export function* dma_unmap_page_attrs(cur: Task, dev: device, addr: number, size: number, dir: number, attrs = 0): KernelBody<void> {
  yield* fn(cur, 'dma_unmap_page_attrs', unmap(cur, dev, addr, size, dir, attrs, 'page'));
}

export function dma_unmap_page(cur: Task, dev: device, addr: number, size: number, dir: number, attrs = 0): KernelBody<void> {
  return dma_unmap_page_attrs(cur, dev, addr, size, dir, attrs);
}

/** dma_unmap_single_attrs. */
export function* dma_unmap_single_attrs(cur: Task, dev: device, addr: number, size: number, dir: number, attrs = 0): KernelBody<void> {
  yield* fn(cur, 'dma_unmap_single_attrs', unmap(cur, dev, addr, size, dir, attrs, 'single'));
}

export function dma_unmap_single(cur: Task, dev: device, addr: number, size: number, dir: number, attrs = 0): KernelBody<void> {
  return dma_unmap_single_attrs(cur, dev, addr, size, dir, attrs);
}

/** dma_mapping_error(dev, addr). */
export function dma_mapping_error(_dev: device, addr: number): boolean {
  return addr === DMA_MAPPING_ERROR;
}

/**
 * dma_map_sg_attrs(dev, sgl, nents, dir, attrs): the number of DMA segments (fewer than nents
 * when an IOMMU merges), or 0 when mapping failed (every segment is unmapped again then).
 */
export function* dma_map_sg_attrs(cur: Task, dev: device, sgl: scatterlist[], nents: number, dir: number, attrs = 0): KernelBody<number> {
  if (!Number.isSafeInteger(nents) || nents < 0 || nents > sgl.length) throw new ProgramError(`dma_map_sg(${dev.name}): nents ${nents} with a table of ${sgl.length}`);
  return yield* fn(cur, 'dma_map_sg_attrs', (function* () {
    if (!checkDir(cur, dir)) return 0;
    const ents = dev.iommu !== null
      ? yield* iommu_dma_map_sg(cur, dev, sgl, nents, dir, attrs)
      : yield* dma_direct_map_sg(cur, dev, sgl, nents, dir, attrs);
    if (ents > 0) {
      debug_dma_map_sg(cur, dev, sgl, nents, ents, dir);
      let bytes = 0;
      for (let i = 0; i < nents; i++) bytes += sgl[i].length;
      dev.m.emit('alloc', cur, 'dma_map_sg', bytes, 0);
      return ents;
    }
    return 0;
  })());
}

export function dma_map_sg(cur: Task, dev: device, sgl: scatterlist[], nents: number, dir: number, attrs = 0): KernelBody<number> {
  return dma_map_sg_attrs(cur, dev, sgl, nents, dir, attrs);
}

/** dma_unmap_sg_attrs: `nents` is what was passed to dma_map_sg, not what it returned. */
export function* dma_unmap_sg_attrs(cur: Task, dev: device, sgl: scatterlist[], nents: number, dir: number, attrs = 0): KernelBody<void> {
  if (!Number.isSafeInteger(nents) || nents < 0 || nents > sgl.length) throw new ProgramError(`dma_unmap_sg(${dev.name}): nents ${nents} with a table of ${sgl.length}`);
  yield* fn(cur, 'dma_unmap_sg_attrs', (function* () {
    if (!checkDir(cur, dir)) return;
    debug_dma_unmap_sg(cur, dev, sgl, nents, dir);
    if (dev.iommu !== null) yield* iommu_dma_unmap_sg(cur, dev, sgl, nents, dir, attrs);
    else yield* dma_direct_unmap_sg(cur, dev, sgl, nents, dir, attrs);
  })());
}

export function dma_unmap_sg(cur: Task, dev: device, sgl: scatterlist[], nents: number, dir: number, attrs = 0): KernelBody<void> {
  return dma_unmap_sg_attrs(cur, dev, sgl, nents, dir, attrs);
}

/** dma_sync_single_for_cpu: make the device's writes visible to the CPU (copy a bounce buffer back). */
export function* dma_sync_single_for_cpu(cur: Task, dev: device, addr: number, size: number, dir: number): KernelBody<void> {
  yield* fn(cur, 'dma_sync_single_for_cpu', (function* () {
    if (!checkDir(cur, dir)) return;
    if (dev.iommu !== null) yield* iommu_dma_sync_single_for_cpu(cur, dev, addr, size, dir);
    else yield* dma_direct_sync_single_for_cpu(cur, dev, addr, size, dir);
    debug_dma_sync_single(cur, dev, addr, size, dir, false);
  })());
}

/** dma_sync_single_for_device: hand the CPU's writes to the device (fill a bounce buffer). */
export function* dma_sync_single_for_device(cur: Task, dev: device, addr: number, size: number, dir: number): KernelBody<void> {
  yield* fn(cur, 'dma_sync_single_for_device', (function* () {
    if (!checkDir(cur, dir)) return;
    if (dev.iommu !== null) yield* iommu_dma_sync_single_for_device(cur, dev, addr, size, dir);
    else yield* dma_direct_sync_single_for_device(cur, dev, addr, size, dir);
    debug_dma_sync_single(cur, dev, addr, size, dir, true);
  })());
}

export function* dma_sync_sg_for_cpu(cur: Task, dev: device, sgl: scatterlist[], nents: number, dir: number): KernelBody<void> {
  yield* fn(cur, 'dma_sync_sg_for_cpu', (function* () {
    if (!checkDir(cur, dir)) return;
    if (dev.iommu !== null) yield* iommu_dma_sync_sg(cur, dev, sgl, nents, dir, false);
    else yield* dma_direct_sync_sg_for_cpu(cur, dev, sgl, nents, dir);
    debug_dma_sync_sg(cur, dev, sgl, nents, dir, false);
  })());
}

export function* dma_sync_sg_for_device(cur: Task, dev: device, sgl: scatterlist[], nents: number, dir: number): KernelBody<void> {
  yield* fn(cur, 'dma_sync_sg_for_device', (function* () {
    if (!checkDir(cur, dir)) return;
    if (dev.iommu !== null) yield* iommu_dma_sync_sg(cur, dev, sgl, nents, dir, true);
    else yield* dma_direct_sync_sg_for_device(cur, dev, sgl, nents, dir);
    debug_dma_sync_sg(cur, dev, sgl, nents, dir, true);
  })());
}

/**
 * dma_alloc_attrs(dev, size, &dma_handle, gfp, attrs): a zeroed coherent buffer, or null. The
 * zone bits of `gfp` are dropped: the implementation picks the zone from the coherent mask.
 */
export function* dma_alloc_attrs(cur: Task, dev: device, size: number, gfp: number, attrs = 0): KernelBody<DmaCoherentBuffer | null> {
  if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`dma_alloc_coherent(${dev.name}): size must be a positive integer, got ${size}`);
  return yield* fn(cur, 'dma_alloc_attrs', (function* () {
    WARN_ON_ONCE(cur, dev.coherent_dma_mask === 0, 'dma_alloc_attrs: no coherent_dma_mask');
    if (WARN_ON_ONCE(cur, (gfp & __GFP_COMP) !== 0, 'dma_alloc_attrs: __GFP_COMP')) return null;
    const flag = gfp & ~(__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM);
    const r = dev.iommu !== null
      ? yield* iommu_dma_alloc(cur, dev, size, flag, attrs)
      : yield* dma_direct_alloc(cur, dev, size, flag, attrs);
    if (r === null) return null;
    debug_dma_alloc_coherent(cur, dev, size, r.dma_handle, r.vaddr);
    dev.m.emit('alloc', cur, 'dma_alloc', size, gfp);
    return { vaddr: r.vaddr, dma_handle: r.dma_handle, size };
  })());
}

/** dma_alloc_coherent(dev, size, &dma_handle, gfp). */
export function dma_alloc_coherent(cur: Task, dev: device, size: number, gfp: number): KernelBody<DmaCoherentBuffer | null> {
  return dma_alloc_attrs(cur, dev, size, gfp, (gfp & __GFP_NOWARN) ? DMA_ATTR_NO_WARN : 0);
}

/**
 * dma_free_attrs(dev, size, cpu_addr, dma_handle, attrs). Must run with IRQs enabled (the
 * DMA-API documentation; upstream WARN_ON(irqs_disabled())): a non-coherent platform may vunmap.
 */
export function* dma_free_attrs(cur: Task, dev: device, size: number, vaddr: number, dma_handle: number, attrs = 0): KernelBody<void> {
  yield* fn(cur, 'dma_free_attrs', (function* () {
    if (cur.irqs_disabled) mapWarn(cur, dev, 'free_irqs_disabled', 'dma_free_attrs called with IRQs disabled (WARN_ON(irqs_disabled()))');
    if (vaddr === 0) return;
    debug_dma_free_coherent(cur, dev, size, dma_handle, vaddr);
    if (dev.iommu !== null) yield* iommu_dma_free(cur, dev, size, vaddr, dma_handle);
    else yield* dma_direct_free(cur, dev, size, vaddr, dma_handle, attrs);
  })());
}

/** dma_free_coherent(dev, size, cpu_addr, dma_handle). */
export function dma_free_coherent(cur: Task, dev: device, size: number, vaddr: number, dma_handle: number): KernelBody<void> {
  return dma_free_attrs(cur, dev, size, vaddr, dma_handle, 0);
}

// ---- the device side ----

/** The physical address behind bus address `addr` for `dev` (through its IOMMU), or -1 when unmapped. */
export function dma_to_phys(dev: device, addr: number): number {
  if (dev.iommu === null) return addr;
  const p = iommu_iova_to_phys(dev.iommu, addr);
  return p === 0 ? -1 : p;
}

/** Walk [addr, addr + len) in pieces that are physically contiguous (IOMMU pages) and call `each`. */
function walk(dev: device, addr: number, len: number, each: (phys: number, done: number, n: number) => void): void {
  if (dev.iommu === null) {
    each(addr, 0, len);
    return;
  }
  const g = dev.iommu.granule;
  let done = 0;
  while (done < len) {
    const a = addr + done;
    const n = Math.min(len - done, g - (a % g));
    const p = dma_to_phys(dev, a);
    if (p < 0) throw new ProgramError(`device ${dev.name} accessed unmapped IOVA 0x${a.toString(16)} (an IOMMU fault)`);
    each(p, done, n);
    done += n;
  }
}

/**
 * The device writes `bytes` at bus address `addr` (a device model's DMA into memory). Nothing
 * happens to memory contents unless they are tracked (dma_init with data: true).
 */
export function dma_device_write(m: Machine, dev: device, addr: number, bytes: Uint8Array): void {
  const c = phys_contents(m);
  if (c === null) return;
  walk(dev, addr, bytes.length, (phys, done, n) => c.write(phys, bytes.subarray(done, done + n)));
}

/** The device reads `len` bytes at bus address `addr` (zeros when contents are not tracked). */
export function dma_device_read(m: Machine, dev: device, addr: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const c = phys_contents(m);
  if (c === null) return out;
  walk(dev, addr, len, (phys, done, n) => out.set(c.read(phys, n), done));
  return out;
}
