import { expect } from 'chai';
import { ProgramError } from '../../scheduler/errors';
import { Rng } from '../../scheduler/rng';
import {
  GIB, MIB, MIGRATE_CMA, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE,
  ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, gfp_migratetype, gfp_zone, max_page_order, pageblock_order,
} from '../../lib/mm/config';
import { PhysMem } from '../../lib/mm/buddy';
import {
  ALLOC_CMA, ALLOC_HIGHATOMIC, ALLOC_MIN_RESERVE, ALLOC_NOFRAGMENT, ALLOC_NO_WATERMARKS, ALLOC_NON_BLOCK, ALLOC_OOM,
  WMARK_LOW, WMARK_MIN, Zone, wmark_pages, zone_watermark_ok,
} from '../../lib/mm/zone';

const GFP_ATOMIC_FLAGS = ALLOC_MIN_RESERVE | ALLOC_NON_BLOCK;

function zone(m: PhysMem, idx: number): Zone {
  const z = m.zoneByIdx(idx);
  if (!z) throw new Error(`no zone ${idx}`);
  return z;
}

/** Allocate order-0 movable pages from z until nr_free == target. */
function drainTo(m: PhysMem, z: Zone, target: number): number[] {
  const got: number[] = [];
  while (z.nr_free > target) {
    const p = m.rmqueue(z, 0, MIGRATE_MOVABLE, 0);
    if (p < 0) throw new Error('drain failed');
    got.push(p);
  }
  return got;
}

function expectProgramError(f: () => unknown, re: RegExp): void {
  let err: unknown;
  try { f(); } catch (e) { err = e; }
  expect(err, 'expected a ProgramError').to.be.instanceOf(ProgramError);
  const msg = (err as Error).message;
  expect(msg).to.match(re);
  expect(msg).to.not.include('\n');
}

describe('mm/physmem: zones and configuration', () => {
  it('512 MiB of 4K pages: DMA [0, 16 MiB) and DMA32 above, max order 10, pageblock order 9', () => {
    const m = new PhysMem();
    expect(m.nrPages).to.equal(131072);
    expect(m.maxOrder).to.equal(10);
    expect(m.pageblockOrder).to.equal(9);
    expect(m.zones.map((z) => [z.name, z.startPfn, z.endPfn])).to.deep.equal([['DMA', 0, 4096], ['DMA32', 4096, 131072]]);
    expect(m.zoneByIdx(ZONE_NORMAL)).to.equal(null);
    expect(m.zoneOf(4095).name).to.equal('DMA');
    expect(m.zoneOf(4096).name).to.equal('DMA32');
    expect(m.buddyinfo()).to.equal(
      'Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      4 \n' +
      'Node 0, zone    DMA32      0      0      0      0      0      0      0      0      0      0    124 \n');
    expect(m.checkInvariants()).to.equal(null);
  });

  it('8 GiB: DMA, DMA32 up to 4 GiB, Normal above', () => {
    const m = new PhysMem({ memory: 8 * GIB });
    expect(m.zones.map((z) => [z.name, z.startPfn, z.endPfn])).to.deep.equal([
      ['DMA', 0, 4096], ['DMA32', 4096, 1048576], ['Normal', 1048576, 2097152]]);
    expect(m.pfnToPhys(1048576)).to.equal(4 * GIB);
    expect(m.physToPfn(4 * GIB + 4095)).to.equal(1048576);
  });

  it('base, dmaLimit 0 and dma32Limit 0 shape the zones', () => {
    const a = new PhysMem({ memory: 4 * GIB, base: 2 * GIB });
    expect(a.zones.map((z) => [z.name, z.startPfn, z.endPfn])).to.deep.equal([['DMA32', 0, 524288], ['Normal', 524288, 1048576]]);
    expect(a.pfnToPhys(0)).to.equal(2 * GIB);
    const b = new PhysMem({ memory: 64 * MIB, dmaLimit: 0 });
    expect(b.zones.map((z) => z.name)).to.deep.equal(['DMA32']);
    const c = new PhysMem({ memory: 64 * MIB, dma32Limit: 0 });
    expect(c.zones.map((z) => [z.name, z.startPfn, z.endPfn])).to.deep.equal([['DMA', 0, 4096], ['Normal', 4096, 16384]]);
    const d = new PhysMem({ memory: 1 * GIB, base: 4 * GIB });
    expect(d.zones.map((z) => z.name)).to.deep.equal(['Normal']);
    expect(d.zoneByIdx(ZONE_DMA)).to.equal(null);
  });

  it('16K and 64K pages use arm64 max orders 11 and 13 with pageblock orders 11 and 13', () => {
    expect([max_page_order(4096), max_page_order(16384), max_page_order(65536)]).to.deep.equal([10, 11, 13]);
    expect([pageblock_order(4096), pageblock_order(16384), pageblock_order(65536)]).to.deep.equal([9, 11, 13]);
    const m16 = new PhysMem({ pageSize: 16384, memory: 256 * MIB });
    expect(m16.maxOrder).to.equal(11);
    expect(m16.zones.map((z) => [z.name, z.startPfn, z.endPfn])).to.deep.equal([['DMA', 0, 1024], ['DMA32', 1024, 16384]]);
    expect(m16.checkInvariants()).to.equal(null);
    // With 64K pages the max-order block is 512 MiB, larger than ZONE_DMA (16 MiB = 256 pages).
    const m64 = new PhysMem({ pageSize: 65536, memory: 1 * GIB });
    expect(m64.maxOrder).to.equal(13);
    expect(m64.zones.map((z) => [z.name, z.startPfn, z.endPfn])).to.deep.equal([['DMA', 0, 256], ['DMA32', 256, 16384]]);
    expect(Array.from(m64.nrFreeByOrder(zone(m64, ZONE_DMA)))).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    expect(m64.checkInvariants()).to.equal(null);
    // Buddies never merge across the zone boundary: allocate and free around it.
    const z = zone(m64, ZONE_DMA);
    const p = m64.rmqueue(z, 0, MIGRATE_MOVABLE, 0);
    m64.free(p, 0);
    expect(m64.checkInvariants()).to.equal(null);
  });

  it('bad options are ProgramErrors with one-line messages', () => {
    expectProgramError(() => new PhysMem({ memory: 0 }), /memory=0.*multiple of the max-order block \(4 MiB\)/);
    expectProgramError(() => new PhysMem({ memory: 5 * MIB }), /memory=5242880/);
    expectProgramError(() => new PhysMem({ pageSize: 8192 as 4096 }), /pageSize=8192/);
    expectProgramError(() => new PhysMem({ pageSize: 65536, memory: 256 * MIB }), /512 MiB/);
    expectProgramError(() => new PhysMem({ base: 4096 }), /base=0x1000/);
    expectProgramError(() => new PhysMem({ dmaLimit: 8 * GIB }), /dmaLimit .* above dma32Limit/);
    expectProgramError(() => new PhysMem({ watermarkScaleFactor: 0 }), /watermarkScaleFactor=0/);
    expectProgramError(() => new PhysMem({ minFreeKbytes: -1 }), /minFreeKbytes=-1/);
    expectProgramError(() => new PhysMem({ memroy: 1 } as never), /unknown PhysMem option memroy/);
    expectProgramError(() => gfp_zone(1 | 4), /__GFP_DMA and __GFP_DMA32/);
    expectProgramError(() => gfp_migratetype(8 | 16), /__GFP_MOVABLE and __GFP_RECLAIMABLE/);
  });

  it('gfp_zone and gfp_migratetype read the zone and mobility bits', () => {
    expect([gfp_zone(0), gfp_zone(1), gfp_zone(4), gfp_zone(2), gfp_zone(0xcc0)]).to.deep.equal([ZONE_NORMAL, ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_NORMAL]);
    expect([gfp_migratetype(0xcc0), gfp_migratetype(0xcc0 | 8), gfp_migratetype(0xcc0 | 16)]).to.deep.equal([MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE]);
  });
});

describe('mm/physmem: watermarks', () => {
  it('512 MiB: min_free_kbytes 2896, DMA 22/27/32, DMA32 701/876/1051, DMA lowmem_reserve 496', () => {
    // lowmem_kbytes = 131072 pages * 4 = 524288; int_sqrt(524288 * 16) = int_sqrt(8388608) = 2896.
    // pages_min = 2896 >> 2 = 724. DMA: 724 * 4096 / 131072 = 22 (22.6); step = max(22 >> 2 = 5,
    // 4096 * 10 / 10000 = 4) = 5 -> 22, 27, 32. DMA32: 724 * 126976 / 131072 = 701 (701.4);
    // step = max(175, 126) = 175 -> 701, 876, 1051. lowmem_reserve: DMA keeps 126976 / 256 = 496 pages
    // back from DMA32 and Normal requests; DMA32 has nothing above it.
    const m = new PhysMem();
    expect(m.minFreeKbytes).to.equal(2896);
    expect(Array.from(zone(m, ZONE_DMA).watermark)).to.deep.equal([22, 27, 32]);
    expect(Array.from(zone(m, ZONE_DMA32).watermark)).to.deep.equal([701, 876, 1051]);
    expect(Array.from(zone(m, ZONE_DMA).lowmem_reserve)).to.deep.equal([0, 496, 496]);
    expect(Array.from(zone(m, ZONE_DMA32).lowmem_reserve)).to.deep.equal([0, 0, 0]);
    expect(wmark_pages(zone(m, ZONE_DMA32), WMARK_LOW)).to.equal(876);
  });

  it('8 GiB: min_free_kbytes 11585, scale-factor steps win in DMA32 and Normal', () => {
    // 2097152 pages * 4 KiB = 8388608 kB; int_sqrt(134217728) = 11585; pages_min = 2896.
    // DMA 4096: min 5 (5.66), step max(1, 4) = 4. DMA32 1044480: min 1442 (1442.4), step max(360, 1044).
    // Normal 1048576: min 1448, step max(362, 1048). lowmem_reserve DMA: 1044480/256 = 4080,
    // (1044480 + 1048576)/256 = 8176; DMA32: 1048576/256 = 4096.
    const m = new PhysMem({ memory: 8 * GIB });
    expect(m.minFreeKbytes).to.equal(11585);
    expect(Array.from(zone(m, ZONE_DMA).watermark)).to.deep.equal([5, 9, 13]);
    expect(Array.from(zone(m, ZONE_DMA32).watermark)).to.deep.equal([1442, 2486, 3530]);
    expect(Array.from(zone(m, ZONE_NORMAL).watermark)).to.deep.equal([1448, 2496, 3544]);
    expect(Array.from(zone(m, ZONE_DMA).lowmem_reserve)).to.deep.equal([0, 4080, 8176]);
    expect(Array.from(zone(m, ZONE_DMA32).lowmem_reserve)).to.deep.equal([0, 0, 4096]);
  });

  it('explicit minFreeKbytes and watermarkScaleFactor', () => {
    const m = new PhysMem({ minFreeKbytes: 8192, watermarkScaleFactor: 100 });
    // pages_min 2048; DMA32 min = 2048 * 126976 / 131072 = 1984; step = max(496, 1269) = 1269.
    expect(Array.from(zone(m, ZONE_DMA32).watermark)).to.deep.equal([1984, 3253, 4522]);
  });

  it('reserve rules: __GFP_HIGH halves min, GFP_ATOMIC a further quarter, OOM, NO_WATERMARKS, lowmem_reserve', () => {
    const m = new PhysMem();
    const z = zone(m, ZONE_DMA32);
    const min = wmark_pages(z, WMARK_MIN); // 701: MIN_RESERVE -> 351, + NON_BLOCK -> 264, OOM -> 351
    drainTo(m, z, 600);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, 0)).to.equal(false);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, ALLOC_NON_BLOCK)).to.equal(false); // GFP_NOWAIT: no min access
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, ALLOC_MIN_RESERVE)).to.equal(true);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, GFP_ATOMIC_FLAGS)).to.equal(true);
    drainTo(m, z, 300);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, ALLOC_MIN_RESERVE)).to.equal(false);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, GFP_ATOMIC_FLAGS)).to.equal(true);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, ALLOC_OOM)).to.equal(false);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, ALLOC_OOM | ALLOC_MIN_RESERVE)).to.equal(true); // 701 -> 351 -> 176
    drainTo(m, z, 200);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, GFP_ATOMIC_FLAGS)).to.equal(false);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, ALLOC_NO_WATERMARKS)).to.equal(true);
    // DMA with its 496-page lowmem_reserve: fine for DMA requests, not for DMA32 ones at the low mark.
    const dma = zone(m, ZONE_DMA);
    drainTo(m, dma, 400);
    expect(zone_watermark_ok(m, dma, 0, wmark_pages(dma, WMARK_LOW), ZONE_DMA, 0)).to.equal(true);
    expect(zone_watermark_ok(m, dma, 0, wmark_pages(dma, WMARK_LOW), ZONE_DMA32, 0)).to.equal(false);
  });

  it('the high-atomic reserve is unusable without ALLOC_RESERVES; high orders need a suitable free block', () => {
    const m = new PhysMem();
    const z = zone(m, ZONE_DMA32);
    const p = m.rmqueue(z, 1, MIGRATE_UNMOVABLE, ALLOC_HIGHATOMIC | GFP_ATOMIC_FLAGS);
    m.reserveHighatomic(z, p);
    expect(z.nr_reserved_highatomic).to.equal(512);
    expect(m.pageblockMigratetype(p)).to.equal(MIGRATE_HIGHATOMIC);
    // Limit: 1% of 126976 = 1269, aligned up to 1536 pages = 3 pageblocks.
    for (let i = 0; i < 5; i++) {
      const q = m.rmqueue(z, 2, MIGRATE_MOVABLE, 0);
      m.reserveHighatomic(z, q);
    }
    expect(z.nr_reserved_highatomic).to.equal(1536);
    expect(m.checkInvariants()).to.equal(null);
    const min = wmark_pages(z, WMARK_MIN);
    drainTo(m, z, min + 1536 + 300);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, 0)).to.equal(true);
    drainTo(m, z, min + 1000);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, 0)).to.equal(false);
    expect(zone_watermark_ok(m, z, 0, min, ZONE_DMA32, ALLOC_HIGHATOMIC)).to.equal(true);
    // An order-9 request passes the order-0 test but finds no order-9 block on a usable list.
    expect(zone_watermark_ok(m, z, 9, min, ZONE_DMA32, ALLOC_HIGHATOMIC)).to.equal(false);
    expect(zone_watermark_ok(m, z, 1, min, ZONE_DMA32, ALLOC_HIGHATOMIC)).to.equal(true);
    // Allocation: plain requests never take the reserve; ALLOC_HIGHATOMIC takes it first.
    const h = m.rmqueue(z, 1, MIGRATE_UNMOVABLE, ALLOC_HIGHATOMIC);
    expect(m.pageblockMigratetype(h)).to.equal(MIGRATE_HIGHATOMIC);
    expect(m.unreserveHighatomic(z)).to.equal(true);
    expect(z.nr_reserved_highatomic).to.equal(1024);
    expect(m.checkInvariants()).to.equal(null);
  });

  it('CMA free pages count only for ALLOC_CMA; MIGRATE_CMA pageblocks feed nr_free_cma', () => {
    const m = new PhysMem({ memory: 64 * MIB });
    const dma = zone(m, ZONE_DMA);
    for (let pfn = 0; pfn < 4096; pfn += 512) m.setPageblockMigratetype(pfn, MIGRATE_CMA);
    expect(dma.nr_free_cma).to.equal(4096);
    expect(dma.nr_free).to.equal(4096);
    expect(m.checkInvariants()).to.equal(null);
    expect(zone_watermark_ok(m, dma, 0, 10, ZONE_DMA, 0)).to.equal(false);
    expect(zone_watermark_ok(m, dma, 3, 10, ZONE_DMA, ALLOC_CMA)).to.equal(true);
    // Only MOVABLE requests with ALLOC_CMA get CMA pages.
    expect(m.rmqueue(dma, 0, MIGRATE_UNMOVABLE, ALLOC_CMA)).to.equal(-1);
    expect(m.rmqueue(dma, 0, MIGRATE_MOVABLE, 0)).to.equal(-1);
    const p = m.rmqueue(dma, 0, MIGRATE_MOVABLE, ALLOC_CMA);
    expect(p).to.be.at.least(0);
    expect(m.isMovable(p)).to.equal(true);
    expect(dma.nr_free_cma).to.equal(4095);
    m.free(p, 0);
    expect(dma.nr_free_cma).to.equal(4096);
    // Back to MOVABLE: the pageblocks merge into max-order blocks again.
    for (let pfn = 0; pfn < 4096; pfn += 512) m.setPageblockMigratetype(pfn, MIGRATE_MOVABLE);
    expect(dma.nr_free_cma).to.equal(0);
    expect(m.nrFreeByOrder(dma)[10]).to.equal(4);
    expect(m.checkInvariants()).to.equal(null);
  });
});

describe('mm/physmem: buddy allocator', () => {
  it('an order-0 allocation from a fresh zone splits a max-order block; freeing merges it back', () => {
    const m = new PhysMem();
    const z = zone(m, ZONE_DMA32);
    const before = m.buddyinfo();
    const p = m.rmqueue(z, 0, MIGRATE_MOVABLE, 0);
    expect(p).to.equal(4096); // boot frees to the tail: the lowest block is used first
    expect(Array.from(m.nrFreeByOrder(z))).to.deep.equal([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 123]);
    expect(z.nr_free).to.equal(126975);
    expect(m.allocatedOrder(p)).to.equal(0);
    m.free(p, 0);
    expect(m.buddyinfo()).to.equal(before);
    expect(m.allocatedOrder(p)).to.equal(-1);
    expect(m.checkInvariants()).to.equal(null);
  });

  it('an unmovable request with no unmovable block claims a whole max-order buddy', () => {
    const m = new PhysMem();
    const z = zone(m, ZONE_DMA32);
    const p = m.rmqueue(z, 0, MIGRATE_UNMOVABLE, 0);
    expect(m.pageblockMigratetype(p)).to.equal(MIGRATE_UNMOVABLE);
    expect(m.pageblockMigratetype(p + 512)).to.equal(MIGRATE_UNMOVABLE);
    expect(m.pageblockMigratetype(p + 1024)).to.equal(MIGRATE_MOVABLE);
    expect(m.freeCount(z, 9, MIGRATE_UNMOVABLE)).to.equal(1);
    // ALLOC_NOFRAGMENT refuses to mix below pageblock order when only small foreign buddies are left.
    const q = m.rmqueue(z, 0, MIGRATE_RECLAIMABLE, ALLOC_NOFRAGMENT);
    expect(m.pageblockMigratetype(q)).to.equal(MIGRATE_RECLAIMABLE); // claimed from a max-order MOVABLE block
    expect(m.checkInvariants()).to.equal(null);
  });

  it('double free and bad order are model bugs (Error naming the pfn)', () => {
    const m = new PhysMem({ memory: 64 * MIB });
    const z = zone(m, ZONE_DMA32);
    const p = m.rmqueue(z, 2, MIGRATE_MOVABLE, 0);
    expect(() => m.free(p, 1)).to.throw(Error, `free of pfn ${p} order 1: bad order, allocated as order 2`);
    expect(() => m.free(p + 1, 0)).to.throw(Error, /not an allocated head/);
    m.free(p, 2);
    expect(() => m.free(p, 2)).to.throw(Error, `free of pfn ${p} order 2: already free (double free)`);
    expect(m.checkInvariants()).to.equal(null);
  });

  it('survives 60k seeded random operations with consistent counts (free + allocated == managed)', function () {
    this.timeout(20000);
    const m = new PhysMem({ memory: 64 * MIB });
    const rng = new Rng(12345);
    const n = m.nrPages;
    // Live allocations with swap-remove; idx[pfn] finds the slot when a page migrates.
    const pfns = new Int32Array(n);
    const orders = new Uint8Array(n);
    const idx = new Int32Array(n).fill(-1);
    let live = 0;
    let allocated = 0;
    const add = (p: number, o: number): void => { pfns[live] = p; orders[live] = o; idx[p] = live; live++; allocated += 1 << o; };
    const remove = (i: number): void => {
      idx[pfns[i]] = -1;
      allocated -= 1 << orders[i];
      live--;
      if (i !== live) { pfns[i] = pfns[live]; orders[i] = orders[live]; idx[pfns[i]] = i; }
    };
    let migrations = 0;
    m.onMigrate = (oldPfn, newPfn) => {
      const i = idx[oldPfn];
      expect(i, `migrated pfn ${oldPfn} unknown`).to.be.at.least(0);
      idx[oldPfn] = -1; pfns[i] = newPfn; idx[newPfn] = i; migrations++;
    };
    const flagsFor = [0, 0, 0, ALLOC_CMA, ALLOC_NOFRAGMENT, ALLOC_HIGHATOMIC | GFP_ATOMIC_FLAGS, ALLOC_OOM];
    // Two CMA pageblocks in DMA32, as a CMA area would have.
    m.setPageblockMigratetype(8192, MIGRATE_CMA);
    m.setPageblockMigratetype(8704, MIGRATE_CMA);
    let contig = -1;
    let fails = 0;
    const OPS = 60000;
    for (let op = 0; op < OPS; op++) {
      const z = m.zones[rng.int(4) === 0 ? 0 : 1];
      const freeFrac = z.nr_free / z.managed;
      const r = rng.double();
      if (r < 0.002) {
        const zz = m.zones[1];
        expect(m.compact(zz, 1 + rng.int(9))).to.be.at.least(-1);
      } else if (r < 0.004 && live > 0) {
        const i = rng.int(live);
        if (m.isMovable(pfns[i])) m.migrateBlock(pfns[i], pfns[i], pfns[i] + 1);
      } else if (r < 0.005) {
        if (contig < 0) {
          const s = 4096 + rng.int(12000);
          if (m.isolateFreeRange(s, 37)) contig = s;
        } else {
          m.freeContigRange(contig, 37);
          contig = -1;
        }
      } else if (r < 0.006) {
        m.unreserveHighatomic(z, rng.int(2) === 0);
      } else if (r < 0.6 - (0.5 - freeFrac) * 0.4 || live === 0) {
        const o = rng.double() < 0.8 ? 0 : 1 + rng.int(rng.double() < 0.9 ? 3 : 10);
        const mt = [MIGRATE_MOVABLE, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE][rng.int(4)];
        const flags = flagsFor[rng.int(flagsFor.length)];
        const p = m.rmqueue(z, o, mt, flags);
        if (p < 0) { fails++; continue; }
        expect(m.allocatedOrder(p)).to.equal(o);
        add(p, o);
        if ((flags & ALLOC_HIGHATOMIC) && o > 0) m.reserveHighatomic(z, p);
      } else {
        const i = rng.int(live);
        m.free(pfns[i], orders[i]);
        remove(i);
      }
      if (op % 5000 === 4999 || op === OPS - 1) {
        const bad = m.checkInvariants();
        expect(bad, `after op ${op}`).to.equal(null);
        let free = 0;
        let alloc = 0;
        for (const zz of m.zones) { free += zz.nr_free; alloc += m.allocatedPages(zz); }
        expect(free + alloc).to.equal(m.nrPages); // no ISOLATE pageblocks in this workload
        expect(alloc).to.equal(allocated + (contig >= 0 ? 37 : 0));
      }
    }
    expect(migrations).to.be.greaterThan(0);
    expect(fails).to.be.lessThan(OPS / 4);
    // Free everything: the machine returns to its boot-time buddyinfo (CMA blocks made MOVABLE again).
    while (live > 0) { m.free(pfns[live - 1], orders[live - 1]); remove(live - 1); }
    if (contig >= 0) m.freeContigRange(contig, 37);
    for (const z of m.zones) while (m.unreserveHighatomic(z)) { /* all of them */ }
    m.setPageblockMigratetype(8192, MIGRATE_MOVABLE);
    m.setPageblockMigratetype(8704, MIGRATE_MOVABLE);
    for (let pb = 0; pb < m.nrPages; pb += 512) m.setPageblockMigratetype(pb, MIGRATE_MOVABLE);
    expect(m.checkInvariants()).to.equal(null);
    expect(m.buddyinfo()).to.equal(new PhysMem({ memory: 64 * MIB }).buddyinfo());
  });
});

describe('mm/physmem: migration, compaction, contig ranges', () => {
  /** Fill DMA32 of a 64 MiB machine with movable pages, then free all but every 64th page. */
  function scattered(): { m: PhysMem; z: Zone; kept: Set<number> } {
    const m = new PhysMem({ memory: 64 * MIB });
    const z = zone(m, ZONE_DMA32);
    const all: number[] = [];
    for (let p = m.rmqueue(z, 0, MIGRATE_MOVABLE, 0); p >= 0; p = m.rmqueue(z, 0, MIGRATE_MOVABLE, 0)) all.push(p);
    const kept = new Set<number>();
    for (const p of all) {
      if (p % 64 === 17) kept.add(p);
      else m.free(p, 0);
    }
    return { m, z, kept };
  }

  it('compact() frees an order-8 range when movable pages are scattered, conserving counts', () => {
    const { m, z, kept } = scattered();
    expect(m.rmqueue(z, 8, MIGRATE_MOVABLE, ALLOC_NOFRAGMENT)).to.equal(-1);
    expect(m.hasFreeBlock(z, 8)).to.equal(false);
    const freeBefore = z.nr_free;
    const moves: [number, number, number][] = [];
    m.onMigrate = (a, b, o) => moves.push([a, b, o]);
    const moved = m.compact(z, 8);
    expect(moved).to.equal(4); // the cheapest 256-page range holds 4 kept pages
    expect(moves.length).to.equal(4);
    for (const [a, b] of moves) {
      expect(kept.has(a)).to.equal(true);
      expect(m.isMovable(b)).to.equal(true);
      expect(m.allocatedOrder(a)).to.equal(-1);
    }
    expect(z.nr_free).to.equal(freeBefore);
    expect(m.allocatedPages(z)).to.equal(kept.size);
    expect(m.checkInvariants()).to.equal(null);
    expect(m.hasFreeBlock(z, 8)).to.equal(true);
    expect(m.rmqueue(z, 8, MIGRATE_MOVABLE, 0)).to.be.at.least(0);
    expect(m.compact(z, 8)).to.equal(4);
  });

  it('compact() gives -1 when every range holds an unmovable page', () => {
    const m = new PhysMem({ memory: 64 * MIB });
    const z = zone(m, ZONE_DMA);
    const all: number[] = [];
    for (let p = m.rmqueue(z, 0, MIGRATE_UNMOVABLE, 0); p >= 0; p = m.rmqueue(z, 0, MIGRATE_UNMOVABLE, 0)) all.push(p);
    for (const p of all) if (p % 128 !== 5) m.free(p, 0);
    const h = m.stateHash();
    expect(m.compact(z, 8)).to.equal(-1);
    expect(m.compact(z, 7)).to.equal(-1);
    expect(m.compact(z, 6)).to.equal(0); // an order-6 block is already free
    expect(m.stateHash()).to.equal(h);
  });

  it('migrateBlock, isolateFreeRange and freeContigRange round trip', () => {
    const m = new PhysMem({ memory: 64 * MIB });
    const z = zone(m, ZONE_DMA32);
    const boot = m.buddyinfo();
    const R = 8192;
    const N = 1000;
    // A fresh zone hands out pages in ascending pfn order: hold the 1000 that land in [R, R+N).
    const pages: number[] = [];
    for (let i = 0; i < 6000; i++) pages.push(m.rmqueue(z, 0, MIGRATE_MOVABLE, 0));
    const held = pages.filter((p) => p >= R && p < R + N);
    for (const p of pages) if (!(p >= R && p < R + N)) m.free(p, 0);
    expect(held.length).to.equal(N);
    const unmov = m.rmqueue(z, 0, MIGRATE_UNMOVABLE, 0);
    const h = m.stateHash();
    expect(m.isolateFreeRange(R, N)).to.equal(false); // allocated pages inside: nothing changes
    expect(m.stateHash()).to.equal(h);
    const info = m.buddyinfo();
    expect(m.isolateFreeRange(R - 5, 3)).to.equal(true);
    expect(m.buddyinfo()).to.not.equal(info);
    m.freeContigRange(R - 5, 3);
    expect(m.buddyinfo()).to.equal(info); // same blocks again (list positions may differ)
    const moved: number[] = [];
    m.onMigrate = (_a, b) => moved.push(b);
    for (const p of held) {
      const t = m.migrateBlock(p, R, R + N);
      expect(t).to.be.at.least(0);
      expect(t < R || t >= R + N).to.equal(true);
    }
    expect(m.migrateBlock(unmov, R, R + N)).to.equal(-1); // not movable
    expect(moved.length).to.equal(N);
    expect(m.checkInvariants()).to.equal(null);
    const freeBefore = z.nr_free;
    expect(m.isolateFreeRange(R, N)).to.equal(true);
    expect(z.nr_free).to.equal(freeBefore - N);
    expect(m.allocatedOrder(R)).to.equal(0);
    expect(m.isMovable(R)).to.equal(false);
    expect(m.checkInvariants()).to.equal(null);
    expect(() => m.freeContigRange(R, N + 1)).to.throw(Error, /pfn 9192 is not a contig-allocated page/);
    m.freeContigRange(R, N);
    expect(z.nr_free).to.equal(freeBefore);
    expect(m.checkInvariants()).to.equal(null);
    for (const p of moved) m.free(p, 0);
    m.free(unmov, 0);
    // The unmovable request claimed a max-order block's pageblocks; types aside, the buddies are whole again.
    for (let pb = 0; pb < m.nrPages; pb += 512) m.setPageblockMigratetype(pb, MIGRATE_MOVABLE);
    expect(m.buddyinfo()).to.equal(boot);
    expect(m.checkInvariants()).to.equal(null);
  });

  it('isolated pageblocks: free pages leave NR_FREE_PAGES and do not merge out', () => {
    const m = new PhysMem({ memory: 64 * MIB });
    const z = zone(m, ZONE_DMA32);
    const free0 = z.nr_free;
    m.setPageblockMigratetype(4096, MIGRATE_ISOLATE);
    expect(z.nr_free).to.equal(free0 - 512);
    expect(m.freeCount(z, 9, MIGRATE_ISOLATE)).to.equal(1);
    expect(m.checkInvariants()).to.equal(null);
    m.setPageblockMigratetype(4096, MIGRATE_MOVABLE);
    expect(z.nr_free).to.equal(free0);
    expect(m.nrFreeByOrder(z)[10]).to.equal(12);
    expect(m.checkInvariants()).to.equal(null);
  });
});

describe('mm/physmem: snapshot and restore', () => {
  it('restore() returns exactly to the snapshot after heavy use', () => {
    const m = new PhysMem({ memory: 64 * MIB });
    const rng = new Rng(7);
    const live: [number, number][] = [];
    const churn = (ops: number): void => {
      for (let i = 0; i < ops; i++) {
        const z = m.zones[rng.int(m.zones.length)];
        if (rng.double() < 0.6 || live.length === 0) {
          const o = rng.int(4);
          const p = m.rmqueue(z, o, rng.int(3), 0);
          if (p >= 0) live.push([p, o]);
        } else {
          const j = rng.int(live.length);
          m.free(live[j][0], live[j][1]);
          live[j] = live[live.length - 1];
          live.pop();
        }
      }
    };
    // The constructor's snapshot: restore() without snapshot() gives the boot state.
    const boot = m.stateHash();
    churn(5000);
    m.restore();
    expect(m.stateHash()).to.equal(boot);
    live.length = 0;
    churn(8000);
    m.snapshot();
    const h = m.stateHash();
    const info = m.buddyinfo();
    const counters = m.zones.map((z) => [z.nr_free, z.nr_free_cma, z.nr_reserved_highatomic]);
    const saved = live.slice();
    churn(20000);
    m.setPageblockMigratetype(8192, MIGRATE_CMA);
    m.compact(m.zones[1], 6);
    expect(m.stateHash()).to.not.equal(h);
    m.restore();
    expect(m.stateHash()).to.equal(h);
    expect(m.buddyinfo()).to.equal(info);
    expect(m.zones.map((z) => [z.nr_free, z.nr_free_cma, z.nr_reserved_highatomic])).to.deep.equal(counters);
    expect(m.checkInvariants()).to.equal(null);
    // The restored state is usable: the allocations live at the snapshot can be freed.
    for (const [p, o] of saved) m.free(p, o);
    expect(m.checkInvariants()).to.equal(null);
  });

  it('a 512 MiB / 4K PhysMem restores in well under 1 ms', () => {
    const m = new PhysMem();
    const z = zone(m, ZONE_DMA32);
    for (let i = 0; i < 20000; i++) m.rmqueue(z, 0, MIGRATE_MOVABLE, 0);
    for (let i = 0; i < 20; i++) m.restore(); // warm up
    const N = 200;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) m.restore();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / N;
    // eslint-disable-next-line no-console
    console.log(`      restore of 512 MiB / 4K: ${(ms * 1000).toFixed(0)} us`);
    expect(ms).to.be.lessThan(1);
  });
});
