/**
 * The swiotlb's memory and allocator state (v6.6+ split, docs/kernel-facts.md §1.2):
 *
 * - io_tlb_pool: one contiguous buffer of 2 KiB slots split into areas, each with its own
 *   irqsave spinlock, next-fit cursor and used count. Per-slot state lives in typed arrays
 *   (orig_addr, alloc_size, list, pad_slots), so a 1 GiB pool (524,288 slots) is a few MB and
 *   builds in milliseconds. The slot search and release here are the pure algorithm, called
 *   with the area lock held (find.ts takes it).
 * - io_tlb_mem: the allocator a device uses: the default pool, the pools list (newest first),
 *   the growth flags and the debugfs counters (total_used, used_hiwater, transient_nslabs).
 *
 * A boot pool is built once (a scenario's prepare) and restored before every run from a
 * snapshot; the restore copies only the slot range the run touched.
 */
import { ProgramError } from '../../../scheduler';
import type { Machine } from '../../kernel/machine';
import { lockdep_set_class } from '../../kernel/lock';
import { DEFINE_SPINLOCK, type spinlock_t } from '../../kernel/spinlock';
import { INVALID_PHYS_ADDR, IO_TLB_SEGSIZE, IO_TLB_SHIFT, IO_TLB_SIZE, io_tlb_offset } from './constants';

/** Pages backing a dynamically allocated pool (to free it). */
export interface PoolBacking {
  /** Where the buffer came from: the buddy allocator, CMA, the atomic pool, or boot memory. */
  from: 'buddy' | 'cma' | 'atomic_pool' | 'memblock' | 'none';
  pfn: number;
  order: number;
  /** Pages (CMA ranges are not a power of two). */
  pages: number;
  /** The buffer was decrypted (CoCo) and must be re-encrypted before it goes back. */
  decrypted: boolean;
}

export class io_tlb_pool {
  /** Physical address of slot 0, and one past the last byte. */
  readonly start: number;
  readonly end: number;
  readonly nslabs: number;
  readonly nareas: number;
  readonly area_nslabs: number;
  readonly orig_addr: Float64Array;
  readonly alloc_size: Int32Array;
  /** Free slots from i to the next used slot or the end of i's segment (0 = used). */
  readonly list: Uint8Array;
  readonly pad_slots: Uint8Array;
  readonly area_used: Int32Array;
  readonly area_index: Int32Array;
  /** Per-area spinlocks; made per run by attach() (locks belong to a machine). */
  locks: spinlock_t[] = [];
  /** A per-mapping pool made on a miss (CONFIG_SWIOTLB_DYNAMIC); freed at unmap via RCU. */
  transient = false;
  /** Allocated after boot (growth or transient), so freed to the page allocator. */
  late_alloc = false;
  backing: PoolBacking = { from: 'none', pfn: -1, order: 0, pages: 0, decrypted: false };
  /** Freed (a transient pool after its RCU callback): lookups must never hit it again. */
  freed = false;
  /** Slots checked by the last search (a cost figure). */
  lastChecked = 0;
  // Slot range touched since the last snapshot/restore.
  private dirtyLo: number;
  private dirtyHi = 0;
  private snap: { orig: Float64Array; size: Int32Array; list: Uint8Array; pad: Uint8Array; used: Int32Array; index: Int32Array } | null = null;

  /** swiotlb_init_io_tlb_pool: `nslabs` slots at `start`, in `nareas` areas. */
  constructor(start: number, nslabs: number, nareas: number) {
    if (!Number.isSafeInteger(start) || start < 0 || start % IO_TLB_SIZE !== 0) throw new ProgramError(`swiotlb pool start must be a 2 KiB aligned address, got ${start}`);
    if (!Number.isSafeInteger(nslabs) || nslabs <= 0) throw new ProgramError(`swiotlb pool needs a positive slot count, got ${nslabs}`);
    if (!Number.isInteger(nareas) || nareas < 1 || (nareas & (nareas - 1)) !== 0) throw new ProgramError(`swiotlb area count must be a power of two, got ${nareas}`);
    if (nslabs % nareas !== 0) throw new ProgramError(`swiotlb pool of ${nslabs} slots does not split into ${nareas} areas`);
    this.start = start;
    this.nslabs = nslabs;
    this.end = start + nslabs * IO_TLB_SIZE;
    this.nareas = nareas;
    this.area_nslabs = nslabs / nareas;
    this.orig_addr = new Float64Array(nslabs).fill(INVALID_PHYS_ADDR);
    this.alloc_size = new Int32Array(nslabs);
    this.list = new Uint8Array(nslabs);
    this.pad_slots = new Uint8Array(nslabs);
    this.area_used = new Int32Array(nareas);
    this.area_index = new Int32Array(nareas);
    const list = this.list;
    for (let i = 0; i < nslabs; i++) {
      const toSeg = IO_TLB_SEGSIZE - io_tlb_offset(i);
      const toEnd = nslabs - i;
      list[i] = toSeg < toEnd ? toSeg : toEnd;
    }
    this.dirtyLo = nslabs;
  }

  /** Make this run's area locks (one lockdep class for all areas, as spin_lock_init in a loop). */
  attach(m: Machine, name: string): void {
    const locks: spinlock_t[] = [];
    for (let a = 0; a < this.nareas; a++) {
      const l = DEFINE_SPINLOCK(m, `${name}:area${a}`);
      lockdep_set_class(l, '&area->lock');
      locks.push(l);
    }
    this.locks = locks;
  }

  /** The slot holding physical address `addr` (no range check). */
  slotOf(addr: number): number {
    return Math.floor((addr - this.start) / IO_TLB_SIZE);
  }

  contains(addr: number): boolean {
    return addr >= this.start && addr < this.end;
  }

  used(): number {
    let u = 0;
    for (let a = 0; a < this.nareas; a++) u += this.area_used[a];
    return u;
  }

  /**
   * swiotlb_search_pool_area, the slot search (v6.9+ rules, docs/kernel-facts.md §1.5; `rules` 'v6.3' for v6.3-v6.8), called with the area
   * lock held. `tblDmaBase` is the pool's bus address masked by the segment boundary; the
   * caller passes the device's masks. Returns the first slot of the run, or -1. On success the
   * slots are taken: list = 0, alloc_size = remaining bytes from each slot; the free counters
   * of the free slots before the run in the same segment are renumbered; the cursor moves.
   */
  search(area: number, orig: number, allocSize: number, allocAlignMask: number, minAlignMask: number, boundaryMask: number, pageSize: number, rules: 'v6.3' | 'v6.9' = 'v6.9'): number {
    if (rules === 'v6.3') return this.searchV63(area, orig, allocSize, allocAlignMask, minAlignMask, boundaryMask, pageSize);
    const nslots = Math.ceil(allocSize / IO_TLB_SIZE);
    const offset = orig & minAlignMask & (IO_TLB_SIZE - 1);
    let iotlbAlign = minAlignMask;
    if (allocAlignMask === 0 && iotlbAlign === 0 && allocSize >= pageSize) allocAlignMask = pageSize - 1;
    allocAlignMask |= IO_TLB_SIZE - 1;
    iotlbAlign &= ~allocAlignMask;
    const stride = (Math.max(allocAlignMask, iotlbAlign) >>> IO_TLB_SHIFT) + 1;
    // get_max_slots(boundary_mask): slots in one boundary window (a power of two).
    const maxSlots = Math.floor(boundaryMask / IO_TLB_SIZE) + 1;
    const tblDma = andMask(this.start, boundaryMask);
    const shift = Math.floor(tblDma / IO_TLB_SIZE);
    const areaN = this.area_nslabs;
    this.lastChecked = 0;
    if (nslots > areaN - this.area_used[area]) return -1;
    const base = area * areaN;
    const list = this.list;
    const origAlign = orig & iotlbAlign;
    let index = this.area_index[area];
    let checked = 0;
    let slot = -1;
    while (checked < areaN) {
      const s = base + index;
      const tlb = tblDma + s * IO_TLB_SIZE;
      if ((tlb & allocAlignMask) !== 0 || (orig !== 0 && (tlb & iotlbAlign) !== origAlign)) {
        index = index + 1 >= areaN ? 0 : index + 1;
        checked++;
        continue;
      }
      // iommu_is_span_boundary: the run must stay inside one boundary window
      const off = (shift + s) % maxSlots;
      if (off + nslots <= maxSlots && list[s] >= nslots) {
        slot = s;
        break;
      }
      index = index + stride >= areaN ? 0 : index + stride;
      checked += stride;
    }
    this.lastChecked = checked + (slot >= 0 ? 1 : 0);
    if (slot < 0) return -1;
    return this.take(area, slot, index, nslots, allocSize, offset);
  }

  /**
   * The per-area search of v6.3 to v6.8 (swiotlb_do_find_slots / swiotlb_area_find_slots after the
   * v6.3-rc fixes): one mask, min_align_mask | alloc_align_mask, plus the page bits for a request of
   * a page or more, cleared below 2 KiB; a slot whose address differs from orig in those bits is
   * skipped one slot at a time (so a page-sized request of an orig that is not page aligned lands
   * on a slot with orig's bit 11, not on a page boundary: the bug v6.9 fixed); otherwise the
   * stride is that mask's slot count. With orig 0 (swiotlb_alloc) no address test at all.
   */
  private searchV63(area: number, orig: number, allocSize: number, allocAlignMask: number, minAlignMask: number, boundaryMask: number, pageSize: number): number {
    const nslots = Math.ceil(allocSize / IO_TLB_SIZE);
    const offset = orig & minAlignMask & (IO_TLB_SIZE - 1);
    let mask = minAlignMask | allocAlignMask;
    if (allocSize >= pageSize) mask |= pageSize - 1;
    mask &= ~(IO_TLB_SIZE - 1);
    const stride = (mask >>> IO_TLB_SHIFT) + 1;
    const maxSlots = Math.floor(boundaryMask / IO_TLB_SIZE) + 1;
    const tblDma = andMask(this.start, boundaryMask);
    const shift = Math.floor(tblDma / IO_TLB_SIZE);
    const areaN = this.area_nslabs;
    this.lastChecked = 0;
    if (nslots > areaN - this.area_used[area]) return -1;
    const base = area * areaN;
    const list = this.list;
    const origBits = orig & mask;
    let index = this.area_index[area];
    let checked = 0;
    let slot = -1;
    while (checked < areaN) {
      const s = base + index;
      if (orig !== 0 && ((tblDma + s * IO_TLB_SIZE) & mask) !== origBits) {
        index = index + 1 >= areaN ? 0 : index + 1;
        checked++;
        continue;
      }
      const off = (shift + s) % maxSlots;
      if (off + nslots <= maxSlots && list[s] >= nslots) {
        slot = s;
        break;
      }
      index = index + stride >= areaN ? 0 : index + stride;
      checked += stride;
    }
    this.lastChecked = checked + (slot >= 0 ? 1 : 0);
    if (slot < 0) return -1;
    return this.take(area, slot, index, nslots, allocSize, offset);
  }

  /** Take `nslots` from `slot` (found at area index `index`): counters, sizes, cursor, used. */
  private take(area: number, slot: number, index: number, nslots: number, allocSize: number, offset: number): number {
    const list = this.list;
    const areaN = this.area_nslabs;
    const sizes = this.alloc_size;
    for (let i = 0; i < nslots; i++) {
      list[slot + i] = 0;
      sizes[slot + i] = allocSize - (offset + i * IO_TLB_SIZE);
    }
    let count = 0;
    for (let i = slot - 1; io_tlb_offset(i) !== IO_TLB_SEGSIZE - 1 && list[i] !== 0; i--) list[i] = ++count;
    const next = index + nslots;
    this.area_index[area] = next >= areaN ? 0 : next;
    this.area_used[area] += nslots;
    this.touch(slot - count, slot + nslots);
    return slot;
  }

  /**
   * Record the original buffer for a taken run (swiotlb_tbl_map_single after the search):
   * pad slots cover a min_align_mask offset of 2 KiB or more; data slots get orig + k*2 KiB.
   * Returns the first data slot.
   */
  assign(slot: number, orig: number, allocSize: number, fullOffset: number): number {
    const pad = fullOffset >>> IO_TLB_SHIFT;
    const first = slot + pad;
    this.pad_slots[first] = pad;
    const n = Math.ceil(allocSize / IO_TLB_SIZE) - pad;
    for (let i = 0; i < n; i++) this.orig_addr[first + i] = orig + i * IO_TLB_SIZE;
    return first;
  }

  /**
   * swiotlb_release_slots, called with the area lock held: from the data slot of `tlbAddr`
   * (minus its pad slots), free the run and merge it with the free slots around it in the same
   * segment. `offset` is the in-slot offset min_align_mask kept. Returns the slots freed.
   */
  release(tlbAddr: number, offset: number): number {
    const index = this.runStart(tlbAddr, offset);
    const nslots = Math.ceil((this.alloc_size[index] + offset) / IO_TLB_SIZE);
    const list = this.list;
    const segEnd = (Math.floor(index / IO_TLB_SEGSIZE) + 1) * IO_TLB_SEGSIZE;
    let count = index + nslots < segEnd ? list[index + nslots] : 0;
    for (let i = index + nslots - 1; i >= index; i--) {
      list[i] = ++count;
      this.orig_addr[i] = INVALID_PHYS_ADDR;
      this.alloc_size[i] = 0;
      this.pad_slots[i] = 0;
    }
    let i = index - 1;
    for (; io_tlb_offset(i) !== IO_TLB_SEGSIZE - 1 && list[i] !== 0; i--) list[i] = ++count;
    this.area_used[this.areaOf(index)] -= nslots;
    this.touch(i + 1, index + nslots);
    return nslots;
  }

  /** The area a slot belongs to. */
  areaOf(slot: number): number {
    return Math.floor(slot / this.area_nslabs);
  }

  /** The first slot (pad slots included) of the run holding tlbAddr's data slot. */
  runStart(tlbAddr: number, offset: number): number {
    const index = Math.floor((tlbAddr - offset - this.start) / IO_TLB_SIZE);
    return index - this.pad_slots[index];
  }

  private touch(lo: number, hi: number): void {
    if (lo < 0) lo = 0;
    if (lo < this.dirtyLo) this.dirtyLo = lo;
    if (hi > this.dirtyHi) this.dirtyHi = hi;
  }

  /** Remember the current state as the one restore() returns to. */
  snapshot(): void {
    this.snap = {
      orig: this.orig_addr.slice(),
      size: this.alloc_size.slice(),
      list: this.list.slice(),
      pad: this.pad_slots.slice(),
      used: this.area_used.slice(),
      index: this.area_index.slice(),
    };
    this.dirtyLo = this.nslabs;
    this.dirtyHi = 0;
    this.freed = false;
  }

  /** Back to the snapshot, copying only the slots touched since. */
  restore(): void {
    const s = this.snap;
    if (s === null) throw new Error('io_tlb_pool.restore without a snapshot');
    const lo = this.dirtyLo;
    const hi = this.dirtyHi;
    if (hi > lo) {
      this.orig_addr.set(s.orig.subarray(lo, hi), lo);
      this.alloc_size.set(s.size.subarray(lo, hi), lo);
      this.list.set(s.list.subarray(lo, hi), lo);
      this.pad_slots.set(s.pad.subarray(lo, hi), lo);
    }
    this.area_used.set(s.used);
    this.area_index.set(s.index);
    this.dirtyLo = this.nslabs;
    this.dirtyHi = 0;
    this.freed = false;
    this.locks = [];
  }

  /**
   * Internal consistency (tests): every free counter equals the free run it starts, used
   * counts match the slots taken, and a taken slot has list 0.
   */
  checkInvariants(): string | null {
    const list = this.list;
    for (let i = this.nslabs - 1; i >= 0; i--) {
      const segLast = io_tlb_offset(i) === IO_TLB_SEGSIZE - 1 || i === this.nslabs - 1;
      const want = list[i] === 0 ? 0 : segLast ? 1 : list[i + 1] + 1;
      if (list[i] !== 0 && list[i] !== want) return `slot ${i}: list ${list[i]}, expected ${want}`;
    }
    for (let a = 0; a < this.nareas; a++) {
      let taken = 0;
      for (let i = a * this.area_nslabs; i < (a + 1) * this.area_nslabs; i++) if (list[i] === 0) taken++;
      if (taken !== this.area_used[a]) return `area ${a}: used ${this.area_used[a]}, ${taken} slots taken`;
    }
    return null;
  }
}

/** addr & mask for a mask of the form 2^k - 1, exact beyond 32 bits (JavaScript's & is 32-bit). */
export function andMask(addr: number, mask: number): number {
  return addr % (mask + 1);
}
