/**
 * Property tests of the buddy allocator (lib/mm, the model of mm/page_alloc.c's free lists)
 * over random alloc/free sequences against a naive reference of taken pages:
 *  - its own invariants hold after every operation (free lists, orders, pageblock types, counts);
 *  - a block handed out is naturally aligned to its order and overlaps no block in use;
 *  - nr_free counts exactly the pages not in use;
 *  - freeing everything merges back to the boot-time free lists (buddyinfo equal).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { MIB, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE } from '../../lib/mm/config';
import { PhysMem } from '../../lib/mm/buddy';

const SEED = 0xb0dd;

type Op = { op: 'alloc'; zone: number; order: number; mt: number } | { op: 'free'; pick: number };

const opsArb: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('alloc' as const),
        zone: fc.nat({ max: 1 }),
        order: fc.oneof(fc.nat({ max: 3 }), fc.nat({ max: 10 })),
        mt: fc.constantFrom(MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE),
      }),
    },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('free' as const), pick: fc.nat() }) },
  ),
  { maxLength: 80 },
);

function totalFree(m: PhysMem): number {
  return m.zones.reduce((a, z) => a + z.nr_free, 0);
}

describe('property: buddy allocator against a naive reference', () => {
  it('random alloc/free sequences keep the invariants and merge back', () => {
    fc.assert(
      fc.property(opsArb, (seq) => {
        const m = new PhysMem({ memory: 32 * MIB });
        const boot = m.buddyinfo();
        const bootFree = totalFree(m);
        const taken = new Uint8Array(m.nrPages);
        const live: { pfn: number; order: number }[] = [];
        let inUse = 0;
        for (const o of seq) {
          if (o.op === 'free') {
            if (live.length === 0) continue;
            const [b] = live.splice(o.pick % live.length, 1);
            m.free(b.pfn, b.order);
            taken.fill(0, b.pfn, b.pfn + (1 << b.order));
            inUse -= 1 << b.order;
          } else {
            const z = m.zones[o.zone % m.zones.length];
            const pfn = m.rmqueue(z, o.order, o.mt, 0);
            if (pfn >= 0) {
              expect(pfn % (1 << o.order), 'block aligned to its order').to.equal(0);
              expect(pfn >= z.startPfn && pfn + (1 << o.order) <= z.endPfn, 'block inside its zone').to.equal(true);
              for (let i = pfn; i < pfn + (1 << o.order); i++) expect(taken[i], `pfn ${i} handed out twice`).to.equal(0);
              taken.fill(1, pfn, pfn + (1 << o.order));
              live.push({ pfn, order: o.order });
              inUse += 1 << o.order;
            }
          }
          expect(m.checkInvariants()).to.equal(null);
          expect(totalFree(m), 'nr_free counts the pages not in use').to.equal(bootFree - inUse);
        }
        for (const b of live) m.free(b.pfn, b.order);
        expect(m.checkInvariants()).to.equal(null);
        expect(m.buddyinfo(), 'everything freed merges back').to.equal(boot);
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
