import { expect } from 'chai';
import { MIB, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE, ZONE_DMA32 } from '../../lib/mm/config';
import { age } from '../../lib/mm/fragmenter';
import { PhysMem } from '../../lib/mm/buddy';
import { WMARK_MIN, Zone } from '../../lib/mm/zone';

// A 64 MiB machine: DMA32 is 12288 pages = 48 order-8 blocks. Defaults of age(): fill to 98%,
// reclaim to 85%, 8% unmovable / 4% reclaimable allocations, 2% of those long-lived, up to 10%.
// Measured means over seeds 1..5: 48 order-8 successes unaged, 39.4 after 50 rounds, 17.8 after 200.
const SEEDS = [1, 2, 3, 4, 5];
const MEMORY = 64 * MIB;

function dma32(m: PhysMem): Zone {
  const z = m.zoneByIdx(ZONE_DMA32);
  if (!z) throw new Error('no DMA32');
  return z;
}

/** Order-8 MOVABLE allocations that succeed in DMA32 until the first failure. */
function order8Successes(m: PhysMem): number {
  const z = dma32(m);
  let n = 0;
  while (m.rmqueue(z, 8, MIGRATE_MOVABLE, 0) >= 0) n++;
  return n;
}

/** Age a fresh machine, drop the page cache (free the movable survivors), count order-8 successes. */
function afterDropCaches(seed: number, rounds: number): number {
  const m = new PhysMem({ memory: MEMORY });
  const r = age(m, { seed, rounds });
  for (const p of r.movable) m.free(p, 0);
  expect(m.checkInvariants()).to.equal(null);
  return order8Successes(m);
}

describe('mm/fragmenter: aging', () => {
  const means = new Map<number, number>();
  const meanOf = (rounds: number): number => {
    let v = means.get(rounds);
    if (v === undefined) {
      v = SEEDS.reduce((s, seed) => s + afterDropCaches(seed, rounds), 0) / SEEDS.length;
      means.set(rounds, v);
    }
    return v;
  };

  it('order-8 successes after drop_caches fall with uptime: rounds 0 >= 50 >= 200, and 200 below 3/4 of 0 (5 seeds, 64 MiB)', () => {
    const m0 = meanOf(0);
    const m50 = meanOf(50);
    const m200 = meanOf(200);
    // eslint-disable-next-line no-console
    console.log(`      mean order-8 successes of 48: rounds 0 -> ${m0}, 50 -> ${m50}, 200 -> ${m200}`);
    expect(m0).to.equal(48);
    expect(m50).to.be.at.most(m0);
    expect(m200).to.be.at.most(m50);
    expect(m200).to.be.lessThan(0.75 * m0);
  });

  it('with the page cache still in place no order-8 block is free after 50 rounds, and compaction makes one', () => {
    const m = new PhysMem({ memory: MEMORY });
    const r = age(m, { seed: 1, rounds: 50 });
    const z = dma32(m);
    expect(r.movable.length).to.be.greaterThan(0.7 * m.nrPages);
    m.snapshot();
    expect(order8Successes(m)).to.equal(0);
    m.restore();
    const moved: number[] = [];
    m.onMigrate = (a, b) => moved.push(a, b);
    const n = m.compact(z, 8);
    expect(n).to.be.greaterThan(0);
    expect(moved.length / 2).to.be.at.least(1);
    expect(m.rmqueue(z, 8, MIGRATE_MOVABLE, 0)).to.be.at.least(0);
    expect(m.checkInvariants()).to.equal(null);
  });

  it('order-0 allocations succeed for >= 99% of attempts while free pages stay above the min watermark (200 rounds)', () => {
    for (const seed of SEEDS.slice(0, 2)) {
      const m = new PhysMem({ memory: MEMORY });
      age(m, { seed, rounds: 200 });
      const z = dma32(m);
      let attempts = 0;
      let ok = 0;
      const types = [MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, MIGRATE_RECLAIMABLE];
      while (z.nr_free > z.watermark[WMARK_MIN]) {
        attempts++;
        if (m.rmqueue(z, 0, types[attempts % 3], 0) >= 0) ok++;
      }
      expect(attempts).to.be.greaterThan(100);
      expect(ok / attempts).to.be.at.least(0.99);
    }
  });

  it('aging is deterministic from the seed and the result matches the allocator state', () => {
    const a = new PhysMem({ memory: MEMORY });
    const b = new PhysMem({ memory: MEMORY });
    const ra = age(a, { seed: 42, rounds: 30 });
    const rb = age(b, { seed: 42, rounds: 30 });
    expect(a.stateHash()).to.equal(b.stateHash());
    expect(Array.from(ra.movable)).to.deep.equal(Array.from(rb.movable));
    expect(ra.unmovable).to.equal(rb.unmovable);
    const c = new PhysMem({ memory: MEMORY });
    age(c, { seed: 43, rounds: 30 });
    expect(c.stateHash()).to.not.equal(a.stateHash());
    // Every returned pfn is an allocated order-0 movable head; the rest of the allocated pages are the pinned ones.
    let allocated = 0;
    for (const z of a.zones) allocated += a.allocatedPages(z);
    for (const p of ra.movable) {
      expect(a.allocatedOrder(p)).to.equal(0);
      expect(a.isMovable(p)).to.equal(true);
    }
    expect(allocated).to.equal(ra.movable.length + ra.unmovable);
    expect(ra.unmovable).to.be.greaterThan(0);
    expect(a.checkInvariants()).to.equal(null);
  });

  it('rounds 0 leaves memory untouched; bad options are ProgramErrors', () => {
    const m = new PhysMem({ memory: MEMORY });
    const h = m.stateHash();
    const r = age(m, { seed: 1, rounds: 0 });
    expect(r.movable.length).to.equal(0);
    expect(r.unmovable).to.equal(0);
    expect(m.stateHash()).to.equal(h);
    expect(() => age(m, { seed: 1, rounds: -1 })).to.throw(/rounds=-1/);
    expect(() => age(m, { seed: 1, rounds: 1, peak: 0.5, trough: 0.6 })).to.throw(/trough 0.6 above peak 0.5/);
    expect(() => age(m, { seed: 1, rounds: 1, zones: [2] })).to.throw(/no zone 2/);
  });
});
