/**
 * struct zone: pfn span, counters, watermarks and lowmem_reserve, plus __zone_watermark_ok.
 * The free lists themselves live in PhysMem's typed arrays (indexed by zone idx, order, migratetype).
 */
import type { PhysMem } from './buddy';
import { MAX_NR_ZONES, MIGRATE_CMA, MIGRATE_HIGHATOMIC, MIGRATE_PCPTYPES, ZONE_NAMES } from './config';

// enum zone_watermarks
export const WMARK_MIN = 0;
export const WMARK_LOW = 1;
export const WMARK_HIGH = 2;

// alloc_flags (mm/internal.h). ALLOC_WMARK_* index zone->_watermark.
export const ALLOC_WMARK_MIN = WMARK_MIN;
export const ALLOC_WMARK_LOW = WMARK_LOW;
export const ALLOC_WMARK_HIGH = WMARK_HIGH;
export const ALLOC_NO_WATERMARKS = 0x04;
export const ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1;
export const ALLOC_OOM = 0x08;
export const ALLOC_NON_BLOCK = 0x10;
export const ALLOC_MIN_RESERVE = 0x20;
export const ALLOC_CPUSET = 0x40;
export const ALLOC_CMA = 0x80;
export const ALLOC_NOFRAGMENT = 0x100;
export const ALLOC_HIGHATOMIC = 0x200;
export const ALLOC_KSWAPD = 0x800;
export const ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM;

/** sysctl_lowmem_reserve_ratio defaults, per zone (DMA, DMA32, Normal). */
export const LOWMEM_RESERVE_RATIO: readonly number[] = [256, 256, 32];

export type ZoneName = 'DMA' | 'DMA32' | 'Normal';

export class Zone {
  readonly name: ZoneName;
  /** Pages the buddy allocator manages (all present pages here: no memblock reservations modelled). */
  managed: number;
  /** NR_FREE_PAGES: free pages on every list except MIGRATE_ISOLATE (as account_freepages, v6.10+). */
  nr_free = 0;
  /** NR_FREE_CMA_PAGES. */
  nr_free_cma = 0;
  nr_reserved_highatomic = 0;
  /** [WMARK_MIN, WMARK_LOW, WMARK_HIGH] in pages (no watermark_boost: boosting is not modelled). */
  readonly watermark = new Int32Array(3);
  /** Indexed by highest_zoneidx. */
  readonly lowmem_reserve = new Int32Array(MAX_NR_ZONES);

  constructor(readonly idx: number, readonly startPfn: number, readonly endPfn: number) {
    this.name = ZONE_NAMES[idx];
    this.managed = endPfn - startPfn;
  }

  /** zone_spans_pfn(). */
  spans(pfn: number): boolean {
    return pfn >= this.startPfn && pfn < this.endPfn;
  }
}

export function wmark_pages(z: Zone, wmark: number): number {
  return z.watermark[wmark];
}
export function min_wmark_pages(z: Zone): number { return z.watermark[WMARK_MIN]; }
export function low_wmark_pages(z: Zone): number { return z.watermark[WMARK_LOW]; }
export function high_wmark_pages(z: Zone): number { return z.watermark[WMARK_HIGH]; }

/**
 * __setup_per_zone_wmarks(): share pages_min between the (lowmem) zones by managed size; the low/high
 * steps are max(min/4, managed * watermark_scale_factor / 10000). No highmem zones in this model.
 */
export function setup_per_zone_wmarks(zones: readonly Zone[], minFreeKbytes: number, pageShift: number, watermarkScaleFactor: number): void {
  const pagesMin = Math.floor(minFreeKbytes / 2 ** (pageShift - 10));
  let lowmemPages = 0;
  for (const z of zones) lowmemPages += z.managed;
  for (const z of zones) {
    const min = lowmemPages === 0 ? 0 : Math.floor((pagesMin * z.managed) / lowmemPages);
    const step = Math.max(min >> 2, Math.floor((z.managed * watermarkScaleFactor) / 10000));
    z.watermark[WMARK_MIN] = min;
    z.watermark[WMARK_LOW] = min + step;
    z.watermark[WMARK_HIGH] = min + 2 * step;
  }
}

/**
 * setup_per_zone_lowmem_reserve(): zone i keeps back (managed pages of the zones above it, up to j) /
 * ratio[i] from requests whose highest usable zone is j. `byIdx` has null for empty zones.
 */
export function setup_per_zone_lowmem_reserve(byIdx: readonly (Zone | null)[]): void {
  for (let i = 0; i < MAX_NR_ZONES; i++) {
    const z = byIdx[i];
    if (!z) continue;
    z.lowmem_reserve.fill(0);
    const ratio = LOWMEM_RESERVE_RATIO[i];
    if (!ratio || z.managed === 0) continue;
    let upper = 0;
    for (let j = i + 1; j < MAX_NR_ZONES; j++) {
      upper += byIdx[j]?.managed ?? 0;
      z.lowmem_reserve[j] = Math.floor(upper / ratio);
    }
  }
}

/** __zone_watermark_unusable_free(). (No unaccepted memory in this model.) */
function unusable_free(z: Zone, order: number, allocFlags: number): number {
  let unusable = (1 << order) - 1;
  // Without reserve rights the high-atomic reserve is not free to this caller (an over-estimate, as upstream).
  if ((allocFlags & ALLOC_RESERVES) === 0) unusable += z.nr_reserved_highatomic;
  if ((allocFlags & ALLOC_CMA) === 0) unusable += z.nr_free_cma;
  return unusable;
}

/** __zone_watermark_ok() with an explicit free page count (zone_watermark_fast passes it in). */
export function __zone_watermark_ok(phys: PhysMem, z: Zone, order: number, mark: number, highestZoneIdx: number,
  allocFlags: number, freePages: number): boolean {
  // Upstream, get_page_from_freelist() lets ALLOC_NO_WATERMARKS through after a failed check; folded in
  // here so that no caller can forget it. (Only __GFP_MEMALLOC / PF_MEMALLOC / OOM-victim paths set it.)
  if (allocFlags & ALLOC_NO_WATERMARKS) return true;
  let min = mark;
  // free may go negative; that is fine.
  const free = freePages - unusable_free(z, order, allocFlags);
  if (allocFlags & ALLOC_RESERVES) {
    if (allocFlags & ALLOC_MIN_RESERVE) {
      // __GFP_HIGH: half of the min reserve; non-blocking (GFP_ATOMIC) another quarter of the rest.
      min -= Math.floor(min / 2);
      if (allocFlags & ALLOC_NON_BLOCK) min -= Math.floor(min / 4);
    }
    // OOM victims go deeper still: they are about to exit and free memory.
    if (allocFlags & ALLOC_OOM) min -= Math.floor(min / 2);
  }
  // The order-0 check: if it fails, a high-order request cannot go ahead either.
  if (free <= min + z.lowmem_reserve[highestZoneIdx]) return false;
  if (order === 0) return true;
  // High order: some free block of at least this order on a list the caller may use.
  for (let o = order; o <= phys.maxOrder; o++) {
    for (let mt = 0; mt < MIGRATE_PCPTYPES; mt++) if (phys.freeCount(z, o, mt) > 0) return true;
    if ((allocFlags & ALLOC_CMA) && phys.freeCount(z, o, MIGRATE_CMA) > 0) return true;
    if ((allocFlags & (ALLOC_HIGHATOMIC | ALLOC_OOM)) && phys.freeCount(z, o, MIGRATE_HIGHATOMIC) > 0) return true;
  }
  return false;
}

/** zone_watermark_ok(): __zone_watermark_ok on NR_FREE_PAGES. */
export function zone_watermark_ok(phys: PhysMem, z: Zone, order: number, mark: number, highestZoneIdx: number, allocFlags: number): boolean {
  return __zone_watermark_ok(phys, z, order, mark, highestZoneIdx, allocFlags, z.nr_free);
}
