/**
 * Physical-memory configuration and the constants the buddy allocator is parameterised by
 * (include/linux/mmzone.h, include/linux/gfp.h, include/linux/pageblock-flags.h).
 *
 * Pure data: nothing here knows about tasks or CPUs. GFP bits are used numerically so that
 * lib/mm stays independent of lib/kernel (they match lib/kernel/gfp.ts and include/linux/gfp_types.h).
 */
import { ProgramError } from '../../scheduler/errors';

export type PageSize = 4096 | 16384 | 65536;

export interface PhysMemOptions {
  /** Bytes of RAM, default 512 MiB; a positive multiple of the max-order block. */
  memory?: number;
  /** Default 4096. */
  pageSize?: PageSize;
  /** Physical address where RAM starts, default 0. Must be max-order-block aligned (see physmem.ts). */
  base?: number;
  /** ZONE_DMA upper limit (exclusive), default 16 MiB (x86); 0 = no ZONE_DMA. */
  dmaLimit?: number;
  /** ZONE_DMA32 upper limit, default 4 GiB; 0 = no ZONE_DMA32. */
  dma32Limit?: number;
  /** Default: as calculate_min_free_kbytes computes it. */
  minFreeKbytes?: number;
  /** Default 10 (per 10000), as vm.watermark_scale_factor. */
  watermarkScaleFactor?: number;
}

export const MIB = 1024 * 1024;
export const GIB = 1024 * MIB;

// enum migratetype, in upstream order (MIGRATE_PCPTYPES is the first non-pcp type).
export const MIGRATE_UNMOVABLE = 0;
export const MIGRATE_MOVABLE = 1;
export const MIGRATE_RECLAIMABLE = 2;
export const MIGRATE_PCPTYPES = 3;
export const MIGRATE_HIGHATOMIC = 3;
export const MIGRATE_CMA = 4;
export const MIGRATE_ISOLATE = 5;
export const MIGRATE_TYPES = 6;

export const MIGRATETYPE_NAMES: readonly string[] = ['Unmovable', 'Movable', 'Reclaimable', 'HighAtomic', 'CMA', 'Isolate'];

/** migratetype_is_mergeable(): only the per-cpu types may merge across pageblocks of different type. */
export function migratetype_is_mergeable(mt: number): boolean {
  return mt < MIGRATE_PCPTYPES;
}

const PAGE_SHIFT: Record<number, number> = { 4096: 12, 16384: 14, 65536: 16 };

export function page_shift(pageSize: PageSize): number {
  const s = PAGE_SHIFT[pageSize];
  if (s === undefined) throw new ProgramError(`bad pageSize ${String(pageSize)}: expected 4096, 16384 or 65536`);
  return s;
}

/**
 * MAX_PAGE_ORDER (inclusive, v6.4+ meaning): 10 by default; arm64's ARCH_FORCE_MAX_ORDER defaults
 * are 11 for 16K pages and 13 for 64K pages (arch/arm64/Kconfig).
 */
export function max_page_order(pageSize: PageSize): number {
  switch (page_shift(pageSize)) {
    case 14: return 11;
    case 16: return 13;
    default: return 10;
  }
}

/**
 * pageblock_order = min(HPAGE_PMD_ORDER, MAX_PAGE_ORDER). HPAGE_PMD_ORDER = PMD_SHIFT - PAGE_SHIFT:
 * a page-table page holds PAGE_SIZE/8 entries, so PMD_SHIFT = 2 * PAGE_SHIFT - 3 -> 9, 11, 13.
 */
export function pageblock_order(pageSize: PageSize): number {
  const shift = page_shift(pageSize);
  return Math.min(shift - 3, max_page_order(pageSize));
}

export const PAGE_ALLOC_COSTLY_ORDER = 3;

export const ZONE_DMA = 0;
export const ZONE_DMA32 = 1;
export const ZONE_NORMAL = 2;
/** Zones this model has (no HIGHMEM/MOVABLE/DEVICE: a 64-bit machine without movable_node). */
export const MAX_NR_ZONES = 3;
export const ZONE_NAMES = ['DMA', 'DMA32', 'Normal'] as const;

// GFP zone and mobility bits (include/linux/gfp_types.h).
const GFP_DMA = 1 << 0;
const GFP_DMA32 = 1 << 2;
const GFP_MOVABLE = 1 << 3;
const GFP_RECLAIMABLE = 1 << 4;

/** gfp_migratetype(): both mobility bits at once is a bug upstream (VM_BUG_ON); a program error here. */
export function gfp_migratetype(gfp: number): number {
  const m = gfp & (GFP_MOVABLE | GFP_RECLAIMABLE);
  if (m === 0) return MIGRATE_UNMOVABLE;
  if (m === GFP_MOVABLE) return MIGRATE_MOVABLE;
  if (m === GFP_RECLAIMABLE) return MIGRATE_RECLAIMABLE;
  throw new ProgramError(`gfp 0x${gfp.toString(16)}: __GFP_MOVABLE and __GFP_RECLAIMABLE together`);
}

/**
 * gfp_zone(): highest zone the request may use. __GFP_HIGHMEM and __GFP_MOVABLE map to ZONE_NORMAL on
 * a 64-bit machine without ZONE_MOVABLE; __GFP_DMA with __GFP_DMA32 is GFP_ZONE_BAD upstream.
 */
export function gfp_zone(gfp: number): number {
  const dma = (gfp & GFP_DMA) !== 0;
  const dma32 = (gfp & GFP_DMA32) !== 0;
  if (dma && dma32) throw new ProgramError(`gfp 0x${gfp.toString(16)}: __GFP_DMA and __GFP_DMA32 together`);
  if (dma) return ZONE_DMA;
  if (dma32) return ZONE_DMA32;
  return ZONE_NORMAL;
}

/** int_sqrt(): floor of the square root, exact for safe integers. */
export function int_sqrt(x: number): number {
  let r = Math.floor(Math.sqrt(x));
  while (r * r > x) r--;
  while ((r + 1) * (r + 1) <= x) r++;
  return r;
}

/**
 * calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16) clamped to [128, 262144]. lowmem_kbytes is
 * nr_free_buffer_pages() at boot, when no watermark is set yet, i.e. all managed pages.
 * Simplified: khugepaged's set_recommended_min_free_kbytes() (which raises it when THP is on) is not modelled.
 */
export function calculate_min_free_kbytes(managedPages: number, pageSize: PageSize): number {
  const lowmemKbytes = managedPages * (pageSize >> 10);
  return Math.min(262144, Math.max(128, int_sqrt(lowmemKbytes * 16)));
}

/** Resolved options (every field present). */
export interface PhysMemConfig {
  memory: number;
  pageSize: PageSize;
  base: number;
  dmaLimit: number;
  dma32Limit: number;
  minFreeKbytes: number | undefined;
  watermarkScaleFactor: number;
  maxOrder: number;
  pageblockOrder: number;
  pageShift: number;
  nrPages: number;
}

const KNOWN = new Set(['memory', 'pageSize', 'base', 'dmaLimit', 'dma32Limit', 'minFreeKbytes', 'watermarkScaleFactor']);
/** Upper bound on modelled pages: keeps the typed arrays (and their snapshot copies) to a few hundred MiB. */
export const MAX_MODEL_PAGES = 1 << 25;

function fmtBytes(n: number): string {
  if (n % GIB === 0) return `${n / GIB} GiB`;
  if (n % MIB === 0) return `${n / MIB} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

function nonNegInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ProgramError(`bad PhysMem option ${what}=${String(v)}: expected a non-negative integer`);
  }
  return v;
}

/** Validate and default PhysMemOptions; every failure is a ProgramError with a one-line message. */
export function resolvePhysMemOptions(opts: PhysMemOptions = {}): PhysMemConfig {
  for (const k of Object.keys(opts)) {
    if (!KNOWN.has(k)) throw new ProgramError(`unknown PhysMem option ${k}`);
  }
  const pageSize = (opts.pageSize ?? 4096) as PageSize;
  if (pageSize !== 4096 && pageSize !== 16384 && pageSize !== 65536) {
    throw new ProgramError(`bad PhysMem option pageSize=${String(pageSize)}: expected 4096, 16384 or 65536`);
  }
  const pageShift = page_shift(pageSize);
  const maxOrder = max_page_order(pageSize);
  const block = pageSize * 2 ** maxOrder;
  const memory = opts.memory ?? 512 * MIB;
  if (typeof memory !== 'number' || !Number.isSafeInteger(memory) || memory <= 0 || memory % block !== 0) {
    throw new ProgramError(`bad PhysMem option memory=${String(memory)}: expected a positive multiple of the max-order block (${fmtBytes(block)})`);
  }
  const nrPages = memory / pageSize;
  if (nrPages > MAX_MODEL_PAGES) {
    throw new ProgramError(`bad PhysMem option memory=${fmtBytes(memory)}: more than ${MAX_MODEL_PAGES} pages of ${pageSize} bytes`);
  }
  const base = nonNegInt(opts.base ?? 0, 'base');
  // Buddies are found by pfn arithmetic relative to `base`, so base must keep max-order alignment.
  if (base % block !== 0) {
    throw new ProgramError(`bad PhysMem option base=0x${base.toString(16)}: must be aligned to the max-order block (${fmtBytes(block)})`);
  }
  const dmaLimit = nonNegInt(opts.dmaLimit ?? 16 * MIB, 'dmaLimit');
  const dma32Limit = nonNegInt(opts.dma32Limit ?? 4 * GIB, 'dma32Limit');
  if (dmaLimit % pageSize !== 0) throw new ProgramError(`bad PhysMem option dmaLimit=0x${dmaLimit.toString(16)}: not page aligned`);
  if (dma32Limit % pageSize !== 0) throw new ProgramError(`bad PhysMem option dma32Limit=0x${dma32Limit.toString(16)}: not page aligned`);
  if (dma32Limit !== 0 && dmaLimit > dma32Limit) {
    throw new ProgramError(`bad PhysMem options: dmaLimit 0x${dmaLimit.toString(16)} above dma32Limit 0x${dma32Limit.toString(16)}`);
  }
  let minFreeKbytes: number | undefined;
  if (opts.minFreeKbytes !== undefined) minFreeKbytes = nonNegInt(opts.minFreeKbytes, 'minFreeKbytes');
  const wsf = opts.watermarkScaleFactor ?? 10;
  // vm.watermark_scale_factor accepts 1..3000 (sysctl bounds).
  if (typeof wsf !== 'number' || !Number.isSafeInteger(wsf) || wsf < 1 || wsf > 3000) {
    throw new ProgramError(`bad PhysMem option watermarkScaleFactor=${String(wsf)}: expected an integer in 1..3000`);
  }
  return {
    memory, pageSize, base, dmaLimit, dma32Limit, minFreeKbytes, watermarkScaleFactor: wsf,
    maxOrder, pageblockOrder: pageblock_order(pageSize), pageShift, nrPages,
  };
}
