/**
 * The reclaimable memory: the page LRU lists as reclaim sees them, over the pfn space of a
 * PhysMem. Each page is on at most one list; a page's list and slot live in typed arrays, so
 * adding, removing and migrating a page are O(1) and nothing is allocated per page.
 *
 * Lists (simplified from the kernel's active/inactive x anon/file lruvecs, say so in the docs):
 *  - FILE_CLEAN: clean page cache, dropped by reclaim at no I/O cost;
 *  - FILE_DIRTY: dirty page cache, written back only by the flusher or kswapd;
 *  - ANON: anonymous memory of a process, reclaimable only by swapping it out;
 *  - WRITEBACK: pages under writeback (file or anon); freed or made clean at I/O completion.
 * Removal swaps the last entry into the hole, so the order within a list is only roughly LRU:
 * reclaim takes from the end (the most recently added), a simplification of the inactive-list
 * scan.
 */
export const LRU_NONE = 0;
export const LRU_FILE_CLEAN = 1;
export const LRU_FILE_DIRTY = 2;
export const LRU_ANON = 3;
export const LRU_WRITEBACK = 4;
export const NR_LRU_LISTS = 5;

export const LRU_NAMES = ['none', 'file_clean', 'file_dirty', 'anon', 'writeback'];

/** Process memory accounts (mm_struct ids); 0 is "no owner" (page cache). */
export const MAX_MM = 1024;

export class Lru {
  /** Which list each pfn is on (LRU_NONE when not on one). */
  readonly list: Uint8Array;
  /** Its index within that list. */
  readonly slot: Int32Array;
  /** The owning mm_struct id of an anonymous page (0: none). */
  readonly owner: Uint16Array;
  /** The pages of each list, dense. */
  private readonly pages: Int32Array[] = [];
  readonly len = new Int32Array(NR_LRU_LISTS);
  /** Resident anonymous pages and swapped-out pages per mm id (for the OOM killer's badness). */
  readonly rss = new Int32Array(MAX_MM);
  readonly swapents = new Int32Array(MAX_MM);
  /** Swap slots in use (swapped-out pages), against the swap device's capacity. */
  swapUsed = 0;
  /**
   * Anonymous pages whose swap write completed since the last reclaim pass took them. The kernel
   * rotates such a folio to the tail of the inactive list at completion (folio_end_writeback ->
   * folio_rotate_reclaimable, PG_reclaim) and the next shrink_folio_list frees it, counting it in
   * nr_reclaimed. Here the completion frees the page at once (README simplification) and the
   * next pass takes the credit from this count (vmscan.ts shrink_node).
   */
  rotated = 0;
  private saved: { list: Uint8Array; slot: Int32Array; owner: Uint16Array; pages: Int32Array[]; len: Int32Array; rss: Int32Array; swapents: Int32Array; swapUsed: number; rotated: number } | null = null;

  constructor(readonly nrPages: number) {
    this.list = new Uint8Array(nrPages);
    this.slot = new Int32Array(nrPages);
    this.owner = new Uint16Array(nrPages);
    for (let i = 0; i < NR_LRU_LISTS; i++) this.pages.push(new Int32Array(i === LRU_NONE ? 0 : nrPages));
  }

  add(list: number, pfn: number, owner = 0): void {
    if (this.list[pfn] !== LRU_NONE) throw new Error(`lru: pfn ${pfn} is already on the ${LRU_NAMES[this.list[pfn]]} list`);
    const n = this.len[list]++;
    this.pages[list][n] = pfn;
    this.list[pfn] = list;
    this.slot[pfn] = n;
    this.owner[pfn] = owner;
    if (list === LRU_ANON) this.rss[owner]++;
  }

  /** Take `pfn` off its list (no-op when it is on none). */
  remove(pfn: number): void {
    const list = this.list[pfn];
    if (list === LRU_NONE) return;
    const arr = this.pages[list];
    const i = this.slot[pfn];
    const last = --this.len[list];
    const moved = arr[last];
    arr[i] = moved;
    this.slot[moved] = i;
    this.list[pfn] = LRU_NONE;
    if (list === LRU_ANON) this.rss[this.owner[pfn]]--;
  }

  /** Move a page to another list, keeping its owner. */
  move(pfn: number, list: number): void {
    const owner = this.owner[pfn];
    this.remove(pfn);
    this.add(list, pfn, owner);
  }

  /** The page reclaim would look at next on `list`, or -1. */
  peek(list: number): number {
    const n = this.len[list];
    return n === 0 ? -1 : this.pages[list][n - 1];
  }

  /** The i-th page of a list (for scans such as the OOM reaper's). */
  at(list: number, i: number): number {
    return this.pages[list][i];
  }

  /** Migration (compaction, CMA) moved a page: its LRU place follows it. */
  migrate(oldPfn: number, newPfn: number): void {
    const list = this.list[oldPfn];
    if (list === LRU_NONE) return;
    const i = this.slot[oldPfn];
    this.pages[list][i] = newPfn;
    this.list[newPfn] = list;
    this.slot[newPfn] = i;
    this.owner[newPfn] = this.owner[oldPfn];
    this.list[oldPfn] = LRU_NONE;
  }

  /**
   * zone_reclaimable_pages, node-wide: file pages, plus anon when swap has room. Pages under
   * writeback count too: in the kernel they stay on their LRU list until reclaim frees them.
   */
  reclaimable(canSwap: boolean): number {
    return this.len[LRU_FILE_CLEAN] + this.len[LRU_FILE_DIRTY] + this.len[LRU_WRITEBACK] + (canSwap ? this.len[LRU_ANON] : 0);
  }

  snapshot(): void {
    const copy = (a: Int32Array, n: number) => a.slice(0, n);
    this.saved = {
      list: this.list.slice(),
      slot: this.slot.slice(),
      owner: this.owner.slice(),
      pages: this.pages.map((p, i) => copy(p, this.len[i])),
      len: this.len.slice(),
      rss: this.rss.slice(),
      swapents: this.swapents.slice(),
      swapUsed: this.swapUsed,
      rotated: this.rotated,
    };
  }

  restore(): void {
    const s = this.saved;
    if (s === null) throw new Error('lru: restore() without snapshot()');
    this.list.set(s.list);
    this.slot.set(s.slot);
    this.owner.set(s.owner);
    for (let i = 0; i < NR_LRU_LISTS; i++) this.pages[i].set(s.pages[i]);
    this.len.set(s.len);
    this.rss.set(s.rss);
    this.swapents.set(s.swapents);
    this.swapUsed = s.swapUsed;
    this.rotated = s.rotated;
  }
}
