/**
 * Memory aging: bring a fresh PhysMem to the fragmented state of a machine that has been up a while.
 *
 * Each round is a fill to `peak` occupancy (page cache and anonymous memory, movable order 0, with
 * interleaved kernel allocations: unmovable of mixed order, reclaimable slab) and a reclaim back down
 * to `trough` that frees random live allocations. A small fraction of the kernel allocations is
 * long-lived (dentries, inodes, page tables, driver buffers): they stay until the long-lived set
 * reaches `maxPinned` of the zone, after which it turns over slowly (a random old one freed per new
 * one), each newcomer landing wherever memory is free at the time, so the scatter of pinned pages
 * spreads with every round even at constant size. All allocations go through PhysMem.rmqueue, so unmovable
 * requests that find no unmovable free page take the real fallback path (claim a pageblock or steal a
 * buddy from a movable one), which is what pollutes movable pageblocks on a real machine.
 *
 * At the end the transient kernel allocations are freed; the movable survivors are returned for the
 * memory model to adopt as page cache, and the long-lived kernel allocations stay allocated.
 */
import { ProgramError } from '../../scheduler/errors';
import { Rng } from '../../scheduler/rng';
import { MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE } from './config';
import type { PhysMem } from './buddy';
import { WMARK_HIGH } from './zone';

export interface AgeOptions {
  seed: number;
  /** Fill/reclaim cycles. 0 leaves memory untouched. */
  rounds: number;
  /** Zone indices to age (default: every zone). */
  zones?: number[];
  /** Occupancy (fraction of managed pages) each fill reaches, default 0.98 (page cache fills memory); capped to keep free pages above the high watermark. */
  peak?: number;
  /** Occupancy each reclaim returns to, default 0.85 (so a round churns peak - trough of memory). */
  trough?: number;
  /** Fraction of allocations that are unmovable kernel memory, default 0.08. */
  unmovable?: number;
  /** Fraction that are reclaimable slab, default 0.04. */
  reclaimable?: number;
  /** Fraction of unmovable/reclaimable allocations that live for the rest of uptime, default 0.02. */
  longLived?: number;
  /** Fraction of unmovable allocations above order 0 (orders 1..3, halving in frequency), default 0.15. */
  highOrder?: number;
  /**
   * Cap on long-lived pages as a fraction of the zone, default 0.1. Past it the long-lived set turns over
   * (a random old one is freed for each new one), so the scatter keeps spreading at constant size.
   */
  maxPinned?: number;
}

export interface AgeResult {
  /** Head pfns of the surviving order-0 MOVABLE pages (the memory model adopts them as page cache). */
  movable: Int32Array;
  /** Pages pinned by surviving unmovable/reclaimable allocations. */
  unmovable: number;
}

function fraction(v: number | undefined, def: number, what: string, who: string): number {
  const x = v ?? def;
  if (typeof x !== 'number' || !(x >= 0 && x <= 1)) throw new ProgramError(`bad ${who} option ${what}=${String(x)}: expected a fraction in [0, 1]`);
  return x;
}

/** The workload's mix, checked: shared by age() at boot and mm_uptime() at run time. */
export interface WorkloadMix {
  peak: number;
  trough: number;
  pUnmov: number;
  pRecl: number;
  pLong: number;
  pHigh: number;
  maxPinned: number;
}

/** The mix from the options with their defaults; `who` names the caller in errors ("age", "uptime"). */
export function workloadMix(opts: Partial<AgeOptions>, who: string): WorkloadMix {
  const peak = fraction(opts.peak, 0.98, 'peak', who);
  const trough = fraction(opts.trough, 0.85, 'trough', who);
  if (trough > peak) throw new ProgramError(`bad ${who} options: trough ${trough} above peak ${peak}`);
  const pUnmov = fraction(opts.unmovable, 0.08, 'unmovable', who);
  const pRecl = fraction(opts.reclaimable, 0.04, 'reclaimable', who);
  if (pUnmov + pRecl > 1) throw new ProgramError(`bad ${who} options: unmovable + reclaimable above 1`);
  return {
    peak,
    trough,
    pUnmov,
    pRecl,
    pLong: fraction(opts.longLived, 0.02, 'longLived', who),
    pHigh: fraction(opts.highOrder, 0.15, 'highOrder', who),
    maxPinned: fraction(opts.maxPinned, 0.1, 'maxPinned', who),
  };
}

export const KIND_MOVABLE = 0;
export const KIND_UNMOVABLE = 1;
export const KIND_RECLAIMABLE = 2;
/** Migrate type of each kind. */
export const KIND_MIGRATETYPE = [MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE];

/**
 * Draw one allocation of the mix: page cache (order 0), unmovable kernel memory (orders 1..3
 * halving in frequency for a share of it) or reclaimable slab. Returns kind * 4 + order, so the
 * hot loop builds no object per draw.
 */
export function drawAllocation(rng: Rng, mix: WorkloadMix): number {
  const u = rng.double();
  if (u < mix.pUnmov) {
    let order = 0;
    if (rng.double() < mix.pHigh) {
      const v = rng.double();
      order = v < 4 / 7 ? 1 : v < 6 / 7 ? 2 : 3;
    }
    return KIND_UNMOVABLE * 4 + order;
  }
  return u < mix.pUnmov + mix.pRecl ? KIND_RECLAIMABLE * 4 : KIND_MOVABLE * 4;
}

export function age(phys: PhysMem, opts: AgeOptions): AgeResult {
  const { seed, rounds } = opts;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ProgramError(`bad age option seed=${String(seed)}: expected a non-negative integer`);
  if (!Number.isSafeInteger(rounds) || rounds < 0) throw new ProgramError(`bad age option rounds=${String(rounds)}: expected a non-negative integer`);
  const mix = workloadMix(opts, 'age');
  const { peak, trough, pLong, maxPinned } = mix;
  const zones = (opts.zones ?? phys.zones.map((z) => z.idx)).map((i) => {
    const z = phys.zoneByIdx(i);
    if (!z) throw new ProgramError(`bad age option zones: no zone ${i}`);
    return z;
  });

  const rng = new Rng(seed);
  let movable = new Int32Array(0);
  let movableN = 0;
  let pinned = 0;
  if (rounds === 0) return { movable, unmovable: 0 };

  for (const z of zones) {
    // Short-lived allocations live in parallel arrays with swap-remove, so a random one frees in O(1).
    const cap = z.managed;
    const livePfn = new Int32Array(cap);
    const liveOrder = new Uint8Array(cap);
    const liveKind = new Uint8Array(cap);
    let live = 0;
    // Long-lived kernel allocations, same layout.
    const longPfn = new Int32Array(cap);
    const longOrder = new Uint8Array(cap);
    let nLong = 0;
    let zonePinned = 0;
    const pinCap = Math.floor(z.managed * maxPinned);
    const floorFree = z.watermark[WMARK_HIGH] + 1;
    const peakFree = Math.max(floorFree, Math.ceil(z.managed * (1 - peak)));
    const troughFree = Math.max(peakFree, Math.floor(z.managed * (1 - trough)));
    for (let r = 0; r < rounds; r++) {
      // Fill: page cache grows, the kernel allocates alongside.
      while (z.nr_free > peakFree && live < cap) {
        const drawn = drawAllocation(rng, mix);
        const kind = drawn >> 2;
        let order = drawn & 3;
        const mt = KIND_MIGRATETYPE[kind];
        let pfn = phys.rmqueue(z, order, mt, 0);
        if (pfn < 0 && order > 0) {
          order = 0;
          pfn = phys.rmqueue(z, 0, mt, 0);
        }
        if (pfn < 0) break;
        if (kind !== KIND_MOVABLE && rng.double() < pLong) {
          longPfn[nLong] = pfn;
          longOrder[nLong] = order;
          nLong++;
          zonePinned += 1 << order;
          // Turn over: an old long-lived allocation finally goes (an inode evicted, a driver unloaded).
          while (zonePinned > pinCap && nLong > 1) {
            const i = rng.int(nLong - 1);
            phys.free(longPfn[i], longOrder[i]);
            zonePinned -= 1 << longOrder[i];
            nLong--;
            longPfn[i] = longPfn[nLong - 1];
            longOrder[i] = longOrder[nLong - 1];
            longPfn[nLong - 1] = longPfn[nLong];
            longOrder[nLong - 1] = longOrder[nLong];
          }
          continue;
        }
        livePfn[live] = pfn;
        liveOrder[live] = order;
        liveKind[live] = kind;
        live++;
      }
      // Reclaim: random victims until the trough (kswapd to the high watermark and beyond).
      while (z.nr_free < troughFree && live > 0) {
        const i = rng.int(live);
        phys.free(livePfn[i], liveOrder[i]);
        live--;
        livePfn[i] = livePfn[live];
        liveOrder[i] = liveOrder[live];
        liveKind[i] = liveKind[live];
      }
    }
    // Transient kernel allocations end; movable survivors become page cache.
    let nm = 0;
    for (let i = 0; i < live; i++) if (liveKind[i] === KIND_MOVABLE) nm++;
    const grown = new Int32Array(movableN + nm);
    grown.set(movable.subarray(0, movableN));
    for (let i = 0; i < live; i++) {
      if (liveKind[i] === KIND_MOVABLE) grown[movableN++] = livePfn[i];
      else phys.free(livePfn[i], liveOrder[i]);
    }
    movable = grown;
    pinned += zonePinned;
  }
  return { movable, unmovable: pinned };
}

/**
 * Worst-case fragmentation on demand: keep the first page of every `order`-aligned block
 * allocated (unmovable), free the rest, so no free block of that order or above remains.
 */
export function pin_every(phys: PhysMem, order: number): void {
  if (!Number.isInteger(order) || order < 1 || order > phys.maxOrder) throw new ProgramError(`pin order must be an integer from 1 to ${phys.maxOrder}, got ${order}`);
  for (const z of phys.zones) {
    const pages: number[] = [];
    for (;;) {
      const pfn = phys.rmqueue(z, 0, MIGRATE_UNMOVABLE, 0);
      if (pfn < 0) break;
      pages.push(pfn);
    }
    for (const pfn of pages) if (pfn % 2 ** order !== 0) phys.free(pfn, 0);
  }
}
