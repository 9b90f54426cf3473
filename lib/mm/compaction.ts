/**
 * Direct compaction and single-block migration (mm/compaction.c, simplified: one-shot "find the
 * cheapest movable range and empty it" instead of the two scanners; see compact_zone). Functions
 * over a PhysMem (buddy.ts).
 */
import { MIGRATE_CMA, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_RECLAIMABLE, MIGRATE_TYPES, MIGRATE_UNMOVABLE } from './config';
import { ALLOC_MOVABLE, FREE, TAIL, type PhysMem } from './buddy';
import type { Zone } from './zone';

/**
 * Take a free block for a migration target: MOVABLE then CMA lists, smallest order first, skipping
 * blocks that overlap [avoidStart, avoidEnd) and (for compaction) buddies of pageblock order or more,
 * as suitable_migration_target refuses to break those. With `anyType`, RECLAIMABLE and UNMOVABLE lists
 * are tried last (the page allocator's fallback). Returns the new head (allocated movable) or -1.
 */
export function takeTarget(pm: PhysMem, z: Zone, order: number, avoidStart: number, avoidEnd: number, compaction: boolean, anyType: boolean): number {
  const kinds = anyType ? 4 : 2;
  for (let k = 0; k < kinds; k++) {
    const mt = k === 0 ? MIGRATE_MOVABLE : k === 1 ? MIGRATE_CMA : k === 2 ? MIGRATE_RECLAIMABLE : MIGRATE_UNMOVABLE;
    const maxO = compaction && mt !== MIGRATE_CMA ? pm.pageblockOrder - 1 : pm.maxOrder;
    for (let o = order; o <= maxO; o++) {
      for (let h = pm.lhead[(z.idx * pm.nOrders + o) * MIGRATE_TYPES + mt]; h >= 0; h = pm.next[h]) {
        if (h < avoidEnd && h + (1 << o) > avoidStart) continue;
        pm.__del_page_from_free_list(z, h, o, mt);
        pm.expand(z, h, order, o, mt);
        pm.pstate[h] = ALLOC_MOVABLE;
        pm.porder[h] = order;
        return h;
      }
    }
  }
  return -1;
}

/** Copy the movable block at oldPfn to newPfn (already allocated) and free the old one. */
export function finishMigration(pm: PhysMem, oldPfn: number, newPfn: number, order: number): void {
  pm.pstate[oldPfn] = TAIL;
  pm.free_one_page(pm.zoneOf(oldPfn), oldPfn, order);
  if (pm.onMigrate) pm.onMigrate(oldPfn, newPfn, order);
}

/** Whether z has a free block of at least `order` on a per-cpu-type list (what compaction aims for). */
export function hasFreeBlock(pm: PhysMem, z: Zone, order: number): boolean {
  for (let o = order; o <= pm.maxOrder; o++) {
    const li = (z.idx * pm.nOrders + o) * MIGRATE_TYPES;
    if (pm.lcount[li] + pm.lcount[li + 1] + pm.lcount[li + 2] > 0) return true;
  }
  return false;
}

/**
 * Direct compaction, simplified. Upstream runs a migrate scanner up from the zone start and a free
 * scanner down from its end; here we pick the naturally aligned 2^order range of z whose allocated
 * blocks are all movable and cost the fewest pages to move (lowest pfn on ties), skipping ranges in
 * HIGHATOMIC / CMA / ISOLATE pageblocks, and migrate its blocks (largest first) into free blocks
 * outside it (MOVABLE, then CMA pageblocks). Returns the pages migrated when a free block of `order`
 * exists afterwards (0 if one already did), -1 when no range can be emptied (some pages may have
 * moved before a -1; counts are conserved either way).
 */
export function compact_zone(pm: PhysMem, z: Zone, order: number): number {
  if (!(order >= 0 && order <= pm.maxOrder)) return -1;
  if (hasFreeBlock(pm, z, order)) return 0;
  const size = 1 << order;
  const first = Math.ceil(z.startPfn / size) * size;
  const last = Math.floor(z.endPfn / size) * size;
  const nRanges = Math.max(0, (last - first) / size);
  if (nRanges === 0) return -1;
  // Free pages usable as migration targets anywhere in the zone.
  let targetFree = 0;
  for (let o = 0; o <= pm.maxOrder; o++) {
    const li = (z.idx * pm.nOrders + o) * MIGRATE_TYPES;
    if (o < pm.pageblockOrder) targetFree += pm.lcount[li + MIGRATE_MOVABLE] << o;
    targetFree += pm.lcount[li + MIGRATE_CMA] * 2 ** o;
  }
  let best = -1;
  let bestCost = 0;
  for (let r = 0; r < nRanges; r++) {
    const c = rangeCost(pm, first + r * size, size, targetFree);
    if (c > 0 && (best < 0 || c < bestCost)) { best = r; bestCost = c; }
  }
  if (best < 0) return -1;
  // One attempt: a missing target means targets ran out, which no other range would change. The
  // migrations already made stay (as upstream, compaction can make progress and still fail).
  const moved = emptyRange(pm, z, first + best * size, size);
  return moved >= 0 ? moved : -1;
}

/** Pages to move to empty [s, s+size), or -1 when it holds unmovable pages or cannot fit elsewhere. */
export function rangeCost(pm: PhysMem, s: number, size: number, targetFree: number): number {
  const pbo = pm.pageblockOrder;
  const pbFirst = s >> pbo;
  const pbLast = (s + size - 1) >> pbo;
  for (let b = pbFirst; b <= pbLast; b++) if (pm.pbMt[b] >= MIGRATE_PCPTYPES) return -1;
  if (pm.pstate[s] === TAIL) return -1; // inside a larger block
  let cost = 0;
  let freeInside = 0;
  const end = s + size;
  for (let p = s; p < end;) {
    const st = pm.pstate[p];
    const o = pm.porder[p];
    if (p + (1 << o) > end) return -1; // a block covering the range
    if (st === FREE) {
      if (o < pbo) freeInside += 1 << o;
    } else if (st === ALLOC_MOVABLE) cost += 1 << o;
    else return -1;
    p += 1 << o;
  }
  if (cost > targetFree - freeInside) return -1;
  return cost;
}

/** Migrate every block of [s, s+size) out; pages moved, or -(moved+1) when a target was missing. */
export function emptyRange(pm: PhysMem, z: Zone, s: number, size: number): number {
  const end = s + size;
  let moved = 0;
  // Largest blocks first: they are the hardest to place.
  for (let o = pm.maxOrder; o >= 0; o--) {
    for (let p = s; p < end;) {
      const st = pm.pstate[p];
      const bo = pm.porder[p];
      if (st === ALLOC_MOVABLE && bo === o) {
        const t = takeTarget(pm, z, o, s, end, true, false);
        if (t < 0) return -(moved + 1);
        finishMigration(pm, p, t, o);
        moved += 1 << o;
        // The freed block may have merged: its pages are tails now, stepped over one by one below.
        p += 1 << o;
        continue;
      }
      p += st === TAIL ? 1 : 1 << bo;
    }
  }
  return hasFreeBlock(pm, z, Math.log2(size)) ? moved : -(moved + 1);
}

/**
 * alloc_contig_range's migration of one movable block at pfn to free memory outside
 * [avoidStart, avoidEnd): its own zone first, then the others from the highest down. The target comes
 * from MOVABLE, CMA, then the other per-cpu lists (as the page allocator would fall back).
 */
export function migrateBlock(pm: PhysMem, pfn: number, avoidStart: number, avoidEnd: number): number {
  if (!pm.isMovable(pfn)) return -1;
  const order = pm.porder[pfn];
  const home = pm.zoneOf(pfn);
  let t = takeTarget(pm, home, order, avoidStart, avoidEnd, false, true);
  for (let i = pm.zones.length - 1; t < 0 && i >= 0; i--) {
    if (pm.zones[i] !== home) t = takeTarget(pm, pm.zones[i], order, avoidStart, avoidEnd, false, true);
  }
  if (t < 0) return -1;
  finishMigration(pm, pfn, t, order);
  return t;
}
