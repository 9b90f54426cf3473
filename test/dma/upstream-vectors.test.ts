/**
 * Hand-derived vectors for the swiotlb of each kernel profile (issue 19, item 4). Each vector is
 * a pool state and a request with the answer worked out by hand from the upstream function of
 * that version (the derivation is the comment above it), not from this model's output:
 *
 *   v6.3 .. v6.8 per-area search: swiotlb_do_find_slots (6.3) / swiotlb_area_find_slots (6.6, 6.8)
 *     after the v6.3-rc fixes "fix the deadlock in swiotlb_do_find_slots" and "fix slot alignment
 *     checks": mask = (min_align_mask | alloc_align_mask | (size >= PAGE_SIZE ? PAGE_SIZE-1 : 0))
 *     with the bits below 2 KiB cleared; stride = mask/2K + 1; start at area->index; a slot whose
 *     address differs from orig in the mask's bits is skipped by ONE (only if orig != 0), else a
 *     slot with list >= nslots (and no boundary crossing) is taken, else skip by stride; stop
 *     after area_nslabs slots checked. Found: area->index = wrap(index + nslots).
 *   v6.9+ (the 6.12 profile): alloc_align_mask (raised to PAGE_SIZE-1 for a page or more only
 *     when neither mask is set) joins 2047 and is tested against ZERO; the min_align bits above
 *     the alloc mask are tested against orig; stride from the larger of the two.
 *   swiotlb_release_slots: from index (minus pad_slots in v6.9+) free nr_slots(alloc_size +
 *     offset) slots, each list = count from the next free run (same segment), then renumber the
 *     free slots before it up to the segment start.
 *
 * The pool in every search vector: 512 slots at 16 MiB (so a slot's address bits 11.. are its
 * index bits: 16 MiB is 64 KiB aligned), 2 areas of 256 slots, fresh (list[i] = slots to the end
 * of i's 128-slot segment), 4 KiB pages, boundary mask 4 GiB - 1 unless a vector says otherwise.
 */
import { expect } from 'chai';
import { io_tlb_pool } from '../../lib/dma/swiotlb/pool';
import { swiotlb_profile, type SwiotlbKernel } from '../../lib/dma/swiotlb/profile';
import { swiotlb_align_offset } from '../../lib/dma/swiotlb/find';
import type { device } from '../../lib/dma/device';
import { runIteration } from '../../scheduler';
import { mm_prepare, MIB } from '../../lib/mm';
import { alloc_pages, page_to_phys } from '../../lib/mm/page-alloc';
import { GFP_KERNEL } from '../../lib/kernel/gfp';
import { dma_init } from '../../lib/dma/init';
import { device_register } from '../../lib/dma/state';
import { swiotlb_prepare } from '../../lib/dma/swiotlb/setup';
import { swiotlb_map, swiotlb_tbl_map_single } from '../../lib/dma/swiotlb/map';
import { dma_direct_unmap_page, dma_direct_sync_single_for_cpu } from '../../lib/dma/direct';
import { DMA_ATTR_SKIP_CPU_SYNC, DMA_FROM_DEVICE, DMA_TO_DEVICE, DMA_MAPPING_ERROR } from '../../lib/dma/attrs';
import { memProgram } from '../support/memory';

const START = 16 * MIB;
const PAGE = 4096;
const B4G = 0xffffffff;
const PROFILES: SwiotlbKernel[] = ['3.x-arm', '6.3', '6.6', '6.8', '6.12'];

type Rules = 'v6.3' | 'v6.9';
interface Req {
  area?: number;
  orig: number;
  size: number;
  aam?: number;
  mam?: number;
  boundary?: number;
}
interface Want {
  slot: number;
  /** area->index after the call. */
  index?: number;
  /** area->used after the call. */
  used?: number;
  /** Slots the search checked (its cost). */
  checked?: number;
}
interface SearchVector {
  name: string;
  setup?: (p: io_tlb_pool) => void;
  req: Req;
  /** One answer for both rule sets, or one per set. */
  want: Want | Record<Rules, Want>;
  /** Further checks of the slot arrays after the call. */
  after?: (p: io_tlb_pool, rules: Rules) => void;
  /** The setup fakes a counter, so the slot arrays do not match it (no invariant check). */
  fake?: boolean;
}

const fresh = (): io_tlb_pool => new io_tlb_pool(START, 512, 2);
const search = (p: io_tlb_pool, r: Req, rules: Rules): number => p.search(r.area ?? 0, r.orig, r.size, r.aam ?? 0, r.mam ?? 0, r.boundary ?? B4G, PAGE, rules);

const SEARCH: SearchVector[] = [
  // S1: 2 KiB, no masks, below a page: mask 0 / alloc mask 2047, stride 1; slot 0 has list 128.
  // Cursor 0 + 1 = 1, used 1.
  { name: 'one slot at the cursor', req: { orig: 0x5000, size: 2048 }, want: { slot: 0, index: 1, used: 1, checked: 1 } },
  // S2: one page, page-aligned orig: v6.3 mask 0x800 (page bits above 2K), stride 2, orig bit 11
  // is 0 and so is slot 0's; v6.9 alloc mask 4095 (a page, no masks), slot 0 page aligned. Cursor 2.
  { name: 'one page, page-aligned orig', req: { orig: 0x5000, size: 4096 }, want: { slot: 0, index: 2, used: 2 } },
  // S3: one page, orig with bit 11 set (0x5800): v6.3 compares slot bit 11 with orig's -> slot 0
  // skipped by one, slot 1 (odd) taken, cursor 3; v6.9 wants the slot page aligned (against 0)
  // -> slot 0, cursor 2. The v6.9 fix "Reinstate page-alignment for mappings >= PAGE_SIZE".
  { name: 'one page, orig not page aligned', req: { orig: 0x5800, size: 4096 }, want: { 'v6.3': { slot: 1, index: 3, checked: 2 }, 'v6.9': { slot: 0, index: 2, checked: 1 } } },
  // S4: NVMe min_align 0xfff, orig 0x5a00 (bit 11 set, in-slot 0x200), 0x1200 bytes = 3 slots:
  // both rules end with mask bit 0x800 compared with orig's 0x800 -> odd slot 1, stride 2;
  // alloc_size per slot = 0x1200 - (0x200 + k*2K): 0x1000, 0x800, 0.
  { name: 'min_align 0xfff keeps orig bit 11', req: { orig: 0x5a00, size: 0x1200, mam: 0xfff }, want: { slot: 1, index: 4, used: 3 }, after: (p) => expect([p.alloc_size[1], p.alloc_size[2], p.alloc_size[3]]).to.deep.equal([0x1000, 0x800, 0]) },
  // S5: area 1 searches its own half: base 256, its own cursor.
  { name: 'area 1', req: { area: 1, orig: 0x5000, size: 2048 }, want: { slot: 256, index: 1, used: 1 } },
  // S6: cursor 5, one page aligned: slot 5 is odd -> v6.3 mismatch (+1), v6.9 not page aligned
  // (+1); slot 6 taken; cursor 8.
  { name: 'cursor on an odd slot', setup: (p) => (p.area_index[0] = 5), req: { orig: 0x5000, size: 4096 }, want: { slot: 6, index: 8, checked: 2 } },
  // S7: orig 0 (swiotlb_alloc), alloc_align 0xffff, 8 KiB, cursor 3: v6.3 only derives stride 32
  // from the mask and tests addresses only when orig != 0 -> slot 3 taken as is, cursor 7;
  // v6.9 tests alloc_align against zero -> walks one by one to slot 32 (64 KiB), cursor 36.
  { name: 'swiotlb_alloc with 64 KiB alignment', setup: (p) => (p.area_index[0] = 3), req: { orig: 0, size: 8192, aam: 0xffff }, want: { 'v6.3': { slot: 3, index: 7 }, 'v6.9': { slot: 32, index: 36, checked: 30 } } },
  // S8: the same with a 64 KiB aligned orig: v6.3 now compares bits 11..15 with orig's (all 0) ->
  // slot 32 too.
  { name: '64 KiB alignment, aligned orig', setup: (p) => (p.area_index[0] = 3), req: { orig: 0x20000, size: 8192, aam: 0xffff }, want: { slot: 32, index: 36 } },
  // S9: the area's used count leaves no room for 2 slots -> -1 before any slot is checked.
  { name: 'area full by its used count', setup: (p) => (p.area_used[0] = 255), req: { orig: 0x5000, size: 4096 }, want: { slot: -1, checked: 0 }, fake: true },
  // S10: cursor 126, 3 slots (6 KiB, page-aligned orig, stride 2): slot 126 has list 2 < 3 ->
  // stride to 128, list 128 -> taken, cursor 131; the free run before it is in the previous
  // segment and keeps list[127] = 1.
  { name: 'run does not fit before the segment end', setup: (p) => (p.area_index[0] = 126), req: { orig: 0x5000, size: 6144 }, want: { slot: 128, index: 131, checked: 3 }, after: (p) => expect([p.list[126], p.list[127], p.list[131]]).to.deep.equal([2, 1, 125]) },
  // S11: cursor 2, one 2 KiB slot: slot 2 taken; the free slots before it in the segment are
  // renumbered to end at it: list[0] = 2, list[1] = 1; after it list[3] = 125.
  { name: 'renumbering before the run', setup: (p) => (p.area_index[0] = 2), req: { orig: 0x5000, size: 2048 }, want: { slot: 2, index: 3 }, after: (p) => expect([p.list[0], p.list[1], p.list[2], p.list[3]]).to.deep.equal([2, 1, 0, 125]) },
  // S12: cursor 255 (last slot of area 0), 2 KiB: slot 255 (list 1) taken; cursor 256 wraps to 0.
  { name: 'cursor wraps after the last slot', setup: (p) => (p.area_index[0] = 255), req: { orig: 0x5000, size: 2048 }, want: { slot: 255, index: 0 } },
  // S13: cursor 255, one page aligned: slot 255 is odd -> +1 wraps to index 0 -> slot 0, cursor 2.
  { name: 'mismatch at the last slot wraps', setup: (p) => (p.area_index[0] = 255), req: { orig: 0x5000, size: 4096 }, want: { slot: 0, index: 2, checked: 2 } },
  // S14: min_align 0x7ff (below a slot), orig 0x5123, 0x923 bytes = 2 slots: no mask bit above
  // 2K either way, stride 1 -> slot 0; alloc_size 0x923 - 0x123 = 0x800, then 0.
  { name: 'min_align below a slot', req: { orig: 0x5123, size: 0x923, mam: 0x7ff }, want: { slot: 0, index: 2 }, after: (p) => expect([p.alloc_size[0], p.alloc_size[1]]).to.deep.equal([0x800, 0]) },
  // S15: min_align 0x3fff, orig 0x6a00 (bits 11..13 = 0x2800 -> slot % 8 == 5), 3 slots: both
  // rules test bits 11..13 against orig's with stride 8 -> walks 0..4 by one, slot 5, cursor 8.
  { name: 'min_align 16 KiB', req: { orig: 0x6a00, size: 0x1200, mam: 0x3fff }, want: { slot: 5, index: 8, checked: 6 } },
  // S16: alloc_align 0xfff (an IOMMU granule) and min_align 0xfff, orig 0x5a00, 8 KiB: v6.3 folds
  // both into one mask bit 0x800 compared with orig's (set) -> odd slot 1, cursor 5; v6.9 tests
  // the granule against zero and leaves no min_align bit above it -> slot 0, cursor 4. The v6.9
  // fix "Fix alignment checks when both allocation and DMA masks are present".
  { name: 'alloc_align and min_align together', req: { orig: 0x5a00, size: 0x2000, aam: 0xfff, mam: 0xfff }, want: { 'v6.3': { slot: 1, index: 5 }, 'v6.9': { slot: 0, index: 4 } } },
  // S17: 64 KiB segment boundary (32 slots per window; the pool starts on one), cursor 30, 3
  // slots: slot 30 would cross into the next window -> stride 2 to slot 32, cursor 35.
  { name: 'segment boundary mask', setup: (p) => (p.area_index[0] = 30), req: { orig: 0x5000, size: 6144, boundary: 0xffff }, want: { slot: 32, index: 35, checked: 3 } },
  // S18: 256 KiB (128 slots) of an orig with bit 11 set: v6.3 wants odd slots, and no odd slot
  // starts 128 free slots -> index 0 mismatch (1), then the 128 odd slots by stride 2 (256):
  // 257 checked, not found; v6.9 takes the page-aligned slot 0 (1 checked).
  { name: '128 slots, orig bit 11 set', req: { orig: 0x100800, size: 256 * 1024 }, want: { 'v6.3': { slot: -1, checked: 257 }, 'v6.9': { slot: 0, index: 128, checked: 1 } } },
  // S19: 128 slots at a page-aligned orig -> slot 0, cursor 128; a second one -> slot 128 and the
  // cursor wraps (256 -> 0); the area is used up.
  {
    name: 'two segments fill an area',
    setup: (p) => expect(p.search(0, 0x100000, 256 * 1024, 0, 0, B4G, PAGE)).to.equal(0),
    req: { orig: 0x100000, size: 256 * 1024 },
    want: { slot: 128, index: 0, used: 256 },
  },
  // S20: with area 0 used up (S19's two runs first), a 2 KiB request -> -1 at once; area 1 untouched.
  {
    name: 'a used-up area refuses',
    setup: (p) => {
      p.search(0, 0x100000, 256 * 1024, 0, 0, B4G, PAGE);
      p.search(0, 0x100000, 256 * 1024, 0, 0, B4G, PAGE);
    },
    req: { orig: 0x5000, size: 2048 },
    want: { slot: -1, checked: 0 },
    after: (p) => expect([p.area_used[1], p.area_index[1]]).to.deep.equal([0, 0]),
  },
  // S21: 129 slots (more than a segment) never fit a run: every list value is at most 128.
  // Both rules check the whole area and fail (v6.3 stride 2 from slot 0: 128 checks of 2 = 256).
  { name: 'more than a segment', req: { orig: 0x100000, size: 129 * 2048 }, want: { slot: -1, checked: 256 } },
  // S22: two areas keep separate cursors: area 0 takes slot 0 first (setup), area 1 slot 256.
  { name: 'areas keep their own cursors', setup: (p) => p.search(0, 0x5000, 2048, 0, 0, B4G, PAGE), req: { area: 1, orig: 0x5000, size: 2048 }, want: { slot: 256, index: 1 }, after: (p) => expect([p.area_index[0], p.area_used[0]]).to.deep.equal([1, 1]) },
  // S23: S4's NVMe request with the cursor already on odd slot 1: taken at once (1 checked), cursor 4.
  { name: 'min_align 0xfff, cursor on a matching slot', setup: (p) => (p.area_index[0] = 1), req: { orig: 0x5a00, size: 0x1200, mam: 0xfff }, want: { slot: 1, index: 4, checked: 1 } },
  // S24: the same from cursor 2: slot 2 (even) mismatches -> +1 -> slot 3 (odd, list 125) taken, cursor 6.
  { name: 'min_align 0xfff, cursor on a mismatching slot', setup: (p) => (p.area_index[0] = 2), req: { orig: 0x5a00, size: 0x1200, mam: 0xfff }, want: { slot: 3, index: 6, checked: 2 } },
  // S25: 2 KiB (below a page) of an orig with bit 11 set and no masks: no alignment at all either
  // way (v6.3 mask 0; v6.9 alloc mask 2047 only) -> slot 0.
  { name: 'below a page, no alignment', req: { orig: 0x5800, size: 2048 }, want: { slot: 0, index: 1, checked: 1 } },
  // S26: alloc_align 8 KiB, 8 KiB-aligned orig, 2 KiB, cursor 1: v6.3 mask 0x1800 vs orig's 0 ->
  // slots 1..3 mismatch by one, slot 4; v6.9 alloc mask 0x1fff against 0 -> the same slot 4.
  { name: '8 KiB alloc_align, aligned orig', setup: (p) => (p.area_index[0] = 1), req: { orig: 0x4000, size: 2048, aam: 0x1fff }, want: { slot: 4, index: 5, checked: 4 } },
  // S27: the same with orig 0x4800 from cursor 0: v6.3 compares bits 11..12 with orig's 0x800 ->
  // slot 1 (not 8 KiB aligned!); v6.9 aligns to zero -> slot 0.
  { name: '8 KiB alloc_align, orig bit 11 set', req: { orig: 0x4800, size: 2048, aam: 0x1fff }, want: { 'v6.3': { slot: 1, index: 2, checked: 2 }, 'v6.9': { slot: 0, index: 1, checked: 1 } } },
  // S28: min_align 0xfff, 2 KiB (below a page), orig 0x5a00: bit 11 compared with orig's in both
  // (v6.3 mask 0x800; v6.9 min_align bits above 2047) -> slot 1, cursor 2.
  { name: 'min_align 0xfff below a page', req: { orig: 0x5a00, size: 0x800, mam: 0xfff }, want: { slot: 1, index: 2, checked: 2 } },
];

interface ReleaseVector {
  name: string;
  run: (p: io_tlb_pool, rules: Rules) => void;
}

const RELEASE: ReleaseVector[] = [
  // R1: S11's slot 2 released: count from list[3] = 125 -> list[2] = 126, then slots 1, 0 become
  // 127, 128: the segment is whole again, used back to 0.
  {
    name: 'release merges both sides',
    run: (p, r) => {
      p.area_index[0] = 2;
      const s = p.search(0, 0x5000, 2048, 0, 0, B4G, PAGE, r);
      p.assign(s, 0x5000, 2048, 0);
      expect(p.release(START + s * 2048, 0)).to.equal(1);
      expect([p.list[0], p.list[1], p.list[2], p.list[3], p.area_used[0]]).to.deep.equal([128, 127, 126, 125, 0]);
    },
  },
  // R2: slots 0 and 1 taken one after the other; releasing slot 0 first: list[1] is 0 (used) so
  // list[0] = 1; then slot 1: count from list[2] = 126 -> 127, merging back list[0] = 128.
  {
    name: 'release next to a used slot, then the neighbour',
    run: (p, r) => {
      const a = p.search(0, 0x5000, 2048, 0, 0, B4G, PAGE, r);
      const b = p.search(0, 0x6000, 2048, 0, 0, B4G, PAGE, r);
      expect([a, b]).to.deep.equal([0, 1]);
      p.assign(a, 0x5000, 2048, 0);
      p.assign(b, 0x6000, 2048, 0);
      p.release(START, 0);
      expect([p.list[0], p.list[1]]).to.deep.equal([1, 0]);
      p.release(START + 2048, 0);
      expect([p.list[0], p.list[1], p.list[2]]).to.deep.equal([128, 127, 126]);
    },
  },
  // R3: a run ending at its segment's end (slots 126, 127) releases with count 0 from beyond the
  // segment: list[127] = 1, list[126] = 2, and the free slots before renumber up to 128 at slot 0.
  {
    name: 'release at a segment end does not merge across',
    run: (p, r) => {
      p.area_index[0] = 126;
      const s = p.search(0, 0x5000, 4096, 0, 0, B4G, PAGE, r);
      expect(s).to.equal(126);
      p.assign(s, 0x5000, 4096, 0);
      expect([p.list[0], p.list[125], p.list[128]]).to.deep.equal([126, 1, 128]);
      p.release(START + 126 * 2048, 0);
      expect([p.list[0], p.list[126], p.list[127], p.list[128]]).to.deep.equal([128, 2, 1, 128]);
    },
  },
  // R4: S16's NVMe-behind-IOMMU mapping (orig 0x5a00, 8 KiB, alloc_align 0xfff, min_align
  // 0xfff). v6.9: the full offset orig & 0xfff & 0xfff = 0xa00 is one pad slot + 0x200; data
  // starts at slot 1 (pad_slots[1] = 1), tlb = start + 0x800 + 0x200; release goes back one pad
  // slot to 0 and frees nr_slots(alloc_size[0] + 0x200) = nr_slots(0x1e00 + 0x200) = 4 slots.
  // v6.3: offset 0x200 only, the run starts at the slot found (1), tlb = start + 0x800 + 0x200,
  // release frees slots 1..4 (the same 4).
  {
    name: 'release with pad slots (v6.9) or without',
    run: (p, r) => {
      const s = p.search(0, 0x5a00, 0x2000, 0xfff, 0xfff, B4G, PAGE, r);
      const full = r === 'v6.9' ? 0xa00 : 0x200;
      const first = p.assign(s, 0x5a00, 0x2000, full);
      const tlb = START + first * 2048 + 0x200;
      expect(tlb).to.equal(START + 0x800 + 0x200);
      expect(p.release(tlb, 0x200)).to.equal(4);
      expect(p.area_used[0]).to.equal(0);
      expect(p.checkInvariants()).to.equal(null);
    },
  },
];

/** A device with only the fields swiotlb_align_offset reads. */
const devWith = (mam: number): device => ({ min_align_mask: mam }) as unknown as device;

interface OffsetVector {
  name: string;
  mam: number;
  aam: number;
  orig: number;
  /** Offset with v6.9's alloc_align bits (pad slots) and without (v6.3..v6.8). */
  want: { pad: number; nopad: number };
}

// swiotlb_align_offset: v6.9+ addr & min_align & (alloc_align | 2047); before, addr & min_align & 2047.
const OFFSETS: OffsetVector[] = [
  // O1: no min_align: nothing is kept.
  { name: 'no min_align', mam: 0, aam: 0xfff, orig: 0x5a34, want: { pad: 0, nopad: 0 } },
  // O2: NVMe 0xfff without alloc_align: only the in-slot bits 0x234 of 0x5a34 (2047 mask).
  { name: 'NVMe, no alloc_align', mam: 0xfff, aam: 0, orig: 0x5a34, want: { pad: 0x234, nopad: 0x234 } },
  // O3: NVMe with a 4 KiB granule: v6.9 keeps 0xa34 (a pad slot + 0x234); before, 0x234.
  { name: 'NVMe with a granule', mam: 0xfff, aam: 0xfff, orig: 0x5a34, want: { pad: 0xa34, nopad: 0x234 } },
  // O4: min_align 0x3f (64 B): 0x5a34 & 0x3f = 0x34 either way.
  { name: '64-byte min_align', mam: 0x3f, aam: 0xfff, orig: 0x5a34, want: { pad: 0x34, nopad: 0x34 } },
];

interface FlagVector {
  name: string;
  want: Record<SwiotlbKernel, unknown>;
  get: (k: SwiotlbKernel) => unknown;
}

// The version switches, from the sources of each release (profile.ts cites them).
const FLAGS: FlagVector[] = [
  // F1: CONFIG_SWIOTLB_DYNAMIC (mem->pools, transient pools, dyn_alloc) first shipped in v6.6.
  { name: 'growth and transient pools exist', get: (k) => swiotlb_profile(k).dynamic, want: { '3.x-arm': false, '6.3': false, '6.6': true, '6.8': true, '6.12': true } },
  // F2: v6.6 swiotlb_find_slots walks each pool's areas (swiotlb_pool_find_slots per pool); the
  // area-outer loop came in v6.8; 6.3 has one pool (the order makes no difference).
  { name: 'search order', get: (k) => swiotlb_profile(k).searchOrder, want: { '3.x-arm': 'pool-major', '6.3': 'pool-major', '6.6': 'pool-major', '6.8': 'area-major', '6.12': 'area-major' } },
  // F3: pad slots: the offset keeps alloc_align bits from v6.9.
  { name: 'pad slots', get: (k) => swiotlb_profile(k).padSlots, want: { '3.x-arm': false, '6.3': false, '6.6': false, '6.8': false, '6.12': true } },
  // F4: a request over 128 slots: v6.6/v6.8 go on to schedule_work + a transient pool; 6.12 stops.
  { name: 'oversize stops before growth', get: (k) => swiotlb_profile(k).oversizeEarlyExit, want: { '3.x-arm': false, '6.3': false, '6.6': false, '6.8': false, '6.12': true } },
  // F5: v6.12 passes the pool from swiotlb_find_pool down to the unmap and sync helpers.
  { name: 'pool passed down', get: (k) => swiotlb_profile(k).poolPassedDown, want: { '3.x-arm': false, '6.3': false, '6.6': false, '6.8': false, '6.12': true } },
  // F6: swiotlb_bounce accepts tlb_offset < orig offset (later slots of a min_align mapping) from v6.9.
  { name: 'negative sync offset copies', get: (k) => swiotlb_profile(k).negativeSyncOffset, want: { '3.x-arm': false, '6.3': false, '6.6': false, '6.8': false, '6.12': true } },
];

describe('swiotlb vectors per kernel profile (hand-derived from upstream)', () => {
  const counted: Record<string, number> = {};
  for (const k of PROFILES) {
    const rules = swiotlb_profile(k).areaRules;
    describe(`kernel ${k} (per-area rules ${rules})`, () => {
      for (const v of SEARCH) {
        it(`search: ${v.name}`, () => {
          const p = fresh();
          v.setup?.(p);
          const w: Want = 'slot' in v.want ? (v.want as Want) : (v.want as Record<Rules, Want>)[rules];
          const area = v.req.area ?? 0;
          const slot = search(p, v.req, rules);
          expect(slot, 'slot').to.equal(w.slot);
          if (w.index !== undefined) expect(p.area_index[area], 'area->index').to.equal(w.index);
          if (w.used !== undefined) expect(p.area_used[area], 'area->used').to.equal(w.used);
          if (w.checked !== undefined) expect(p.lastChecked - (w.slot >= 0 ? 1 : 0), 'slots checked').to.equal(w.checked - (w.slot >= 0 ? 1 : 0));
          v.after?.(p, rules);
          if (!v.fake) expect(p.checkInvariants()).to.equal(null);
          counted[k] = (counted[k] ?? 0) + 1;
        });
      }
      for (const v of RELEASE) {
        it(`release: ${v.name}`, () => {
          v.run(fresh(), rules);
          counted[k] = (counted[k] ?? 0) + 1;
        });
      }
      for (const v of OFFSETS) {
        it(`offset: ${v.name}`, () => {
          const pad = swiotlb_profile(k).padSlots;
          expect(swiotlb_align_offset(devWith(v.mam), v.aam, v.orig, pad)).to.equal(pad ? v.want.pad : v.want.nopad);
          counted[k] = (counted[k] ?? 0) + 1;
        });
      }
      for (const v of FLAGS) {
        it(`switch: ${v.name}`, () => {
          expect(v.get(k)).to.equal(v.want[k]);
          counted[k] = (counted[k] ?? 0) + 1;
        });
      }
    });
  }

  describe('end to end: lookups per unmap and sync, partial sync, oversize requests', function () {
    this.timeout(60_000);

    /** One device, one mapping of `size` bytes, then `op`; the run's counters. */
    function run(kernel: SwiotlbKernel, policy: string, dir: number, op: 'unmap' | 'unmap-skip' | 'sync', size = 8192): Record<string, number> {
      const image = mm_prepare({ memory: 256 * MIB });
      const sw = swiotlb_prepare(image, { cpus: 1, size: MIB, force: true, kernel, policy });
      const p = memProgram(`vec-${kernel}-${policy}-${dir}-${op}`, { image, cpus: 1 }, (m) => {
        dma_init(m, { swiotlb: sw });
        const dev = device_register(m, { name: 'sda' });
        m.kthread('t', 0, function* (cur) {
          const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 2));
          const tlb = yield* swiotlb_map(cur, dev, buf, size, dir, 0);
          expect(tlb).to.not.equal(DMA_MAPPING_ERROR);
          if (op === 'sync') yield* dma_direct_sync_single_for_cpu(cur, dev, tlb, size, dir);
          else yield* dma_direct_unmap_page(cur, dev, tlb, size, dir, op === 'unmap-skip' ? DMA_ATTR_SKIP_CPU_SYNC : 0);
        });
      });
      const r = runIteration(p, { iteration: 0 });
      expect(r.findings.map((f) => f.headline)).to.deep.equal([]);
      return r.metrics.counters ?? {};
    }

    // L1-L3: static pool (6.3): is_swiotlb_buffer is a range check in the CPU sync and again in
    // the unmap; swiotlb_bounce and swiotlb_release_slots index the one pool directly: 2 lookups,
    // 1 with DMA_ATTR_SKIP_CPU_SYNC (the sync is skipped), either direction.
    it('6.3 static: 2 lookups per unmap (FROM and TO), 1 with SKIP_CPU_SYNC', () => {
      expect(run('6.3', 'static', DMA_FROM_DEVICE, 'unmap')['swiotlb.find_calls']).to.equal(2);
      expect(run('6.3', 'static', DMA_TO_DEVICE, 'unmap')['swiotlb.find_calls']).to.equal(2);
      expect(run('6.3', 'static', DMA_FROM_DEVICE, 'unmap-skip')['swiotlb.find_calls']).to.equal(1);
    });
    // L4-L6: v6.6 with CONFIG_SWIOTLB_DYNAMIC: FROM_DEVICE: is_swiotlb_buffer (sync), swiotlb_bounce,
    // is_swiotlb_buffer (unmap), swiotlb_del_transient, swiotlb_release_slots = 5; TO_DEVICE: the
    // sync does not bounce = 4; SKIP_CPU_SYNC: the last three = 3. v6.8 is the same.
    for (const k of ['6.6', '6.8'] as const) {
      it(`${k} upstream: 5 lookups per FROM_DEVICE unmap, 4 per TO_DEVICE, 3 with SKIP_CPU_SYNC`, () => {
        expect(run(k, 'upstream', DMA_FROM_DEVICE, 'unmap')['swiotlb.find_calls']).to.equal(5);
        expect(run(k, 'upstream', DMA_TO_DEVICE, 'unmap')['swiotlb.find_calls']).to.equal(4);
        expect(run(k, 'upstream', DMA_FROM_DEVICE, 'unmap-skip')['swiotlb.find_calls']).to.equal(3);
      });
    }
    // L7-L9: v6.12: swiotlb_find_pool once in swiotlb_sync_single_for_cpu, once in
    // swiotlb_tbl_unmap_single, the pool passed down: 2; 1 with SKIP_CPU_SYNC.
    it('6.12 upstream: 2 lookups per unmap, 1 with SKIP_CPU_SYNC', () => {
      expect(run('6.12', 'upstream', DMA_FROM_DEVICE, 'unmap')['swiotlb.find_calls']).to.equal(2);
      expect(run('6.12', 'upstream', DMA_TO_DEVICE, 'unmap')['swiotlb.find_calls']).to.equal(2);
      expect(run('6.12', 'upstream', DMA_FROM_DEVICE, 'unmap-skip')['swiotlb.find_calls']).to.equal(1);
    });
    // L10: the RFC on 6.3 with a dynamic buffer (8 KiB, no masks: swiotlb_dyn_map accepts it):
    // FROM_DEVICE walks the index under dyn_lock in is_swiotlb_buffer (sync), swiotlb_bounce,
    // is_swiotlb_buffer (unmap) and swiotlb_dyn_unmap = 4; TO_DEVICE skips the bounce = 3.
    it('6.3 rfc-dynamic: 4 locked index walks per FROM_DEVICE unmap, 3 per TO_DEVICE', () => {
      expect(run('6.3', 'rfc-dynamic', DMA_FROM_DEVICE, 'unmap')['swiotlb.index_lookups']).to.equal(4);
      expect(run('6.3', 'rfc-dynamic', DMA_TO_DEVICE, 'unmap')['swiotlb.index_lookups']).to.equal(3);
    });

    /**
     * A partial sync inside a min_align mapping: NVMe-like min_align 0xfff, orig at in-page
     * offset 0x600, 8 KiB mapped. The sync asks for the bytes at tlb + 0x200 (in the second slot:
     * (tlb + 0x200) & 2047 = 0x000 < orig's offset 0x600). v6.9 swiotlb_bounce: tlb_offset =
     * 0 - 0x600 < 0 is allowed and the copy starts 0x600 bytes before slot 1's orig, i.e. at
     * orig + 0x200: 256 bytes copied. Before v6.9: "Access before mapping start" WARN, nothing copied.
     */
    function partial(kernel: SwiotlbKernel): { bytes: number; warned: string[] } {
      const image = mm_prepare({ memory: 256 * MIB });
      const sw = swiotlb_prepare(image, { cpus: 1, size: MIB, force: true, kernel, policy: 'static' });
      const p = memProgram(`vec-partial-${kernel}`, { image, cpus: 1 }, (m) => {
        dma_init(m, { swiotlb: sw });
        const dev = device_register(m, { name: 'nvme0', minAlignMask: 0xfff });
        m.kthread('t', 0, function* (cur) {
          const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 2)) + 0x600;
          const tlb = yield* swiotlb_tbl_map_single(cur, dev, buf, 8192, 0, DMA_FROM_DEVICE, 0);
          yield* dma_direct_sync_single_for_cpu(cur, dev, tlb + 0x200, 256, DMA_FROM_DEVICE);
        });
      });
      const r = runIteration(p, { iteration: 0 });
      // the map itself fills the whole 8 KiB bounce buffer; what the sync added comes on top
      const bytes = (r.metrics.counters?.['swiotlb.bounce_bytes'] ?? 0) - 8192;
      return { bytes, warned: r.findings.filter((f) => /Access before mapping start/.test(f.text)).map(() => 'access_before_start') };
    }
    // P1/P2: per the derivation above.
    it('partial sync inside a min_align mapping: 6.12 copies 256 bytes; 6.6 and 6.8 warn and copy nothing', () => {
      expect(partial('6.12')).to.deep.equal({ bytes: 256, warned: [] });
      for (const k of ['6.3', '6.6', '6.8'] as const) expect(partial(k), k).to.deep.equal({ bytes: 0, warned: ['access_before_start'] });
    });

    /**
     * An oversize request (300 KiB, 150 slots) under `upstream`: the pools fail it (no run of 150).
     * v6.6/v6.8 swiotlb_find_slots then schedule_work(dyn_alloc) and allocate a transient pool of
     * 150 slots with GFP_NOWAIT, whose search fails too (list values stop at 128) -> one transient
     * failure, the pool freed; v6.12 returns before growth: no transient attempt.
     */
    function oversize(kernel: SwiotlbKernel): Record<string, number> {
      const image = mm_prepare({ memory: 256 * MIB });
      const sw = swiotlb_prepare(image, { cpus: 1, size: MIB, force: true, kernel, policy: 'upstream' });
      const p = memProgram(`vec-oversize-${kernel}`, { image, cpus: 1 }, (m) => {
        dma_init(m, { swiotlb: sw });
        const dev = device_register(m, { name: 'sda' });
        m.kthread('t', 0, function* (cur) {
          const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 7));
          expect(yield* swiotlb_map(cur, dev, buf, 300 * 1024, DMA_TO_DEVICE, 0)).to.equal(DMA_MAPPING_ERROR);
        });
      });
      const r = runIteration(p, { iteration: 0 });
      return { ...(r.metrics.counters ?? {}) };
    }
    // G1/G2: per the derivation above (the growth worker runs once on 6.6/6.8: one grown pool).
    it('oversize request: 6.6/6.8 kick growth and try a transient pool; 6.12 stops before', () => {
      for (const k of ['6.6', '6.8'] as const) {
        const c = oversize(k);
        expect(c['swiotlb.transient_failures'], k).to.equal(1);
        expect(c['swiotlb.grow_pools'], k).to.equal(1);
      }
      const c = oversize('6.12');
      expect(c['swiotlb.transient_failures'] ?? 0).to.equal(0);
      expect(c['swiotlb.grow_pools'] ?? 0).to.equal(0);
    });
  });

  after(() => {
    // at least 40 table vectors per profile (the end-to-end cases above come on top)
    for (const k of PROFILES) expect(counted[k] ?? 0, k).to.be.at.least(40);
  });
});
