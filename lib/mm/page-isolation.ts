/**
 * Taking a free pfn range out of the buddy lists for a contiguous allocation and giving it back
 * (mm/page_isolation.c start_isolate_page_range with alloc_contig_range's take, simplified to
 * ranges that are already free; free_contig_range). Functions over a PhysMem (buddy.ts).
 */
import { ALLOC_CONTIG, FREE, TAIL, type PhysMem } from './buddy';
import type { Zone } from './zone';

/**
 * Take [start, start+count) out of the free lists as allocated order-0 pages (the end state of
 * alloc_contig_range: isolate_freepages_range + split). All pages must be free and in one zone, or
 * nothing changes and the result is false. Buddies straddling the edges are split; the outside
 * parts go back to their lists.
 */
export function isolateFreeRange(pm: PhysMem, start: number, count: number): boolean {
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(count)) || count <= 0 || start < 0 || start + count > pm.nrPages) return false;
  const end = start + count;
  const z = pm.zoneOf(start);
  if (end > z.endPfn) return false;
  const h0 = pm.findHead(start);
  if (h0 < 0 || pm.pstate[h0] !== FREE) return false;
  for (let p = h0 + (1 << pm.porder[h0]); p < end; p += 1 << pm.porder[p]) if (pm.pstate[p] !== FREE) return false;
  for (let p = h0; p < end;) {
    const o = pm.porder[p];
    const next = p + (1 << o);
    pm.__del_page_from_free_list(z, p, o, pm.pbMt[p >> pm.pageblockOrder]);
    carve(pm, z, p, o, start, end);
    p = next;
  }
  return true;
}

/** Split free-taken block [p, p+2^o): the parts inside [start, end) become contig pages, the rest free. */
export function carve(pm: PhysMem, z: Zone, p: number, o: number, start: number, end: number): void {
  const bEnd = p + (1 << o);
  if (p >= start && bEnd <= end) {
    pm.pstate.fill(ALLOC_CONTIG, p, bEnd);
    pm.porder.fill(0, p, bEnd);
    return;
  }
  if (bEnd <= start || p >= end) {
    pm.__add_to_free_list(z, p, o, pm.pbMt[p >> pm.pageblockOrder], false);
    return;
  }
  carve(pm, z, p, o - 1, start, end);
  carve(pm, z, p + (1 << (o - 1)), o - 1, start, end);
}

/** free_contig_range(): give back pages taken by isolateFreeRange, in aligned chunks that merge. */
export function free_contig_range(pm: PhysMem, start: number, count: number): void {
  const end = start + count;
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(count)) || count <= 0 || start < 0 || end > pm.nrPages) {
    throw new Error(`freeContigRange(${start}, ${count}): outside physical memory`);
  }
  for (let p = start; p < end; p++) {
    if (pm.pstate[p] !== ALLOC_CONTIG) throw new Error(`freeContigRange(${start}, ${count}): pfn ${p} is not a contig-allocated page`);
  }
  for (let p = start; p < end;) {
    const z = pm.zoneOf(p);
    let o = 0;
    while (o < pm.maxOrder && (p & ((2 << o) - 1)) === 0 && p + (2 << o) <= end && p + (2 << o) <= z.endPfn) o++;
    pm.pstate.fill(TAIL, p, p + (1 << o));
    pm.free_one_page(z, p, o);
    p += 1 << o;
  }
}
