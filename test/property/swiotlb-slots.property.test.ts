/**
 * Property tests of the swiotlb slot allocator (lib/dma/swiotlb/pool.ts, the model of
 * swiotlb_search_pool_area / swiotlb_release_slots) over random map/unmap sequences, checked
 * against a naive reference that only knows which slots are taken:
 *  - the free-run counters stay consistent (checkInvariants) and the used counts match;
 *  - a found run is free in the reference, inside one area, one 128-slot segment and one
 *    boundary window, and honours alloc_align_mask (v6.9+ rules);
 *  - a one-slot request with no alignment fails only when its area has no free slot;
 *  - releasing every run gives back a pool equal to a fresh one.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { io_tlb_pool } from '../../lib/dma/swiotlb/pool';
import { IO_TLB_SEGSIZE, IO_TLB_SIZE } from '../../lib/dma/swiotlb/constants';

const SEED = 0x5107;
const START = 16 << 20;
const PAGE = 4096;
const B4G = 0xffffffff;

type Rules = 'v6.3' | 'v6.9';
type Op =
  | { op: 'map'; area: number; orig: number; size: number; aam: number; mam: number; boundary: number }
  | { op: 'unmap'; pick: number };

const ops = (nareas: number): fc.Arbitrary<Op[]> =>
  fc.array(
    fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          op: fc.constant('map' as const),
          area: fc.nat({ max: nareas - 1 }),
          orig: fc.oneof(fc.constant(0), fc.nat({ max: 0xfffff }).map((x) => 0x100000 + x)),
          size: fc.oneof(fc.integer({ min: 1, max: IO_TLB_SIZE }), fc.integer({ min: 1, max: 40 * IO_TLB_SIZE }), fc.constant(IO_TLB_SEGSIZE * IO_TLB_SIZE)),
          aam: fc.constantFrom(0, 0xfff, 0x1fff, 0xffff),
          mam: fc.constantFrom(0, 0x7ff),
          boundary: fc.constantFrom(B4G, 0xffff),
        }),
      },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('unmap' as const), pick: fc.nat() }) },
    ),
    { maxLength: 60 },
  );

interface Live {
  slot: number;
  n: number;
  tlb: number;
  offset: number;
}

function runSequence(nslabs: number, nareas: number, rules: Rules, seq: Op[]): void {
  const pool = new io_tlb_pool(START, nslabs, nareas);
  const fresh = new io_tlb_pool(START, nslabs, nareas);
  const areaN = nslabs / nareas;
  const taken = new Uint8Array(nslabs);
  const live: Live[] = [];
  for (const o of seq) {
    if (o.op === 'unmap') {
      if (live.length === 0) continue;
      const [m] = live.splice(o.pick % live.length, 1);
      expect(pool.release(m.tlb, m.offset)).to.equal(m.n);
      for (let i = m.slot; i < m.slot + m.n; i++) taken[i] = 0;
    } else {
      const n = Math.ceil(o.size / IO_TLB_SIZE);
      const slot = pool.search(o.area, o.orig, o.size, o.aam, o.mam, o.boundary, PAGE, rules);
      if (slot >= 0) {
        expect(Math.floor(slot / areaN), 'run starts in the searched area').to.equal(o.area);
        expect(Math.floor((slot + n - 1) / areaN), 'run ends in the searched area').to.equal(o.area);
        expect(Math.floor(slot / IO_TLB_SEGSIZE), 'run inside one segment').to.equal(Math.floor((slot + n - 1) / IO_TLB_SEGSIZE));
        const win = Math.floor(o.boundary / IO_TLB_SIZE) + 1;
        const first = (START / IO_TLB_SIZE + slot) % win;
        expect(first + n, 'run inside one boundary window').to.be.at.most(win);
        for (let i = slot; i < slot + n; i++) expect(taken[i], `slot ${i} handed out twice`).to.equal(0);
        const tlb = START + slot * IO_TLB_SIZE;
        if (rules === 'v6.9' && o.aam !== 0) expect(tlb % (o.aam + 1), 'alloc_align_mask honoured').to.equal(0);
        for (let i = slot; i < slot + n; i++) taken[i] = 1;
        const offset = o.orig & o.mam & (IO_TLB_SIZE - 1);
        const data = pool.assign(slot, o.orig, o.size, offset);
        live.push({ slot, n, tlb: START + data * IO_TLB_SIZE + offset, offset });
      } else if (n === 1 && o.aam === 0 && o.mam === 0 && o.boundary === B4G && o.size < PAGE) {
        let free = 0;
        for (let i = o.area * areaN; i < (o.area + 1) * areaN; i++) free += taken[i] ? 0 : 1;
        expect(free, 'a one-slot request failed with a free slot in its area').to.equal(0);
      }
    }
    expect(pool.checkInvariants()).to.equal(null);
    expect(pool.used()).to.equal(taken.reduce((a, b) => a + b, 0));
  }
  for (const m of live) pool.release(m.tlb, m.offset);
  expect(Array.from(pool.list), 'released pool equals a fresh one').to.deep.equal(Array.from(fresh.list));
  expect(pool.used()).to.equal(0);
}

describe('property: swiotlb slot allocator against a naive reference', () => {
  for (const rules of ['v6.9', 'v6.3'] as const) {
    it(`random map/unmap sequences keep the invariants (${rules} rules)`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom([128, 1], [256, 2], [512, 4], [512, 1]).chain(([nslabs, nareas]) => fc.tuple(fc.constant(nslabs), fc.constant(nareas), ops(nareas))),
          ([nslabs, nareas, seq]) => runSequence(nslabs, nareas, rules, seq),
        ),
        { seed: SEED, numRuns: 300 },
      );
    });
  }

  it('the reference catches a broken release (a planted bug: the free-run renumbering skipped)', () => {
    const broken = new io_tlb_pool(START, 256, 1);
    const orig = broken.release.bind(broken);
    // Plant: release frees the run but leaves the counters of the slots before it alone.
    broken.release = (tlb: number, off: number): number => {
      const idx = broken.runStart(tlb, off);
      const before = Array.from(broken.list.subarray(0, idx));
      const n = orig(tlb, off);
      broken.list.set(before, 0);
      return n;
    };
    const a = broken.search(0, 0, 2048, 0, 0, B4G, PAGE);
    const b = broken.search(0, 0, 2048, 0, 0, B4G, PAGE);
    broken.assign(a, 0, 2048, 0);
    broken.assign(b, 0, 2048, 0);
    broken.release(START + a * IO_TLB_SIZE, 0);
    broken.release(START + b * IO_TLB_SIZE, 0);
    expect(broken.checkInvariants()).to.be.a('string');
  });
});
