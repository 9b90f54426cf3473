/**
 * Migratetype fallback and the high-atomic reserve, the part of the page allocator (page-alloc.ts)
 * that picks another migratetype's pageblock (v6.12+, with v6.15's __rmqueue_claim /
 * __rmqueue_steal split): when a request's own free list is empty, claim a
 * pageblock of another type (try_to_claim_block) or steal one block of it; reserve_highatomic_
 * pageblock / unreserve_highatomic_pageblock manage MIGRATE_HIGHATOMIC. Functions over a PhysMem
 * (buddy.ts), named as the kernel's.
 */
import { MIGRATE_HIGHATOMIC, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_RECLAIMABLE, MIGRATE_TYPES, MIGRATE_UNMOVABLE } from './config';
import { ALLOC_MOVABLE, FREE, type PhysMem } from './buddy';
import { ALLOC_NOFRAGMENT, type Zone } from './zone';

/** fallbacks[][]: the other per-cpu types each type may fall back to, in preference order. */
const FALLBACKS = new Int8Array([
  MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE,   // UNMOVABLE
  MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, // MOVABLE
  MIGRATE_UNMOVABLE, MIGRATE_MOVABLE,     // RECLAIMABLE
]);

/** find_suitable_fallback() without the claimable test: the first non-empty fallback list at `order`. */
export function find_suitable_fallback(pm: PhysMem, z: Zone, order: number, mt: number): number {
  const li = (z.idx * pm.nOrders + order) * MIGRATE_TYPES;
  for (let i = 0; i < MIGRATE_PCPTYPES - 1; i++) {
    const f = FALLBACKS[mt * 2 + i];
    if (pm.lcount[li + f] > 0) return f;
  }
  return -1;
}

/** should_try_claim_block(): movable requests claim only from large buddies; others always try. */
export function should_try_claim_block(pm: PhysMem, order: number, startMt: number): boolean {
  return order >= (pm.pageblockOrder >> 1) || startMt === MIGRATE_RECLAIMABLE || startMt === MIGRATE_UNMOVABLE;
}

/** __rmqueue_claim(): from the largest buddy down, try to take over its pageblock for startMt. */
export function __rmqueue_claim(pm: PhysMem, z: Zone, order: number, startMt: number, allocFlags: number): number {
  let minOrder = order;
  // ALLOC_NOFRAGMENT: do not mix types below pageblock granularity.
  if (order < pm.pageblockOrder && (allocFlags & ALLOC_NOFRAGMENT)) minOrder = pm.pageblockOrder;
  for (let o = pm.maxOrder; o >= minOrder; o--) {
    if (!should_try_claim_block(pm, o, startMt)) break;
    const f = find_suitable_fallback(pm, z, o, startMt);
    if (f < 0) continue;
    const page = pm.lhead[(z.idx * pm.nOrders + o) * MIGRATE_TYPES + f];
    const got = try_to_claim_block(pm, z, page, o, order, startMt, f);
    if (got >= 0) return got;
  }
  return -1;
}

/**
 * try_to_claim_block(): a buddy of pageblock size or more changes type outright; a smaller one takes its
 * whole pageblock when at least half of it is free or of compatible mobility. (No watermark boost.)
 */
export function try_to_claim_block(pm: PhysMem, z: Zone, page: number, curOrder: number, order: number, startMt: number, blockMt: number): number {
  const pbo = pm.pageblockOrder;
  if (curOrder >= pbo) {
    pm.__del_page_from_free_list(z, page, curOrder, blockMt);
    pm.changePageblockRange(page, curOrder, startMt);
    pm.expand(z, page, order, curOrder, startMt);
    return page;
  }
  // prep_move_freepages_block(): the pageblock must lie inside the zone; count free and movable pages.
  const start = page & ~(pm.pbNr - 1);
  const end = start + pm.pbNr;
  if (start < z.startPfn || end > z.endPfn) return -1;
  // The scan stops as soon as the verdict is known (a cost-only shortcut: same answer as the full count).
  const half = 1 << (pbo - 1);
  const kind = startMt === MIGRATE_MOVABLE ? 0 : blockMt === MIGRATE_MOVABLE ? 1 : 2;
  let free = 0;
  let movable = 0;
  for (let p = start; p < end;) {
    const s = pm.pstate[p];
    const size = 1 << pm.porder[p];
    if (s === FREE) free += size;
    else if (s === ALLOC_MOVABLE) movable += size;
    p += size;
    const left = end - p;
    if (kind === 0 ? free + movable + left < half : kind === 1 ? movable > pm.pbNr - half : free + left < half) return -1;
  }
  let alike: number;
  if (startMt === MIGRATE_MOVABLE) alike = movable;
  // Non-movable into a movable block: everything not free and not movable counts as alike; between
  // unmovable and reclaimable nothing does (they cannot be told apart).
  else alike = blockMt === MIGRATE_MOVABLE ? pm.pbNr - (free + movable) : 0;
  if (free + alike >= half) {
    __move_freepages_block(pm, z, start, blockMt, startMt);
    pm.pbMt[start >> pbo] = startMt;
    return pm.__rmqueue_smallest(z, order, startMt);
  }
  return -1;
}

/** __rmqueue_steal(): the smallest fallback buddy, without claiming its pageblock. */
export function __rmqueue_steal(pm: PhysMem, z: Zone, order: number, startMt: number): number {
  for (let o = order; o <= pm.maxOrder; o++) {
    const f = find_suitable_fallback(pm, z, o, startMt);
    if (f < 0) continue;
    const page = pm.lhead[(z.idx * pm.nOrders + o) * MIGRATE_TYPES + f];
    pm.__del_page_from_free_list(z, page, o, f);
    pm.expand(z, page, order, o, f);
    return page;
  }
  return -1;
}

/** __move_freepages_block(): move every free block of the pageblock at `start` from list oldMt to newMt. */
export function __move_freepages_block(pm: PhysMem, z: Zone, start: number, oldMt: number, newMt: number): number {
  let moved = 0;
  const end = start + pm.pbNr;
  for (let p = start; p < end;) {
    const o = pm.porder[p];
    if (pm.pstate[p] === FREE) {
      pm.__del_page_from_free_list(z, p, o, oldMt);
      pm.__add_to_free_list(z, p, o, newMt, true);
      moved += 1 << o;
    }
    p += 1 << o;
  }
  return moved;
}

/**
 * reserve_highatomic_pageblock(): after a high-order atomic allocation at pfn, reserve its pageblock
 * as MIGRATE_HIGHATOMIC, up to about 1% of the zone (rounded up to a pageblock; none if 1% is less
 * than a pageblock).
 */
export function reserve_highatomic_pageblock(pm: PhysMem, z: Zone, pfn: number): void {
  const order = pm.allocatedOrder(pfn);
  if (order < 0) throw new Error(`reserveHighatomic: pfn ${pfn} is not an allocated head`);
  const onePct = Math.floor(z.managed / 100);
  if (onePct < pm.pbNr) return;
  const maxManaged = Math.ceil(onePct / pm.pbNr) * pm.pbNr;
  if (z.nr_reserved_highatomic >= maxManaged) return;
  const mt = pm.pbMt[pfn >> pm.pageblockOrder];
  // Only normal pageblocks (those that can merge with others) are reserved.
  if (mt >= MIGRATE_PCPTYPES) return;
  if (order < pm.pageblockOrder) {
    if (pm.retypePageblock(z, pfn, MIGRATE_HIGHATOMIC) < 0) return;
    z.nr_reserved_highatomic += pm.pbNr;
  } else {
    pm.changePageblockRange(pfn, order, MIGRATE_HIGHATOMIC);
    z.nr_reserved_highatomic += 1 << order;
  }
}

/**
 * unreserve_highatomic_pageblock() for one zone: give a reserved pageblock holding a free block back
 * to `migratetype` (the caller's type; default MOVABLE). Unless `force`, at least one pageblock stays
 * reserved. Differs from upstream only in that the released free pages re-merge with their buddies.
 */
export function unreserve_highatomic_pageblock(pm: PhysMem, z: Zone, force = true, migratetype = MIGRATE_MOVABLE): boolean {
  if (!force && z.nr_reserved_highatomic <= pm.pbNr) return false;
  for (let o = 0; o <= pm.maxOrder; o++) {
    const page = pm.lhead[(z.idx * pm.nOrders + o) * MIGRATE_TYPES + MIGRATE_HIGHATOMIC];
    if (page < 0) continue;
    // The list and the pageblock agree (hygiene), so pm is a reserved block: drop its accounting.
    const size = Math.min(Math.max(pm.pbNr, 1 << o), z.nr_reserved_highatomic);
    z.nr_reserved_highatomic -= size;
    let ret: number;
    if (o < pm.pageblockOrder) ret = pm.retypePageblock(z, page, migratetype);
    else {
      pm.__del_page_from_free_list(z, page, o, MIGRATE_HIGHATOMIC);
      pm.changePageblockRange(page, o, migratetype);
      pm.__free_one_page(z, page, o, migratetype);
      ret = 1;
    }
    if (ret > 0) return true;
  }
  return false;
}
