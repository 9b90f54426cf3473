/**
 * Slot-search vectors from the upstream algorithm (docs/kernel-facts.md §1.3-1.7): each expected slot is
 * worked out by hand from swiotlb_search_pool_area's rules, not read back from the code.
 */
import { expect } from 'chai';
import { runIteration } from '../../scheduler';
import { DMA_TO_DEVICE, DMA_FROM_DEVICE, device_register, dma_init, io_tlb_pool, IO_TLB_SEGSIZE, IO_TLB_SIZE, swiotlb_prepare, swiotlb_sizing, swiotlb_state, swiotlb_tbl_map_single, swiotlb_tbl_unmap_single, swiotlb_max_mapping_size } from '../../lib/dma';
import { kernelProgram } from '../support/kernel';

const BASE = 0x4000000; // 64 MiB, a 2 KiB (and 1 MiB) aligned pool start
const NOBOUND = 0xffffffff;
const PAGE = 4096;

/** A fresh pool: nslabs slots in nareas areas. */
const pool = (nslabs: number, nareas: number) => new io_tlb_pool(BASE, nslabs, nareas);
const search = (p: io_tlb_pool, area: number, orig: number, size: number, align = 0, minAlign = 0, boundary = NOBOUND) => p.search(area, orig, size, align, minAlign, boundary, PAGE);

describe('swiotlb: slot search vectors', () => {
  it('initialises free counters per 128-slot segment, clipped at the pool end', () => {
    const p = pool(384, 1);
    expect([p.list[0], p.list[1], p.list[127], p.list[128], p.list[383]]).to.deep.equal([128, 127, 1, 128, 1]);
    expect(p.checkInvariants()).to.equal(null);
  });

  it('takes a run at the area cursor, renumbers the free slots before it, and advances the cursor', () => {
    const p = pool(512, 2); // areas of 256 slots
    p.area_index[1] = 10; // next-fit cursor inside area 1
    const s = search(p, 1, 0, 3000); // 2 slots, below a page: slot alignment only
    expect(s).to.equal(256 + 10);
    expect([p.list[266], p.list[267], p.list[265], p.list[256]]).to.deep.equal([0, 0, 1, 10]);
    expect(p.alloc_size[266]).to.equal(3000);
    expect(p.alloc_size[267]).to.equal(3000 - IO_TLB_SIZE);
    expect(p.area_index[1]).to.equal(12);
    expect(p.area_used[1]).to.equal(2);
    expect(p.checkInvariants()).to.equal(null);
  });

  it('wraps the cursor to 0 (not modulo) when a run does not fit before the area end', () => {
    const p = pool(256, 1);
    p.area_index[0] = 250; // slots 250..255 free (6), 8 are wanted
    expect(search(p, 0, 0, 8 * IO_TLB_SIZE - 100)).to.equal(0);
    expect(p.area_index[0]).to.equal(8);
  });

  it('aligns requests of a page or more to the page when the device has no min_align_mask', () => {
    const p = pool(256, 1);
    p.area_index[0] = 5; // odd slot: 5*2 KiB is not 4 KiB aligned, stride 2 from the first aligned slot
    expect(search(p, 0, 0, PAGE)).to.equal(6);
    expect(search(p, 0, 0, 2048)).to.equal(8); // below a page: any slot, the cursor is at 8
  });

  it('min_align_mask keeps the low address bits: bit 11 of orig picks even or odd slots', () => {
    const p = pool(256, 1);
    // NVMe: min_align_mask 0xfff. Bits below 2 KiB live in the in-slot offset; bit 11 must match.
    const even = search(p, 0, 0x12345, 0x345 + 1000, 0, 0xfff);
    expect(even % 2).to.equal(0);
    const odd = search(p, 0, 0x12945, 0x145 + 1000, 0, 0xfff);
    expect(odd % 2).to.equal(1);
    expect((BASE + odd * IO_TLB_SIZE) & 0x800).to.equal(0x12945 & 0x800);
  });

  it('never lets a run cross a 128-slot segment: the search moves on to the next segment', () => {
    const p = pool(256, 1);
    p.area_index[0] = 60; // slots 60..127 are 68 free slots, 100 are wanted
    expect(search(p, 0, 0, 100 * IO_TLB_SIZE - 10, IO_TLB_SIZE - 1)).to.equal(128);
  });

  it("never lets a run cross the device's segment boundary (iommu_is_span_boundary)", () => {
    const p = pool(256, 1);
    p.area_index[0] = 20; // a 64 KiB boundary is 32 slots; 20 slots from 20 would cross 32
    expect(search(p, 0, 0, 20 * IO_TLB_SIZE - 10, IO_TLB_SIZE - 1, 0, 0xffff)).to.equal(32);
  });

  it('fails at once when the area has fewer free slots than wanted, and after a full scan', () => {
    const p = pool(256, 2); // areas of 128
    expect(search(p, 0, 0, 128 * IO_TLB_SIZE)).to.equal(0); // the whole area 0
    expect(search(p, 0, 0, 100)).to.equal(-1);
    expect(p.lastChecked).to.equal(0); // the used-count fast path, no scan
    // fragmented: every other slot used, a 2-slot run cannot be found anywhere
    const q = pool(128, 1);
    for (let i = 0; i < 64; i++) q.area_index[0] = 2 * i, search(q, 0, 0, 100);
    expect(search(q, 0, 0, 3000)).to.equal(-1);
    expect(q.lastChecked).to.be.at.least(128);
  });

  it('release frees the run and merges it with the free slots around it in its segment', () => {
    const p = pool(256, 1);
    const a = search(p, 0, 0, 5000); // 3 slots at 0
    const b = search(p, 0, 0, 2048); // 1 slot at the cursor, 3 (below a page: no page alignment)
    expect([a, b]).to.deep.equal([0, 3]);
    p.assign(a, 0x100000, 5000, 0);
    p.assign(b, 0x200000, 2048, 0);
    expect(p.release(BASE + a * IO_TLB_SIZE, 0)).to.equal(3);
    expect([p.list[0], p.list[2], p.list[3], p.list[4]]).to.deep.equal([3, 1, 0, 124]);
    expect(p.release(BASE + b * IO_TLB_SIZE, 0)).to.equal(1);
    expect(p.list[0]).to.equal(128);
    expect(p.orig_addr[0]).to.equal(-1);
    expect(p.checkInvariants()).to.equal(null);
  });

  it('pad slots: an alloc_align_mask above 2 KiB (an IOMMU granule) offsets the data slot; release frees the pad too', () => {
    const p = pool(256, 1);
    // min_align_mask 0xfff, alloc_align_mask 0xffff (64 KiB granule): offset = orig & 0xfff = 0xa00,
    // one pad slot (0x800) and 0x200 inside the data slot; the run starts 64 KiB aligned
    const orig = 0x4000a00;
    const off = orig & 0xfff;
    const size = Math.ceil((1000 + off) / 0x10000) * 0x10000;
    p.area_index[0] = 3;
    const s = search(p, 0, orig, size, 0xffff, 0xfff);
    expect(s).to.equal(32); // the first 64 KiB aligned slot after the cursor
    const first = p.assign(s, orig, size, off);
    expect(first - s).to.equal(1);
    expect(p.pad_slots[first]).to.equal(1);
    const tlb = BASE + first * IO_TLB_SIZE + (off & 0x7ff);
    expect(tlb & 0xfff).to.equal(orig & 0xfff);
    expect(p.alloc_size[first]).to.equal(size - off);
    expect(p.release(tlb, tlb & 0xfff & 0x7ff)).to.equal(32);
    expect(p.checkInvariants()).to.equal(null);
  });

  it('snapshot/restore returns to the boot state, copying only what a run touched', () => {
    const p = pool(524288, 8); // 1 GiB
    p.snapshot();
    for (let i = 0; i < 100; i++) search(p, i % 8, 0, 4096);
    p.restore();
    expect(p.used()).to.equal(0);
    expect(p.list[0]).to.equal(128);
    expect(p.checkInvariants()).to.equal(null);
  });
});

describe('swiotlb: boot sizing (docs/kernel-facts.md §1.3, 9)', () => {
  it('areas from the CPU count rounded up to a power of two; slots rounded up to a power of two', () => {
    expect(swiotlb_sizing({ cpus: 6 })).to.include({ nslabs: 32768, nareas: 8 });
    expect(swiotlb_sizing({ cpus: 4, size: 48 << 20 }).nslabs).to.equal(32768); // 24576 -> 32768
    expect(swiotlb_sizing({ cpus: 64, nslabs: 1024 }).nslabs).to.equal(64 * 128); // 128 slots per area
    expect(swiotlb_sizing({ cpus: 3, nareas: 0 }).nareas).to.equal(1);
  });

  it('a CoCo guest gets 6% of memory clamped to [64 MiB, 1 GiB], then a power of two', () => {
    expect(swiotlb_sizing({ cpus: 4, cc: true, memory: 8 * 2 ** 30 }).nslabs).to.equal((512 << 20) / IO_TLB_SIZE); // 491 MiB -> 512
    expect(swiotlb_sizing({ cpus: 4, cc: true, memory: 512 * 2 ** 20 }).nslabs).to.equal((64 << 20) / IO_TLB_SIZE);
    expect(swiotlb_sizing({ cpus: 4, cc: true, memory: 64 * 2 ** 30 }).nslabs).to.equal((1 << 30) / IO_TLB_SIZE);
  });

  it('max mapping size: 256 KiB, less the rounded-up min_align_mask', () => {
    const p = kernelProgram('maxsize', 1, (m) => {
      dma_init(m, { swiotlb: { size: 1 << 20 } });
      const a = device_register(m, { name: 'a' });
      const b = device_register(m, { name: 'nvme0', minAlignMask: 0xfff });
      expect(swiotlb_max_mapping_size(a)).to.equal(256 * 1024);
      expect(swiotlb_max_mapping_size(b)).to.equal(252 * 1024);
    });
    runIteration(p, { iteration: 0 });
  });
});

describe('swiotlb: the map path on a machine', () => {
  const img = swiotlb_prepare(null, { cpus: 4, size: 1 << 20 }); // 512 slots, 4 areas of 128

  it('each CPU starts in its own area', () => {
    const got: number[] = [];
    const p = kernelProgram('areas', 4, (m) => {
      dma_init(m, { swiotlb: img });
      const dev = device_register(m, { name: 'd' });
      for (let c = 0; c < 4; c++) {
        m.kthread(`t${c}`, c, function* (cur) {
          const tlb = yield* swiotlb_tbl_map_single(cur, dev, 0x1000000 + c * PAGE, 256, 0, DMA_TO_DEVICE, 0);
          got[c] = Math.floor((tlb - img.pool.start) / IO_TLB_SIZE / IO_TLB_SEGSIZE);
          yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 256, DMA_FROM_DEVICE, 0);
        });
      }
    });
    for (let it = 0; it < 3; it++) {
      expect(runIteration(p, { iteration: it }).findings).to.deep.equal([]);
      expect(got).to.deep.equal([0, 1, 2, 3]);
    }
  });

  it('a request its area cannot hold goes to the next area, wrapping', () => {
    let area = -1;
    let used = -1;
    const p = kernelProgram('next-area', 4, (m) => {
      dma_init(m, { swiotlb: img });
      const dev = device_register(m, { name: 'd' });
      m.kthread('t3', 3, function* (cur) {
        const small = yield* swiotlb_tbl_map_single(cur, dev, 0x1000000, 256, 0, DMA_TO_DEVICE, 0);
        const big = yield* swiotlb_tbl_map_single(cur, dev, 0x2000000, 256 * 1024, 0, DMA_TO_DEVICE, 0);
        area = Math.floor((big - img.pool.start) / IO_TLB_SIZE / IO_TLB_SEGSIZE);
        used = swiotlb_state(m).mem.total_used;
        yield* swiotlb_tbl_unmap_single(cur, dev, big, 256 * 1024, DMA_FROM_DEVICE, 0);
        yield* swiotlb_tbl_unmap_single(cur, dev, small, 256, DMA_FROM_DEVICE, 0);
      });
    });
    expect(runIteration(p, { iteration: 0 }).findings).to.deep.equal([]);
    expect(area).to.equal(0); // area 3 has 127 free slots, 128 are wanted: (3 + 1) & 3
    expect(used).to.equal(129);
  });
});
