/**
 * Physical memory and the buddy free lists, over one pfn space: pfn 0 is `base`, zones are
 * consecutive pfn ranges: the free-list primitives, __rmqueue_smallest, __rmqueue and
 * __free_one_page under the kernel's names (v6.12); the allocator's entry points, and the file
 * that models mm/page_alloc.c as a whole, are page-alloc.ts. Split by
 * concept: migratetype fallback and the high-atomic reserve (fallback.ts), compaction
 * (compaction.ts), contiguous-range isolation (page-isolation.ts), snapshot/restore (snapshot.ts).
 *
 * Per-page state lives in typed arrays (no objects per page): the free-list links, a state byte
 * (tail / free head / allocated head) and an order byte per pfn, one migratetype byte per pageblock,
 * and per (zone, order, migratetype) list heads, tails and block counts.
 *
 * Free-list semantics follow v6.10+ ("freelist hygiene"): a free block always sits on the list of its
 * pageblock's migratetype, and a free block larger than a pageblock has one migratetype in all its
 * pageblocks. Fallback follows v6.15+ (__rmqueue_claim, then __rmqueue_steal).
 *
 * Simplifications vs upstream, each also noted where it applies:
 *  - no per-cpu page lists (pcp): every allocation and free goes straight to the buddy lists;
 *  - no watermark boosting (boost_watermark), no page shuffling, no guard pages, no memory holes;
 *  - every page of a zone is managed (no memblock reservations);
 *  - `base` must be max-order aligned so that pfn arithmetic relative to base finds the same buddies;
 *  - compaction is a one-shot "find the cheapest movable range and empty it" (compaction.ts).
 */
import { ProgramError } from '../../scheduler/errors';
import {
  calculate_min_free_kbytes, MAX_NR_ZONES, MIGRATE_CMA, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE,
  MIGRATE_PCPTYPES, MIGRATE_TYPES, PageSize, PhysMemOptions,
  resolvePhysMemOptions, ZONE_DMA, ZONE_DMA32, ZONE_NORMAL,
} from './config';
import {
  ALLOC_CMA, ALLOC_HIGHATOMIC, ALLOC_NOFRAGMENT, ALLOC_NON_BLOCK, ALLOC_OOM, setup_per_zone_lowmem_reserve,
  setup_per_zone_wmarks, Zone,
} from './zone';
import { compact_zone, hasFreeBlock, migrateBlock } from './compaction';
import { __move_freepages_block, __rmqueue_claim, __rmqueue_steal, reserve_highatomic_pageblock, unreserve_highatomic_pageblock } from './fallback';
import { free_contig_range, isolateFreeRange } from './page-isolation';
import { restore, snapshot, stateHash } from './snapshot';

// Per-page state byte.
export const TAIL = 0;          // inside a block (or nothing known): not a head
export const FREE = 1;          // head of a free block on a free list (PageBuddy)
export const ALLOC = 2;         // head of an allocated non-movable block
export const ALLOC_MOVABLE = 3; // head of an allocated movable block (migratable)
export const ALLOC_CONTIG = 4;  // one page of an alloc_contig_range allocation (order 0, not movable)

export class PhysMem {
  readonly pageSize: PageSize;
  readonly maxOrder: number;
  readonly pageblockOrder: number;
  readonly nrPages: number;
  readonly base: number;
  readonly zones: Zone[];
  readonly minFreeKbytes: number;
  readonly watermarkScaleFactor: number;
  /** Called for every migration (compaction, alloc_contig_range): the owner of oldPfn now owns newPfn. */
  onMigrate: ((oldPfn: number, newPfn: number, order: number) => void) | null = null;

  readonly pageShift: number;
  readonly pbNr: number;
  readonly byIdx: (Zone | null)[];
  readonly nOrders: number;
  // Free-list links by pfn (-1 = none).
  readonly next: Int32Array;
  readonly prev: Int32Array;
  readonly pstate: Uint8Array;
  readonly porder: Uint8Array;
  /** Migratetype per pageblock (pfn >> pageblockOrder). */
  readonly pbMt: Uint8Array;
  // Per (zone idx, order, migratetype) list: head, tail, number of blocks.
  readonly lhead: Int32Array;
  readonly ltail: Int32Array;
  readonly lcount: Int32Array;
  // Zone counters and watermarks, for snapshot().
  readonly zoneScalars: Float64Array;
  readonly snap: { arrays: (Int32Array | Uint8Array)[]; zone: Float64Array; wm: Int32Array };
  visited: Uint8Array | null = null;

  constructor(opts?: PhysMemOptions) {
    const c = resolvePhysMemOptions(opts);
    this.pageSize = c.pageSize;
    this.pageShift = c.pageShift;
    this.maxOrder = c.maxOrder;
    this.pageblockOrder = c.pageblockOrder;
    this.pbNr = 1 << c.pageblockOrder;
    this.nrPages = c.nrPages;
    this.base = c.base;
    this.watermarkScaleFactor = c.watermarkScaleFactor;
    this.nOrders = c.maxOrder + 1;
    const n = c.nrPages;
    this.next = new Int32Array(n).fill(-1);
    this.prev = new Int32Array(n).fill(-1);
    this.pstate = new Uint8Array(n);
    this.porder = new Uint8Array(n);
    // Boot marks every pageblock MIGRATE_MOVABLE (memmap_init).
    this.pbMt = new Uint8Array(n >> c.pageblockOrder).fill(MIGRATE_MOVABLE);
    const nl = MAX_NR_ZONES * this.nOrders * MIGRATE_TYPES;
    this.lhead = new Int32Array(nl).fill(-1);
    this.ltail = new Int32Array(nl).fill(-1);
    this.lcount = new Int32Array(nl);

    // Zone spans from the address limits, clipped to [base, base + memory).
    const start = c.base;
    const end = c.base + c.memory;
    const limits = [c.dmaLimit, c.dma32Limit === 0 ? c.dmaLimit : c.dma32Limit, end];
    this.byIdx = [null, null, null];
    this.zones = [];
    let lo = start;
    for (const idx of [ZONE_DMA, ZONE_DMA32, ZONE_NORMAL]) {
      const hi = Math.min(end, Math.max(lo, limits[idx]));
      if (hi > lo && !(idx === ZONE_DMA32 && c.dma32Limit === 0)) {
        const z = new Zone(idx, (lo - start) / c.pageSize, (hi - start) / c.pageSize);
        this.byIdx[idx] = z;
        this.zones.push(z);
      }
      lo = Math.max(lo, hi);
    }
    // memblock_free_all(): hand each zone to the buddy allocator in maximal aligned blocks, to the tail
    // (__free_pages_core uses FPI_TO_TAIL), so early allocations come from low addresses.
    for (const z of this.zones) {
      let pfn = z.startPfn;
      while (pfn < z.endPfn) {
        let o = this.maxOrder;
        while (o > 0 && ((pfn & ((1 << o) - 1)) !== 0 || pfn + (1 << o) > z.endPfn)) o--;
        this.__add_to_free_list(z, pfn, o, this.pbMt[pfn >> this.pageblockOrder], true);
        pfn += 1 << o;
      }
    }
    let managed = 0;
    for (const z of this.zones) managed += z.managed;
    this.minFreeKbytes = c.minFreeKbytes ?? calculate_min_free_kbytes(managed, c.pageSize);
    this.setupWatermarks();

    this.zoneScalars = new Float64Array(MAX_NR_ZONES * 4);
    this.snap = {
      arrays: [this.next, this.prev, this.pstate, this.porder, this.pbMt, this.lhead, this.ltail, this.lcount].map((a) => a.slice()),
      zone: new Float64Array(MAX_NR_ZONES * 4),
      wm: new Int32Array(MAX_NR_ZONES * 6),
    };
    snapshot(this);
  }

  /** init_per_zone_wmark_min() minus the min_free_kbytes calculation: watermarks and lowmem_reserve. */
  setupWatermarks(minFreeKbytes = this.minFreeKbytes): void {
    (this as { minFreeKbytes: number }).minFreeKbytes = minFreeKbytes;
    setup_per_zone_wmarks(this.zones, minFreeKbytes, this.pageShift, this.watermarkScaleFactor);
    setup_per_zone_lowmem_reserve(this.byIdx);
  }

  zoneByIdx(idx: number): Zone | null {
    return this.byIdx[idx] ?? null;
  }

  zoneOf(pfn: number): Zone {
    const zs = this.zones;
    for (let i = 0; i < zs.length; i++) if (pfn >= zs[i].startPfn && pfn < zs[i].endPfn) return zs[i];
    throw new Error(`pfn ${pfn} outside physical memory (0..${this.nrPages - 1})`);
  }

  pfnToPhys(pfn: number): number {
    return this.base + pfn * this.pageSize;
  }

  physToPfn(addr: number): number {
    return Math.floor((addr - this.base) / this.pageSize);
  }

  /** Number of free blocks on one list (free_area[order].free_list[mt]). */
  freeCount(z: Zone, order: number, mt: number): number {
    return this.lcount[(z.idx * this.nOrders + order) * MIGRATE_TYPES + mt];
  }

  // ---------------------------------------------------------------- free-list primitives

  /** __add_to_free_list() + account_freepages(): isolated pages are not NR_FREE_PAGES (v6.10+). */
  __add_to_free_list(z: Zone, pfn: number, order: number, mt: number, tail: boolean): void {
    const li = (z.idx * this.nOrders + order) * MIGRATE_TYPES + mt;
    const next = this.next;
    const prev = this.prev;
    if (tail) {
      const t = this.ltail[li];
      prev[pfn] = t;
      next[pfn] = -1;
      if (t >= 0) next[t] = pfn; else this.lhead[li] = pfn;
      this.ltail[li] = pfn;
    } else {
      const h = this.lhead[li];
      next[pfn] = h;
      prev[pfn] = -1;
      if (h >= 0) prev[h] = pfn; else this.ltail[li] = pfn;
      this.lhead[li] = pfn;
    }
    this.lcount[li]++;
    this.pstate[pfn] = FREE;
    this.porder[pfn] = order;
    if (mt !== MIGRATE_ISOLATE) z.nr_free += 1 << order;
    if (mt === MIGRATE_CMA) z.nr_free_cma += 1 << order;
  }

  /** __del_page_from_free_list(): the head becomes a plain page (TAIL) until the caller marks it. */
  __del_page_from_free_list(z: Zone, pfn: number, order: number, mt: number): void {
    const li = (z.idx * this.nOrders + order) * MIGRATE_TYPES + mt;
    const n = this.next[pfn];
    const p = this.prev[pfn];
    if (p >= 0) this.next[p] = n; else this.lhead[li] = n;
    if (n >= 0) this.prev[n] = p; else this.ltail[li] = p;
    this.next[pfn] = -1;
    this.prev[pfn] = -1;
    this.lcount[li]--;
    this.pstate[pfn] = TAIL;
    if (mt !== MIGRATE_ISOLATE) z.nr_free -= 1 << order;
    if (mt === MIGRATE_CMA) z.nr_free_cma -= 1 << order;
  }

  /** expand(): split [pfn, pfn + 2^high) down to 2^low, giving the upper halves back to list mt. */
  expand(z: Zone, pfn: number, low: number, high: number, mt: number): void {
    while (high > low) {
      high--;
      this.__add_to_free_list(z, pfn + (1 << high), high, mt, false);
    }
  }

  changePageblockRange(pfn: number, order: number, mt: number): void {
    const pbo = this.pageblockOrder;
    const first = pfn >> pbo;
    const n = order > pbo ? 1 << (order - pbo) : 1;
    this.pbMt.fill(mt, first, first + n);
  }

  /** Head of the block (free or allocated) containing pfn; blocks are naturally aligned. */
  findHead(pfn: number): number {
    for (let o = 0; o <= this.maxOrder; o++) {
      const h = pfn & ~((1 << o) - 1);
      if (this.pstate[h] !== TAIL && h + (1 << this.porder[h]) > pfn) return h;
    }
    return -1;
  }

  // ---------------------------------------------------------------- allocation

  /** __rmqueue_smallest(): the smallest free block of at least `order` on list mt, split down. */
  __rmqueue_smallest(z: Zone, order: number, mt: number): number {
    const base = z.idx * this.nOrders;
    for (let o = order; o <= this.maxOrder; o++) {
      const h = this.lhead[(base + o) * MIGRATE_TYPES + mt];
      if (h >= 0) {
        this.__del_page_from_free_list(z, h, o, mt);
        this.expand(z, h, order, o, mt);
        return h;
      }
    }
    return -1;
  }

  /**
   * rmqueue_buddy(): the high-atomic reserve first for ALLOC_HIGHATOMIC, then __rmqueue, then (newest
   * upstream) the high-atomic reserve again for ALLOC_OOM or ALLOC_NON_BLOCK callers, since failing now is
   * worse than failing a high-order atomic allocation later. No watermark check and no pcp lists here.
   */
  rmqueue(z: Zone, order: number, migratetype: number, allocFlags: number): number {
    if (order < 0 || order > this.maxOrder) return -1;
    let page = -1;
    if (allocFlags & ALLOC_HIGHATOMIC) page = this.__rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC);
    if (page < 0) page = this.__rmqueue(z, order, migratetype, allocFlags);
    if (page < 0 && (allocFlags & (ALLOC_OOM | ALLOC_NON_BLOCK))) page = this.__rmqueue_smallest(z, order, MIGRATE_HIGHATOMIC);
    if (page < 0) return -1;
    this.pstate[page] = migratetype === MIGRATE_MOVABLE ? ALLOC_MOVABLE : ALLOC;
    this.porder[page] = order;
    return page;
  }

  /**
   * __rmqueue(): CMA balancing, the requested list, CMA, then claim a block of another type, then steal
   * a single block (not with ALLOC_NOFRAGMENT). ALLOC_CMA is honoured for MOVABLE requests only (upstream
   * only ever sets it for them). A non-pcp migratetype is served from its own list only.
   */
  __rmqueue(z: Zone, order: number, mt: number, allocFlags: number): number {
    if (mt >= MIGRATE_PCPTYPES) return this.__rmqueue_smallest(z, order, mt);
    const cma = (allocFlags & ALLOC_CMA) !== 0 && mt === MIGRATE_MOVABLE;
    let page: number;
    // Balance movable allocations between CMA and the rest when over half of free memory is CMA.
    if (cma && z.nr_free_cma > Math.floor(z.nr_free / 2)) {
      page = this.__rmqueue_smallest(z, order, MIGRATE_CMA);
      if (page >= 0) return page;
    }
    page = this.__rmqueue_smallest(z, order, mt);
    if (page >= 0) return page;
    if (cma) {
      page = this.__rmqueue_smallest(z, order, MIGRATE_CMA);
      if (page >= 0) return page;
    }
    page = __rmqueue_claim(this, z, order, mt, allocFlags);
    if (page >= 0) return page;
    if (allocFlags & ALLOC_NOFRAGMENT) return -1;
    return __rmqueue_steal(this, z, order, mt);
  }

  // ---------------------------------------------------------------- freeing

  /** __free_pages(): free an allocated block (split per pageblock when larger, as split_large_buddy). */
  free(pfn: number, order: number): void {
    if (!(pfn >= 0 && pfn < this.nrPages) || this.pstate[pfn] < ALLOC) {
      const what = pfn >= 0 && pfn < this.nrPages && this.pstate[pfn] === FREE ? 'already free (double free)' : 'not an allocated head';
      throw new Error(`free of pfn ${pfn} order ${order}: ${what}`);
    }
    if (this.porder[pfn] !== order) {
      throw new Error(`free of pfn ${pfn} order ${order}: bad order, allocated as order ${this.porder[pfn]}`);
    }
    this.pstate[pfn] = TAIL;
    this.free_one_page(this.zoneOf(pfn), pfn, order);
  }

  /** free_one_page() with split_large_buddy(): each pageblock of a large block goes to its own list. */
  free_one_page(z: Zone, pfn: number, order: number): void {
    const pbo = this.pageblockOrder;
    if (order <= pbo) {
      this.__free_one_page(z, pfn, order, this.pbMt[pfn >> pbo]);
      return;
    }
    const end = pfn + (1 << order);
    for (let p = pfn; p < end; p += this.pbNr) this.__free_one_page(z, p, pbo, this.pbMt[p >> pbo]);
  }

  /**
   * __free_one_page(): merge with free buddies of the same order in the same zone; at pageblock order
   * and above, not across a non-mergeable type (HIGHATOMIC, CMA, ISOLATE). A merged buddy of another
   * per-cpu type takes the freed block's type. Queue at the tail when the next-order buddy is free
   * (buddy_merge_likely), else at the head.
   */
  __free_one_page(z: Zone, pfn: number, order: number, mt: number): void {
    const pbo = this.pageblockOrder;
    const max = this.maxOrder;
    const pstate = this.pstate;
    const porder = this.porder;
    const zs = z.startPfn;
    const ze = z.endPfn;
    while (order < max) {
      const buddy = pfn ^ (1 << order);
      if (buddy < zs || buddy >= ze || pstate[buddy] !== FREE || porder[buddy] !== order) break;
      let bmt = mt;
      if (order >= pbo) {
        bmt = this.pbMt[buddy >> pbo];
        if (bmt !== mt && (mt >= MIGRATE_PCPTYPES || bmt >= MIGRATE_PCPTYPES)) break;
      }
      this.__del_page_from_free_list(z, buddy, order, bmt);
      if (bmt !== mt) this.changePageblockRange(buddy, order, mt);
      pfn &= buddy;
      order++;
    }
    let tail = false;
    if (order < max - 1) {
      const higher = pfn & ~(1 << order);
      const hb = higher ^ (1 << (order + 1));
      tail = hb >= zs && hb < ze && pstate[hb] === FREE && porder[hb] === order + 1;
    }
    this.__add_to_free_list(z, pfn, order, mt, tail);
  }

  allocatedOrder(pfn: number): number {
    if (!(pfn >= 0 && pfn < this.nrPages) || this.pstate[pfn] < ALLOC) return -1;
    return this.porder[pfn];
  }

  isMovable(pfn: number): boolean {
    return pfn >= 0 && pfn < this.nrPages && this.pstate[pfn] === ALLOC_MOVABLE;
  }

  /** Whether pfn is the head of a free block (PageBuddy). */
  isFreeHead(pfn: number): boolean {
    return pfn >= 0 && pfn < this.nrPages && this.pstate[pfn] === FREE;
  }

  /** buddy_order(): the order of the free block headed at pfn, else -1. */
  freeOrder(pfn: number): number {
    return this.isFreeHead(pfn) ? this.porder[pfn] : -1;
  }

  // ---------------------------------------------------------------- pageblock migratetype

  pageblockMigratetype(pfn: number): number {
    return this.pbMt[pfn >> this.pageblockOrder];
  }

  /**
   * set_pageblock_migratetype() plus moving the block's free pages to the new list (as
   * move_freepages_block / the isolation code do), keeping NR_FREE_PAGES, NR_FREE_CMA_PAGES and
   * nr_reserved_highatomic consistent. A free buddy larger than a pageblock: between per-cpu types the
   * whole buddy changes type (it has a single type); to or from another type it is split first, as
   * set_migratetype_isolate does. Free pages that can merge again afterwards are re-merged.
   */
  setPageblockMigratetype(pfn: number, mt: number): void {
    if (!(Number.isInteger(mt) && mt >= 0 && mt < MIGRATE_TYPES)) throw new ProgramError(`bad migratetype ${mt}`);
    if (!(pfn >= 0 && pfn < this.nrPages)) throw new Error(`setPageblockMigratetype: pfn ${pfn} outside physical memory`);
    const pbo = this.pageblockOrder;
    const start = pfn & ~(this.pbNr - 1);
    const old = this.pbMt[start >> pbo];
    if (old === mt) return;
    const z = this.zoneOf(pfn);
    if ((old === MIGRATE_HIGHATOMIC || mt === MIGRATE_HIGHATOMIC) && (start < z.startPfn || start + this.pbNr > z.endPfn)) {
      // nr_reserved_highatomic is per zone; upstream never reserves a pageblock that crosses a zone boundary.
      throw new ProgramError(`setPageblockMigratetype: pageblock at pfn ${start} crosses a zone boundary, cannot be MIGRATE_HIGHATOMIC`);
    }
    let splitFrom = start;
    let splitEnd = start + this.pbNr;
    const h = this.findHead(start);
    if (h >= 0 && this.pstate[h] === FREE && this.porder[h] > pbo) {
      const hz = this.zoneOf(h);
      const o = this.porder[h];
      if (old < MIGRATE_PCPTYPES && mt < MIGRATE_PCPTYPES) {
        this.retypeLargeFree(hz, h, o, old, mt);
        return;
      }
      // Split the large buddy into pageblocks, each on its pageblock's list.
      this.__del_page_from_free_list(hz, h, o, old);
      for (let p = h; p < h + (1 << o); p += this.pbNr) this.__add_to_free_list(hz, p, pbo, old, false);
      splitFrom = h;
      splitEnd = h + (1 << o);
    }
    if (old === MIGRATE_HIGHATOMIC) z.nr_reserved_highatomic = Math.max(0, z.nr_reserved_highatomic - this.pbNr);
    if (mt === MIGRATE_HIGHATOMIC) z.nr_reserved_highatomic += this.pbNr;
    this.retypePageblockAnyZone(start, old, mt);
    // Pageblock-sized free blocks here and in any split neighbours may merge again.
    for (let p = splitFrom; p < splitEnd; p += this.pbNr) this.remerge(p);
  }

  /** Change the type of a whole free buddy larger than a pageblock (per-cpu types only). */
  retypeLargeFree(z: Zone, h: number, o: number, old: number, mt: number): void {
    this.__del_page_from_free_list(z, h, o, old);
    this.changePageblockRange(h, o, mt);
    this.__free_one_page(z, h, o, mt);
  }

  /** Move the free pages of the pageblock at `start` (whatever their zones) from old to mt, set its type. */
  retypePageblockAnyZone(start: number, old: number, mt: number): void {
    const end = Math.min(start + this.pbNr, this.nrPages);
    for (let p = start; p < end;) {
      const o = this.porder[p];
      if (this.pstate[p] === FREE) {
        const z = this.zoneOf(p);
        this.__del_page_from_free_list(z, p, o, old);
        this.__add_to_free_list(z, p, o, mt, true);
      }
      p += 1 << o;
    }
    this.pbMt[start >> this.pageblockOrder] = mt;
  }

  /**
   * move_freepages_block(): retype the pageblock containing pfn and move its free pages; -1 when the
   * pageblock is not entirely inside z. Re-merges a pageblock-sized free block with its buddies.
   */
  retypePageblock(z: Zone, pfn: number, mt: number): number {
    const start = pfn & ~(this.pbNr - 1);
    if (start < z.startPfn || start + this.pbNr > z.endPfn) return -1;
    const old = this.pbMt[start >> this.pageblockOrder];
    const moved = __move_freepages_block(this, z, start, old, mt);
    this.pbMt[start >> this.pageblockOrder] = mt;
    this.remerge(start);
    return moved;
  }

  /** A free block of pageblock order or more at p: take it off and free it again so it merges. */
  remerge(p: number): void {
    if (this.pstate[p] !== FREE || this.porder[p] < this.pageblockOrder) return;
    const z = this.zoneOf(p);
    const o = this.porder[p];
    const mt = this.pbMt[p >> this.pageblockOrder];
    this.__del_page_from_free_list(z, p, o, mt);
    this.__free_one_page(z, p, o, mt);
  }

  // ---------------------------------------------------------------- reporting and checking

  nrFreeByOrder(z: Zone): Int32Array {
    const out = new Int32Array(this.nOrders);
    for (let o = 0; o < this.nOrders; o++) {
      const li = (z.idx * this.nOrders + o) * MIGRATE_TYPES;
      let n = 0;
      for (let mt = 0; mt < MIGRATE_TYPES; mt++) n += this.lcount[li + mt];
      out[o] = n;
    }
    return out;
  }

  /** /proc/buddyinfo (mm/vmstat.c frag_show_print). */
  buddyinfo(): string {
    let s = '';
    for (const z of this.zones) {
      s += `Node 0, zone ${z.name.padStart(8)} `;
      for (const n of this.nrFreeByOrder(z)) s += `${String(n).padStart(6)} `;
      s += '\n';
    }
    return s;
  }

  /** Allocated pages in z (managed - free - isolated free), by walking the zone. */
  allocatedPages(z: Zone): number {
    let n = 0;
    for (let p = z.startPfn; p < z.endPfn;) {
      const st = this.pstate[p];
      const size = st === TAIL ? 1 : 1 << this.porder[p];
      if (st >= ALLOC) n += size;
      p += size;
    }
    return n;
  }

  /** Consistency of every structure; null when all hold, else the first problem found. */
  checkInvariants(): string | null {
    const n = this.nrPages;
    if (!this.visited || this.visited.length !== n) this.visited = new Uint8Array(n);
    const vis = this.visited;
    vis.fill(0);
    const pbo = this.pageblockOrder;
    for (const z of this.zones) {
      let nrFree = 0;
      let nrCma = 0;
      for (let o = 0; o <= this.maxOrder; o++) {
        for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
          const li = (z.idx * this.nOrders + o) * MIGRATE_TYPES + mt;
          let count = 0;
          let prev = -1;
          for (let p = this.lhead[li]; p >= 0; p = this.next[p]) {
            if (p >= n || count > n) return `zone ${z.name} list o${o} mt${mt}: corrupt link`;
            if (this.prev[p] !== prev) return `zone ${z.name} list o${o} mt${mt}: pfn ${p} has prev ${this.prev[p]}, expected ${prev}`;
            if (this.pstate[p] !== FREE || this.porder[p] !== o) return `zone ${z.name} list o${o} mt${mt}: pfn ${p} is not a free head of order ${o}`;
            if (vis[p]) return `pfn ${p} on two free lists`;
            vis[p] = 1;
            if (p < z.startPfn || p + (1 << o) > z.endPfn) return `free block ${p}/o${o} outside zone ${z.name}`;
            if ((p & ((1 << o) - 1)) !== 0) return `free block ${p}/o${o} misaligned`;
            if (this.pbMt[p >> pbo] !== mt) return `free block ${p}/o${o} on list mt${mt} but its pageblock is mt${this.pbMt[p >> pbo]}`;
            if (o > pbo) {
              for (let b = (p >> pbo) + 1; b < (p + (1 << o)) >> pbo; b++) {
                if (this.pbMt[b] !== mt) return `free block ${p}/o${o} spans pageblocks of different types`;
              }
            }
            prev = p;
            count++;
          }
          if (prev !== this.ltail[li]) return `zone ${z.name} list o${o} mt${mt}: tail ${this.ltail[li]}, last ${prev}`;
          if (count !== this.lcount[li]) return `zone ${z.name} list o${o} mt${mt}: count ${this.lcount[li]}, list has ${count}`;
          if (mt !== MIGRATE_ISOLATE) nrFree += count * 2 ** o;
          if (mt === MIGRATE_CMA) nrCma += count * 2 ** o;
        }
      }
      if (nrFree !== z.nr_free) return `zone ${z.name}: nr_free ${z.nr_free}, lists hold ${nrFree}`;
      if (nrCma !== z.nr_free_cma) return `zone ${z.name}: nr_free_cma ${z.nr_free_cma}, CMA lists hold ${nrCma}`;
      // Walk the zone block by block: every page in exactly one block, tails inside blocks only.
      let covered = 0;
      let freePages = 0;
      let isolatedFree = 0;
      for (let p = z.startPfn; p < z.endPfn;) {
        const st = this.pstate[p];
        if (st === TAIL) return `zone ${z.name}: pfn ${p} belongs to no block`;
        const o = this.porder[p];
        const size = 1 << o;
        if ((p & (size - 1)) !== 0) return `block ${p}/o${o} misaligned`;
        if (p + size > z.endPfn) return `block ${p}/o${o} crosses the end of zone ${z.name}`;
        for (let q = p + 1; q < p + size; q++) if (this.pstate[q] !== TAIL) return `block ${p}/o${o} overlaps block at ${q}`;
        if (st === FREE) {
          if (!vis[p]) return `free block ${p}/o${o} on no list`;
          freePages += size;
          const mt = this.pbMt[p >> pbo];
          if (mt === MIGRATE_ISOLATE) isolatedFree += size;
          // Two free buddies that should have merged.
          const b = p ^ size;
          if (o < this.maxOrder && b >= z.startPfn && b < z.endPfn && this.pstate[b] === FREE && this.porder[b] === o) {
            const bmt = this.pbMt[b >> pbo];
            if (o < pbo || bmt === mt || (mt < MIGRATE_PCPTYPES && bmt < MIGRATE_PCPTYPES)) return `free buddies ${Math.min(p, b)}/o${o} not merged`;
          }
        } else if (st > ALLOC_CONTIG) return `pfn ${p}: bad state ${st}`;
        covered += size;
        p += size;
      }
      if (covered !== z.managed) return `zone ${z.name}: blocks cover ${covered} pages, managed ${z.managed}`;
      if (freePages - isolatedFree !== z.nr_free) return `zone ${z.name}: walk finds ${freePages - isolatedFree} free pages, nr_free ${z.nr_free}`;
      let ha = 0;
      for (let b = z.startPfn >> pbo; b < Math.ceil(z.endPfn / this.pbNr); b++) {
        if (this.pbMt[b] !== MIGRATE_HIGHATOMIC) continue;
        if (b << pbo < z.startPfn || (b + 1) << pbo > z.endPfn) return `HIGHATOMIC pageblock ${b << pbo} crosses a boundary of zone ${z.name}`;
        ha += this.pbNr;
      }
      if (z.nr_reserved_highatomic !== ha) return `zone ${z.name}: nr_reserved_highatomic ${z.nr_reserved_highatomic}, ${ha} pages in HIGHATOMIC pageblocks`;
    }
    return null;
  }

  // ---------------------------------------------------------------- the other files' entry points
  // (fallback.ts, compaction.ts, page-isolation.ts, snapshot.ts), kept as methods for their callers.

  /** reserve_highatomic_pageblock() (fallback.ts). */
  reserveHighatomic(z: Zone, pfn: number): void {
    reserve_highatomic_pageblock(this, z, pfn);
  }

  /** unreserve_highatomic_pageblock() (fallback.ts). */
  unreserveHighatomic(z: Zone, force = true, migratetype = MIGRATE_MOVABLE): boolean {
    return unreserve_highatomic_pageblock(this, z, force, migratetype);
  }

  /** hasFreeBlock() (compaction.ts). */
  hasFreeBlock(z: Zone, order: number): boolean {
    return hasFreeBlock(this, z, order);
  }

  /** compact_zone() (compaction.ts). */
  compact(z: Zone, order: number): number {
    return compact_zone(this, z, order);
  }

  /** migrateBlock() (compaction.ts). */
  migrateBlock(pfn: number, avoidStart: number, avoidEnd: number): number {
    return migrateBlock(this, pfn, avoidStart, avoidEnd);
  }

  /** isolateFreeRange() (page-isolation.ts). */
  isolateFreeRange(start: number, count: number): boolean {
    return isolateFreeRange(this, start, count);
  }

  /** free_contig_range() (page-isolation.ts). */
  freeContigRange(start: number, count: number): void {
    free_contig_range(this, start, count);
  }

  /** snapshot() (snapshot.ts). */
  snapshot(): void {
    snapshot(this);
  }

  /** restore() (snapshot.ts). */
  restore(): void {
    restore(this);
  }

  /** stateHash() (snapshot.ts). */
  stateHash(): number {
    return stateHash(this);
  }
}
