/**
 * An IOMMU domain and the core mapping API (drivers/iommu/iommu.c, v6.12; docs/kernel-facts.md §8.2).
 *
 * - iommu_domain: the page sizes the hardware maps (pgsize_bitmap; the smallest is the granule),
 *   an aperture, the page table (iova page -> phys, prot), and its IOVA allocator (iova.ts).
 * - iommu_map / iommu_unmap / iommu_iova_to_phys: the core API; iommu_map refuses an iova,
 *   paddr or size not aligned to the smallest page size ("iommu: unaligned: ...", -EINVAL).
 *
 * Simplified: strict invalidation only (no flush queue: IOVAs are freed after the IOTLB sync);
 * no page-table page allocation; iommu_map over an already mapped page fails with -EEXIST
 * without the io-pgtable WARN; a partial unmap of a large page removes the whole page. Costs are
 * the model's estimates and say so. dma-iommu is in dma-iommu.ts (streaming) and
 * dma-iommu-alloc.ts (coherent allocation).
 */
import { ProgramError } from '../../../scheduler';
import { EEXIST, EINVAL } from '../../kernel/errno';
import type { KernelBody } from '../../kernel/machine';
import { SZ_16K, SZ_1G, SZ_2M, SZ_32M, SZ_4K, SZ_512M, SZ_64K } from '../../kernel/sizes';
import type { Task } from '../../kernel/task';
import { IOMMU_PTE_NS, IOTLB_SYNC_NS } from '../costs';
import { iova_domain } from './iova';

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

export const M_IOMMU_MAPS = 'iommu.maps';
export const M_IOMMU_UNMAPS = 'iommu.unmaps';
export const M_IOMMU_MAP_FAILURES = 'iommu.map_failures';
export const M_IOMMU_IOTLB_SYNCS = 'iommu.iotlb_syncs';
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
  /** The IOVA allocator (iommu_dma_cookie's iovad). */
  readonly iovad: iova_domain;

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
    this.iovad = new iova_domain(this.granule, Math.max(1, Math.ceil(this.aperture_start / this.granule)));
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
    return this.iovad.allocatedPfns * this.granule;
  }

  /** Mapped bytes. */
  get mappedBytes(): number {
    let n = 0;
    for (const e of this.ptes.values()) n += e.pgsize;
    return n;
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

declare module '../../kernel/hooks' {
  interface HookPayloads {
    iommuMap: IommuMapInfo;
  }
}
