/**
 * dma-iommu streaming mappings (drivers/iommu/dma-iommu.c, v6.12; docs/kernel-facts.md §8.2).
 *
 * iommu_dma_map_page maps the granule-aligned span around the buffer; for an untrusted device a
 * buffer not aligned to the granule is first bounced through swiotlb with alloc_align_mask =
 * granule - 1 and the padding zeroed, so the device sees nothing else of the pages it is given.
 * Scatterlists take one IOVA range and adjacent segments merge where one ends and the next
 * starts on a granule boundary (__finalise_sg). IOVAs come from iova.ts; coherent allocation is
 * dma-iommu-alloc.ts.
 *
 * Simplified: strict invalidation only; PCI SAC-first IOVA allocation is not modelled.
 */
import { ProgramError } from '../../../scheduler';
import type { KernelBody } from '../../kernel/machine';
import { fn } from '../../kernel/stack';
import type { Task } from '../../kernel/task';
import { phys_contents } from '../../mm/contents';
import { page_to_phys } from '../../mm/page-alloc';
import { DMA_ATTR_PRIVILEGED, DMA_ATTR_SKIP_CPU_SYNC, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_MAPPING_ERROR, DMA_TO_DEVICE } from '../attrs';
import type { device } from '../device';
import { arch_sync_cost, ZERO_BYTES_PER_NS } from '../costs';
import { is_swiotlb_active, swiotlb_find_pool, swiotlb_sync_single_for_cpu, swiotlb_sync_single_for_device, swiotlb_tbl_map_single, swiotlb_tbl_unmap_single, type DmaWarnInfo } from '../swiotlb/map';
import { IOMMU_CACHE, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE, iommu_iova_to_phys, iommu_map, iommu_unmap, M_IOMMU_BOUNCES, type iommu_domain } from './iommu';
import { alloc_iova_fast, free_iova_fast } from './iova';

export function domainOf(dev: device): iommu_domain {
  const d = dev.iommu;
  if (d === null) throw new ProgramError(`device ${dev.name} is not behind an IOMMU`);
  return d;
}

export function warn(cur: Task, dev: device, subkind: string, message: string): void {
  const info: DmaWarnInfo = { subkind, dev: dev.name, message };
  cur.cpu.machine.emit('dmaDebug', cur, info);
}

/** dma_info_to_prot. */
export function dma_info_to_prot(dir: number, coherent: boolean, attrs: number): number {
  let prot = coherent ? IOMMU_CACHE : 0;
  if (attrs & DMA_ATTR_PRIVILEGED) prot |= IOMMU_PRIV;
  if (dir === DMA_BIDIRECTIONAL) prot |= IOMMU_READ | IOMMU_WRITE;
  else if (dir === DMA_TO_DEVICE) prot |= IOMMU_READ;
  else if (dir === DMA_FROM_DEVICE) prot |= IOMMU_WRITE;
  return prot;
}

/** arch_sync_dma_for_device / _for_cpu: cache maintenance for a non-coherent device (dma-direct's cost). */
export function* arch_sync(cur: Task, size: number): KernelBody<void> {
  if (size > 0) yield cur.thread.work(arch_sync_cost(size));
}

/**
 * iommu_dma_alloc_iova: `size` bytes (granule multiple) of IOVA below the device's limit and
 * the aperture. 0 on failure (IOVA 0 is never handed out).
 */
export function* iommu_dma_alloc_iova(cur: Task, domain: iommu_domain, size: number, dmaLimit: number, dev: device): KernelBody<number> {
  const shift = domain.granule;
  let limit = dev.bus_dma_limit === 0 ? dmaLimit : Math.min(dmaLimit, dev.bus_dma_limit);
  limit = Math.min(limit, domain.aperture_end);
  const pfn = yield* alloc_iova_fast(cur, domain.iovad, size / shift, Math.floor(limit / shift));
  return pfn < 0 ? 0 : pfn * shift;
}

/** iommu_dma_free_iova: small ranges go back to this CPU's rcache, others to the tree. */
export function iommu_dma_free_iova(cur: Task, domain: iommu_domain, iova: number, size: number): void {
  free_iova_fast(cur, domain.iovad, iova / domain.granule, size / domain.granule);
}

/** __iommu_dma_map: map the granule-aligned span around [phys, phys + size); the bus address, or DMA_MAPPING_ERROR. */
export function* __iommu_dma_map(cur: Task, dev: device, phys: number, size: number, prot: number, dmaMask: number): KernelBody<number> {
  const domain = domainOf(dev);
  const off = domain.iova_offset(phys);
  const len = domain.iova_align(size + off);
  const iova = yield* iommu_dma_alloc_iova(cur, domain, len, dmaMask, dev);
  if (iova === 0) return DMA_MAPPING_ERROR;
  if ((yield* iommu_map(cur, domain, iova, phys - off, len, prot)) !== 0) {
    iommu_dma_free_iova(cur, domain, iova, len);
    return DMA_MAPPING_ERROR;
  }
  return iova + off;
}

/** __iommu_dma_unmap: unmap the granule-aligned span and give the IOVA back after the IOTLB sync. */
export function* __iommu_dma_unmap(cur: Task, dev: device, addr: number, size: number): KernelBody<void> {
  const domain = domainOf(dev);
  const off = domain.iova_offset(addr);
  const start = addr - off;
  const len = domain.iova_align(size + off);
  const unmapped = yield* iommu_unmap(cur, domain, start, len);
  if (unmapped !== len) warn(cur, dev, 'iommu_unmap_size', `WARN_ON(unmapped != size): unmapped 0x${unmapped.toString(16)} of 0x${len.toString(16)} at iova 0x${start.toString(16)}`);
  iommu_dma_free_iova(cur, domain, start, len);
}

/** dev_use_swiotlb: streaming mappings of this device may need bouncing (untrusted devices). */
function dev_use_swiotlb(dev: device): boolean {
  return dev.untrusted;
}

/**
 * iommu_dma_map_page (by physical address): the bus address, or DMA_MAPPING_ERROR. An
 * untrusted device's buffer that does not start and end on the granule is bounced first.
 */
export function* iommu_dma_map_page(cur: Task, dev: device, phys: number, size: number, dir: number, attrs = 0): KernelBody<number> {
  return yield* fn(cur, 'iommu_dma_map_page', (function* () {
    const domain = domainOf(dev);
    const coherent = dev.dma_coherent;
    const prot = dma_info_to_prot(dir, coherent, attrs);
    let p = phys;
    let bounced = false;
    if (dev_use_swiotlb(dev) && (domain.iova_offset(phys) !== 0 || domain.iova_offset(size) !== 0)) {
      if (!is_swiotlb_active(dev)) {
        const key = `iommu_bounce_inactive:${dev.name}`;
        if (cur.cpu.machine.log.firstTime(key)) cur.cpu.machine.log.printk(cur.cpu.id, `${dev.name}: DMA bounce buffers are inactive, unable to map unaligned transaction.`);
        return DMA_MAPPING_ERROR;
      }
      const alignedSize = domain.iova_align(size);
      p = yield* swiotlb_tbl_map_single(cur, dev, phys, size, domain.granule - 1, dir, attrs);
      if (p === DMA_MAPPING_ERROR) return DMA_MAPPING_ERROR;
      bounced = true;
      cur.thread.sim.count(M_IOMMU_BOUNCES, 1);
      // Zero the rest of the granule span: the bounce slot's old contents must not reach the
      // device. The data itself was already copied in unless the CPU sync is skipped or the
      // device writes it (then the whole span is cleared).
      let padStart = p;
      let padSize = alignedSize;
      if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && (dir === DMA_TO_DEVICE || dir === DMA_BIDIRECTIONAL)) {
        padStart += size;
        padSize -= size;
      }
      const c = phys_contents(cur.cpu.machine);
      if (c !== null && padSize > 0) c.fill(padStart, padSize, 0);
      if (padSize > 0) yield cur.thread.work(Math.ceil(padSize / ZERO_BYTES_PER_NS));
    }
    if (!coherent && !(attrs & DMA_ATTR_SKIP_CPU_SYNC)) yield* arch_sync(cur, size);
    const iova = yield* __iommu_dma_map(cur, dev, p, size, prot, dev.dma_mask);
    if (iova === DMA_MAPPING_ERROR && bounced) yield* swiotlb_tbl_unmap_single(cur, dev, p, size, dir, attrs);
    return iova;
  })());
}

/** iommu_dma_unmap_page: sync for the CPU, unmap, and release a bounce buffer if there is one. */
export function* iommu_dma_unmap_page(cur: Task, dev: device, handle: number, size: number, dir: number, attrs = 0): KernelBody<void> {
  yield* fn(cur, 'iommu_dma_unmap_page', (function* () {
    const domain = domainOf(dev);
    const phys = iommu_iova_to_phys(domain, handle);
    if (phys === 0) {
      warn(cur, dev, 'iommu_unmap_unmapped', `WARN_ON(!phys): unmapping iova 0x${handle.toString(16)} that has no translation`);
      return;
    }
    if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && !dev.dma_coherent) yield* arch_sync(cur, size);
    yield* __iommu_dma_unmap(cur, dev, handle, size);
    if (dev_use_swiotlb(dev)) {
      const ref = yield* swiotlb_find_pool(cur, dev, phys);
      if (ref !== null) yield* swiotlb_tbl_unmap_single(cur, dev, phys, size, dir, attrs, ref);
    }
  })());
}

/** iommu_dma_sync_single_for_cpu. */
export function* iommu_dma_sync_single_for_cpu(cur: Task, dev: device, handle: number, size: number, dir: number): KernelBody<void> {
  if (dev.dma_coherent && !dev_use_swiotlb(dev)) return;
  const phys = iommu_iova_to_phys(domainOf(dev), handle);
  if (!dev.dma_coherent) yield* arch_sync(cur, size);
  if (phys !== 0 && dev_use_swiotlb(dev)) {
    const ref = yield* swiotlb_find_pool(cur, dev, phys);
    if (ref !== null) yield* swiotlb_sync_single_for_cpu(cur, dev, phys, size, dir, ref);
  }
}

/** iommu_dma_sync_single_for_device. */
export function* iommu_dma_sync_single_for_device(cur: Task, dev: device, handle: number, size: number, dir: number): KernelBody<void> {
  if (dev.dma_coherent && !dev_use_swiotlb(dev)) return;
  const phys = iommu_iova_to_phys(domainOf(dev), handle);
  if (phys !== 0 && dev_use_swiotlb(dev)) {
    const ref = yield* swiotlb_find_pool(cur, dev, phys);
    if (ref !== null) yield* swiotlb_sync_single_for_device(cur, dev, phys, size, dir, ref);
  }
  if (!dev.dma_coherent) yield* arch_sync(cur, size);
}

/** The scatterlist fields dma-iommu uses (lib/dma/scatterlist.ts has the full struct). */
export interface IommuSg {
  /** The page frame (sg_page). */
  page_link: number;
  offset: number;
  length: number;
  dma_address: number;
  dma_length: number;
}

/** sg_dma_mark_swiotlb: lists mapped one segment at a time through iommu_dma_map_page. */
const swiotlbSgls = new WeakSet<object>();

function sg_phys(dev: device, s: IommuSg): number {
  return page_to_phys(dev.m, s.page_link) + s.offset;
}

/**
 * iommu_dma_map_sg: one IOVA range for the whole list, each segment's span granule-aligned;
 * segments merge where the previous one ends on a granule and the next starts on one (within
 * max_seg_size, not across the segment boundary). Returns the DMA segment count, 0 on failure.
 * An untrusted device maps each segment on its own (bouncing where needed), without merging.
 */
export function* iommu_dma_map_sg(cur: Task, dev: device, sgl: IommuSg[], nents: number, dir: number, attrs = 0): KernelBody<number> {
  return yield* fn(cur, 'iommu_dma_map_sg', (function* () {
    if (!Number.isSafeInteger(nents) || nents <= 0 || nents > sgl.length) throw new ProgramError(`iommu_dma_map_sg: nents ${nents} with ${sgl.length} entries`);
    const domain = domainOf(dev);
    if (dev_use_swiotlb(dev)) {
      for (let i = 0; i < nents; i++) {
        const s = sgl[i];
        const a = yield* iommu_dma_map_page(cur, dev, sg_phys(dev, s), s.length, dir, attrs);
        if (a === DMA_MAPPING_ERROR) {
          for (let j = 0; j < i; j++) yield* iommu_dma_unmap_page(cur, dev, sgl[j].dma_address, sgl[j].dma_length, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
          return 0;
        }
        s.dma_address = a;
        s.dma_length = s.length;
      }
      swiotlbSgls.add(sgl);
      return nents;
    }
    swiotlbSgls.delete(sgl);
    if (!dev.dma_coherent && !(attrs & DMA_ATTR_SKIP_CPU_SYNC)) for (let i = 0; i < nents; i++) yield* arch_sync(cur, sgl[i].length);
    const prot = dma_info_to_prot(dir, dev.dma_coherent, attrs);
    const mask = dev.seg_boundary_mask;
    // Each segment's aligned span, padded so no span crosses a segment boundary.
    const offs: number[] = [];
    const spans: number[] = [];
    let iovaLen = 0;
    for (let i = 0; i < nents; i++) {
      const s = sgl[i];
      const off = domain.iova_offset(s.offset);
      const span = domain.iova_align(s.length + off);
      const padLen = (mask - (iovaLen % (mask + 1)) + 1) % (mask + 1);
      if (i > 0 && padLen !== 0 && padLen < span - 1) {
        spans[i - 1] += padLen;
        iovaLen += padLen;
      }
      offs.push(off);
      spans.push(span);
      iovaLen += span;
    }
    const iova = yield* iommu_dma_alloc_iova(cur, domain, iovaLen, dev.dma_mask, dev);
    if (iova === 0) return 0;
    // iommu_map_sg: each segment's pages at its place in the range.
    let at = iova;
    for (let i = 0; i < nents; i++) {
      const s = sgl[i];
      const start = sg_phys(dev, s) - offs[i];
      const len = domain.iova_align(s.length + offs[i]);
      if ((yield* iommu_map(cur, domain, at, start, len, prot)) !== 0) {
        if (at > iova) yield* iommu_unmap(cur, domain, iova, at - iova);
        iommu_dma_free_iova(cur, domain, iova, iovaLen);
        return 0;
      }
      at += spans[i];
    }
    return __finalise_sg(dev, sgl, nents, iova, offs, spans);
  })());
}

/** __finalise_sg: write the DMA segments, merging across granule-aligned joins. */
function __finalise_sg(dev: device, sgl: IommuSg[], nents: number, iova: number, offs: number[], spans: number[]): number {
  const segMask = dev.seg_boundary_mask;
  const maxLen = dev.max_seg_size;
  let out = -1;
  let curLen = 0;
  let addr = iova;
  for (let i = 0; i < nents; i++) {
    const s = sgl[i];
    s.dma_address = DMA_MAPPING_ERROR;
    s.dma_length = 0;
  }
  for (let i = 0; i < nents; i++) {
    const s = sgl[i];
    const off = offs[i];
    const len = s.length;
    if (curLen > 0 && off === 0 && addr % (segMask + 1) !== 0 && maxLen - curLen >= len) {
      curLen += len;
    } else {
      out++;
      curLen = len;
      sgl[out].dma_address = addr + off;
    }
    sgl[out].dma_length = curLen;
    addr += spans[i];
    // A segment that does not fill its span ends the run: the next cannot follow on directly.
    if (len + off < spans[i]) curLen = 0;
  }
  return out + 1;
}

/** iommu_dma_unmap_sg: sync, then unmap the list's one IOVA range (or each bounced segment). */
export function* iommu_dma_unmap_sg(cur: Task, dev: device, sgl: IommuSg[], nents: number, dir: number, attrs = 0): KernelBody<void> {
  yield* fn(cur, 'iommu_dma_unmap_sg', (function* () {
    if (swiotlbSgls.has(sgl)) {
      for (let i = 0; i < nents; i++) yield* iommu_dma_unmap_page(cur, dev, sgl[i].dma_address, sgl[i].dma_length, dir, attrs);
      swiotlbSgls.delete(sgl);
      return;
    }
    if (!dev.dma_coherent && !(attrs & DMA_ATTR_SKIP_CPU_SYNC)) for (let i = 0; i < nents; i++) yield* arch_sync(cur, sgl[i].length);
    let start = -1;
    let end = -1;
    for (let i = 0; i < nents; i++) {
      const s = sgl[i];
      if (s.dma_length === 0) break;
      if (start < 0) start = s.dma_address;
      end = s.dma_address + s.dma_length;
    }
    if (start < 0) return;
    yield* __iommu_dma_unmap(cur, dev, start, end - start);
  })());
}

/** iommu_dma_sync_sg_for_cpu / _for_device. */
export function* iommu_dma_sync_sg(cur: Task, dev: device, sgl: IommuSg[], nents: number, dir: number, forDevice: boolean): KernelBody<void> {
  if (swiotlbSgls.has(sgl)) {
    for (let i = 0; i < nents; i++) {
      if (forDevice) yield* iommu_dma_sync_single_for_device(cur, dev, sgl[i].dma_address, sgl[i].length, dir);
      else yield* iommu_dma_sync_single_for_cpu(cur, dev, sgl[i].dma_address, sgl[i].length, dir);
    }
    return;
  }
  if (!dev.dma_coherent) for (let i = 0; i < nents; i++) yield* arch_sync(cur, sgl[i].length);
}

