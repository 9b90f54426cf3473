/**
 * An IOMMU domain and dma-iommu (drivers/iommu/iommu.c, iova.c, dma-iommu.c; KERNEL-FACTS 8.2).
 *
 * - iommu_domain: the page sizes the hardware maps (pgsize_bitmap; the smallest is the granule),
 *   an aperture, the page table (iova page -> phys, prot), and the IOVA allocator:
 *   alloc_iova_fast's top-down search below the limit, size-aligned to the size's power of two,
 *   with per-CPU caches of freed small ranges (the rcache) reused first.
 * - iommu_map / iommu_unmap / iommu_iova_to_phys: the core API; iommu_map refuses an iova,
 *   paddr or size not aligned to the smallest page size ("iommu: unaligned: ...", -EINVAL).
 * - dma-iommu streaming: iommu_dma_map_page maps the granule-aligned span around the buffer;
 *   for an untrusted device a buffer not aligned to the granule is first bounced through swiotlb
 *   with alloc_align_mask = granule - 1 and the padding zeroed, so the device sees nothing else
 *   of the pages it is given. Scatterlists take one IOVA range and adjacent segments merge
 *   where one ends and the next starts on a granule boundary (__finalise_sg).
 * - iommu_dma_alloc: the remap path (blocking, not FORCE_CONTIGUOUS) builds the buffer from
 *   chunks chosen as __iommu_dma_alloc_pages does (orders from pgsize_bitmap, capped at
 *   MAX_PAGE_ORDER; ALLOC_SINGLE_PAGES keeps the smallest; __GFP_NORETRY while a smaller order
 *   remains; an order that fails is never tried again; total failure frees everything), maps
 *   them at one IOVA and vmaps them; atomic non-coherent allocations come from the atomic pools;
 *   the rest is one contiguous alloc_pages block.
 *
 * Simplified: strict invalidation only (no flush queue: IOVAs are freed after the IOTLB sync);
 * no page-table page allocation; iova_rbtree_lock is a cost, not a contended lock; the rcache is
 * one bounded stack per CPU and size instead of magazines and a depot; iommu_map over an already
 * mapped page fails with -EEXIST without the io-pgtable WARN; a partial unmap of a large page
 * removes the whole page; PCI SAC-first IOVA allocation is
 * not modelled. Costs are the model's estimates and say so.
 */
import { ProgramError } from '../../scheduler';
import { __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM, __GFP_NORETRY, __GFP_NOWARN, __GFP_ZERO, gfpflags_allow_blocking } from '../kernel/gfp';
import type { KernelBody } from '../kernel/machine';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { phys_contents } from '../mm/contents';
import { mm } from '../mm/mm';
import { __free_pages, alloc_pages, page_to_phys } from '../mm/page-alloc';
import { get_order, page_address } from '../mm/slab';
import { vmap, vunmap } from '../mm/vmalloc';
import { DMA_ATTR_ALLOC_SINGLE_PAGES, DMA_ATTR_FORCE_CONTIGUOUS, DMA_ATTR_PRIVILEGED, DMA_ATTR_SKIP_CPU_SYNC, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_MAPPING_ERROR, DMA_TO_DEVICE } from './attrs';
import { dma_alloc_contiguous, dma_free_contiguous } from './contiguous';
import type { device } from './device';
import { arch_sync_cost, ZERO_BYTES_PER_NS } from './direct';
import { dma_alloc_from_pool, dma_free_from_pool } from './pool';
import { dma_state } from './state';
import { is_swiotlb_active, swiotlb_find_pool, swiotlb_sync_single_for_cpu, swiotlb_sync_single_for_device, swiotlb_tbl_map_single, swiotlb_tbl_unmap_single, type DmaWarnInfo } from './swiotlb/map';

const EINVAL = 22;
const EEXIST = 17;

export const SZ_4K = 0x1000;
export const SZ_16K = 0x4000;
export const SZ_64K = 0x10000;
export const SZ_2M = 0x200000;
export const SZ_32M = 0x2000000;
export const SZ_512M = 0x20000000;
export const SZ_1G = 0x40000000;

/** Page-table permissions (include/linux/iommu.h). */
export const IOMMU_READ = 1 << 0;
export const IOMMU_WRITE = 1 << 1;
export const IOMMU_CACHE = 1 << 2;
export const IOMMU_NOEXEC = 1 << 3;
export const IOMMU_MMIO = 1 << 4;
export const IOMMU_PRIV = 1 << 5;

/** x86 (VT-d, AMD-Vi) and arm64 SMMU with a 4 KiB granule: 4 KiB, 2 MiB, 1 GiB pages. */
export const PGSIZE_4K = SZ_4K + SZ_2M + SZ_1G;
/** arm64 SMMU with a 64 KiB granule: 64 KiB and 512 MiB pages. */
export const PGSIZE_64K = SZ_64K + SZ_512M;
/** arm64 SMMU with a 16 KiB granule: 16 KiB and 32 MiB pages. */
export const PGSIZE_16K = SZ_16K + SZ_32M;

/** IOVA_RANGE_CACHE_MAX_SIZE: ranges below 2^(6-1) granules go through the rcache. */
const IOVA_RANGE_CACHE_MAX_SIZE = 6;
/** IOVA_MAG_SIZE (v6.x); a CPU caches up to two magazines' worth per size here. */
const IOVA_MAG_SIZE = 127;

/** Model costs (estimates, not upstream facts). */
export const IOMMU_PTE_NS = 20; // one PTE written or cleared
export const IOTLB_SYNC_NS = 1500; // strict-mode invalidation and wait (CMD_SYNC / VT-d wait descriptor)
export const IOVA_ALLOC_NS = 150; // rbtree search under iova_rbtree_lock
export const IOVA_RCACHE_NS = 30; // per-CPU rcache hit

export const M_IOMMU_MAPS = 'iommu.maps';
export const M_IOMMU_UNMAPS = 'iommu.unmaps';
export const M_IOMMU_MAP_FAILURES = 'iommu.map_failures';
export const M_IOMMU_IOTLB_SYNCS = 'iommu.iotlb_syncs';
export const M_IOMMU_IOVA_FAILURES = 'iommu.iova_alloc_failures';
export const M_IOMMU_RCACHE_HITS = 'iommu.iova_rcache_hits';
export const M_IOMMU_BOUNCES = 'iommu.bounces';
export const M_IOMMU_ALLOC_FAILURES = 'iommu.alloc_failures';
export const M_IOMMU_POOL_ALLOCS = 'iommu.pool_allocs';
/** iommu.alloc.o<order>: chunks __iommu_dma_alloc_pages got at each order. */
export const M_IOMMU_ALLOC_ORDER: readonly string[] = Array.from({ length: 20 }, (_, o) => `iommu.alloc.o${o}`);
/** iommu.alloc_fail.o<order>: chunk attempts that failed at each order. */
export const M_IOMMU_ALLOC_FAIL_ORDER: readonly string[] = Array.from({ length: 20 }, (_, o) => `iommu.alloc_fail.o${o}`);

/** The record behind an "iommu: unaligned" report (lib/check/dma.ts). */
export interface IommuMapInfo {
  domain: string;
  iova: number;
  paddr: number;
  size: number;
  min_pagesz: number;
}

export interface IommuDomainOptions {
  /** Page sizes the IOMMU maps, as a sum of powers of two (default 4 KiB | 2 MiB | 1 GiB). */
  pgsize_bitmap?: number;
  /** IOVA aperture (default [0, 2^48 - 1]). */
  aperture_start?: number;
  aperture_end?: number;
}

interface Pte {
  pgsize: number;
  phys: number;
  prot: number;
}

/** struct iommu_domain with its iova_domain (the DMA cookie). */
export class iommu_domain {
  readonly pgsize_bitmap: number;
  /** Page sizes in the bitmap, ascending. */
  readonly pgsizes: readonly number[];
  /** The smallest page size: the IOVA granule. */
  readonly granule: number;
  readonly aperture_start: number;
  readonly aperture_end: number;
  /** Page table: page-aligned iova -> entry. */
  readonly ptes = new Map<number, Pte>();
  /** Allocated IOVA ranges in granule units [lo, hi), sorted by lo. */
  private readonly ranges: { lo: number; hi: number }[] = [];
  /** Per-CPU rcache: cpu -> log2(size in granules) -> cached range starts (LIFO). */
  private readonly rcache = new Map<number, number[][]>();
  /** Lowest IOVA pfn handed out (IOVA 0 is never used). */
  readonly start_pfn: number;

  constructor(
    readonly name: string,
    o: IommuDomainOptions = {},
  ) {
    const bitmap = o.pgsize_bitmap ?? PGSIZE_4K;
    if (!Number.isSafeInteger(bitmap) || bitmap <= 0) throw new ProgramError(`iommu domain ${name}: pgsize_bitmap must be a positive integer, got ${bitmap}`);
    const sizes: number[] = [];
    for (let p = 1, rest = bitmap; rest > 0; p *= 2) {
      if (rest % 2 === 1) sizes.push(p);
      rest = Math.floor(rest / 2);
    }
    if (sizes[0] < 512) throw new ProgramError(`iommu domain ${name}: smallest page size 0x${sizes[0].toString(16)} is below 512 bytes`);
    this.pgsize_bitmap = bitmap;
    this.pgsizes = sizes;
    this.granule = sizes[0];
    this.aperture_start = o.aperture_start ?? 0;
    this.aperture_end = o.aperture_end ?? 2 ** 48 - 1;
    if (!(this.aperture_end > this.aperture_start)) throw new ProgramError(`iommu domain ${name}: empty aperture`);
    this.start_pfn = Math.max(1, Math.ceil(this.aperture_start / this.granule));
  }

  /** iova_offset(). */
  iova_offset(addr: number): number {
    return addr % this.granule;
  }

  /** iova_align(). */
  iova_align(size: number): number {
    return Math.ceil(size / this.granule) * this.granule;
  }

  /** The page-table entry covering `iova`, with its page's start, or null. */
  lookup(iova: number): { base: number; pte: Pte } | null {
    for (const p of this.pgsizes) {
      const base = Math.floor(iova / p) * p;
      const e = this.ptes.get(base);
      if (e !== undefined && e.pgsize === p) return { base, pte: e };
    }
    return null;
  }

  /** Allocated IOVA bytes (mapped or not). */
  get iovaAllocated(): number {
    let n = 0;
    for (const r of this.ranges) n += r.hi - r.lo;
    return n * this.granule;
  }

  /** Mapped bytes. */
  get mappedBytes(): number {
    let n = 0;
    for (const e of this.ptes.values()) n += e.pgsize;
    return n;
  }

  private insertRange(lo: number, hi: number): void {
    let a = 0;
    let b = this.ranges.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (this.ranges[mid].lo < lo) a = mid + 1;
      else b = mid;
    }
    this.ranges.splice(a, 0, { lo, hi });
  }

  private findRange(lo: number): number {
    let a = 0;
    let b = this.ranges.length - 1;
    while (a <= b) {
      const mid = (a + b) >> 1;
      const r = this.ranges[mid];
      if (r.lo === lo) return mid;
      if (r.lo < lo) a = mid + 1;
      else b = mid - 1;
    }
    return -1;
  }

  /**
   * alloc_iova (size_aligned): the highest `size`-granule range ending at or below `limitPfn`,
   * starting at a multiple of the size rounded up to a power of two. -1 when none fits.
   */
  allocIovaRange(size: number, limitPfn: number): number {
    let align = 1;
    while (align < size) align *= 2;
    let top = limitPfn + 1; // exclusive end of the current gap
    for (let i = this.ranges.length - 1; i >= -1; i--) {
      const floor = i >= 0 ? this.ranges[i].hi : this.start_pfn;
      if (i >= 0 && this.ranges[i].lo >= top) continue;
      if (top - floor >= size) {
        const pfn = Math.floor((top - size) / align) * align;
        if (pfn >= floor && pfn >= this.start_pfn) {
          this.insertRange(pfn, pfn + size);
          return pfn;
        }
      }
      if (i >= 0) top = Math.min(top, this.ranges[i].lo);
    }
    return -1;
  }

  freeIovaRange(pfn: number): boolean {
    const i = this.findRange(pfn);
    if (i < 0) return false;
    this.ranges.splice(i, 1);
    return true;
  }

  /** iova_rcache_get: a cached range of this size class below the limit, from this CPU. */
  rcacheGet(cpu: number, logSize: number, limitPfn: number, size: number): number {
    const st = this.rcache.get(cpu)?.[logSize];
    if (st === undefined) return -1;
    for (let i = st.length - 1; i >= 0; i--) {
      const pfn = st[i];
      if (pfn + size - 1 <= limitPfn) {
        st.splice(i, 1);
        return pfn;
      }
    }
    return -1;
  }

  /** iova_rcache_insert: keep a freed small range on this CPU; false when the cache is full. */
  rcachePut(cpu: number, logSize: number, pfn: number): boolean {
    let per = this.rcache.get(cpu);
    if (per === undefined) {
      per = Array.from({ length: IOVA_RANGE_CACHE_MAX_SIZE }, () => [] as number[]);
      this.rcache.set(cpu, per);
    }
    const st = per[logSize];
    if (st.length >= 2 * IOVA_MAG_SIZE) return false;
    st.push(pfn);
    return true;
  }
}

/** iommu_domain_alloc / iommu_paging_domain_alloc: a paging domain with these page sizes. */
export function iommu_domain_alloc(name: string, o: IommuDomainOptions = {}): iommu_domain {
  return new iommu_domain(name, o);
}

/** iommu_pgsize: the largest page size that fits `size` and the alignment of iova and paddr. */
function iommu_pgsize(domain: iommu_domain, iova: number, paddr: number, size: number): number {
  let best = domain.granule;
  for (const p of domain.pgsizes) {
    if (p > size) break;
    if (iova % p === 0 && paddr % p === 0) best = p;
  }
  return best;
}

function aligned(v: number, a: number): boolean {
  return v % a === 0;
}

/**
 * iommu_map: map [iova, iova + size) to [paddr, ...) with `prot`. -EINVAL when iova, paddr or
 * size is not a multiple of the smallest page size (reported through the 'iommuMap' hook);
 * -EEXIST over a mapped page (what was mapped by this call is undone).
 */
export function* iommu_map(cur: Task, domain: iommu_domain, iova: number, paddr: number, size: number, prot: number): KernelBody<number> {
  const sim = cur.thread.sim;
  if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(paddr) || !Number.isSafeInteger(size) || iova < 0 || paddr < 0 || size < 0) {
    throw new ProgramError(`iommu_map(${domain.name}): iova, paddr and size must be non-negative integers`);
  }
  const min = domain.granule;
  if (!aligned(iova, min) || !aligned(paddr, min) || !aligned(size, min)) {
    sim.count(M_IOMMU_MAP_FAILURES, 1);
    const info: IommuMapInfo = { domain: domain.name, iova, paddr, size, min_pagesz: min };
    cur.cpu.machine.emit('iommuMap', cur, info);
    return -EINVAL;
  }
  if (iova + size - 1 > domain.aperture_end || iova < domain.aperture_start) {
    sim.count(M_IOMMU_MAP_FAILURES, 1);
    return -EINVAL;
  }
  let done = 0;
  let pages = 0;
  while (done < size) {
    const p = iommu_pgsize(domain, iova + done, paddr + done, size - done);
    // Overlap with a page already there (checked at the new page's two ends).
    if (domain.lookup(iova + done) !== null || domain.lookup(iova + done + p - 1) !== null) {
      if (done > 0) yield* iommu_unmap(cur, domain, iova, done);
      sim.count(M_IOMMU_MAP_FAILURES, 1);
      return -EEXIST;
    }
    domain.ptes.set(iova + done, { pgsize: p, phys: paddr + done, prot });
    done += p;
    pages++;
  }
  yield cur.thread.work(pages * IOMMU_PTE_NS);
  sim.count(M_IOMMU_MAPS, 1);
  return 0;
}

/**
 * iommu_unmap: clear the pages covering [iova, iova + size) and sync the IOTLB. Returns the
 * bytes unmapped (0 for an unaligned request, short when it reaches an unmapped page).
 */
export function* iommu_unmap(cur: Task, domain: iommu_domain, iova: number, size: number): KernelBody<number> {
  const min = domain.granule;
  if (!aligned(iova, min) || !aligned(size, min)) {
    cur.cpu.machine.log.printk(cur.cpu.id, `iommu: unaligned: iova 0x${iova.toString(16)} size 0x${size.toString(16)} min_pagesz 0x${min.toString(16)}`);
    return 0;
  }
  let done = 0;
  let pages = 0;
  while (done < size) {
    const hit = domain.lookup(iova + done);
    if (hit === null) break;
    domain.ptes.delete(hit.base);
    done += hit.base + hit.pte.pgsize - (iova + done);
    pages++;
  }
  yield cur.thread.work(pages * IOMMU_PTE_NS + IOTLB_SYNC_NS);
  const sim = cur.thread.sim;
  sim.count(M_IOMMU_UNMAPS, 1);
  sim.count(M_IOMMU_IOTLB_SYNCS, 1);
  return done;
}

/** iommu_iova_to_phys: the physical address `iova` translates to, or 0 when unmapped. */
export function iommu_iova_to_phys(domain: iommu_domain, iova: number): number {
  const hit = domain.lookup(iova);
  return hit === null ? 0 : hit.pte.phys + (iova - hit.base);
}

/** The permissions of the page holding `iova` (0 when unmapped): a device model checks writes with it. */
export function iommu_iova_prot(domain: iommu_domain, iova: number): number {
  const hit = domain.lookup(iova);
  return hit === null ? 0 : hit.pte.prot;
}

// ---------------------------------------------------------------------------------------------
// dma-iommu

function domainOf(dev: device): iommu_domain {
  const d = dev.iommu;
  if (d === null) throw new ProgramError(`device ${dev.name} is not behind an IOMMU`);
  return d;
}

function warn(cur: Task, dev: device, subkind: string, message: string): void {
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
function* arch_sync(cur: Task, size: number): KernelBody<void> {
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
  const limitPfn = Math.floor(limit / shift);
  let len = size / shift;
  let logSize = -1;
  if (len < 2 ** (IOVA_RANGE_CACHE_MAX_SIZE - 1)) {
    logSize = 0;
    while (2 ** logSize < len) logSize++;
    len = 2 ** logSize;
    const pfn = domain.rcacheGet(cur.cpu.id, logSize, limitPfn, len);
    if (pfn >= 0) {
      yield cur.thread.work(IOVA_RCACHE_NS);
      cur.thread.sim.count(M_IOMMU_RCACHE_HITS, 1);
      return pfn * shift;
    }
  }
  yield cur.thread.work(IOVA_ALLOC_NS);
  const pfn = domain.allocIovaRange(len, limitPfn);
  if (pfn < 0) {
    cur.thread.sim.count(M_IOMMU_IOVA_FAILURES, 1);
    return 0;
  }
  return pfn * shift;
}

/** iommu_dma_free_iova: small ranges go back to this CPU's rcache, others to the tree. */
export function iommu_dma_free_iova(cur: Task, domain: iommu_domain, iova: number, size: number): void {
  const pfn = iova / domain.granule;
  const len = size / domain.granule;
  if (len < 2 ** (IOVA_RANGE_CACHE_MAX_SIZE - 1)) {
    let logSize = 0;
    while (2 ** logSize < len) logSize++;
    if (domain.rcachePut(cur.cpu.id, logSize, pfn)) return;
  }
  domain.freeIovaRange(pfn);
}

/** __iommu_dma_map: map the granule-aligned span around [phys, phys + size); the bus address, or DMA_MAPPING_ERROR. */
function* __iommu_dma_map(cur: Task, dev: device, phys: number, size: number, prot: number, dmaMask: number): KernelBody<number> {
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
function* __iommu_dma_unmap(cur: Task, dev: device, addr: number, size: number): KernelBody<void> {
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

// ---------------------------------------------------------------------------------------------
// Coherent allocations

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

/** __iommu_dma_free_pages. */
/**
 * dma_common_pages_remap for an IOMMU allocation already mapped at `iova`: vmap the chunks' pages
 * (sleeps for page tables); on failure undo the IOMMU mapping and free the pages.
 */
function* remap_chunks(cur: Task, dev: device, chunks: [number, number][], iova: number, len: number, size: number): KernelBody<{ vaddr: number; dma_handle: number; size: number } | null> {
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

function free_chunks(cur: Task, chunks: [number, number][]): void {
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


// ---------------------------------------------------------------------------------------------
// The 2016 allocator (v4.5/v4.6 drivers/iommu/dma-iommu.c, as arm64's __iommu_alloc_attrs used
// it), for the DMA_ATTR_ALLOC_SINGLE_PAGES thread (Yong Wu's patch, Will Deacon and Doug
// Anderson, March 2016; KERNEL-FACTS 8.2). It never consulted the domain's pgsize_bitmap:
// chunks are whatever the buddy allocator gives, and iommu_map_sg then maps each physically
// contiguous run, which a domain whose granule is above PAGE_SIZE refuses unless the run is
// aligned to it.

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
