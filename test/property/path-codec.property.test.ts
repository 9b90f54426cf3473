/**
 * Property tests of the path's deviation encoding (scheduler/path.ts): whatever a run records
 * (steps in order, any sub, kind and id, including NONE and ids past one varint byte) comes
 * back from take() and unpackDeviations exactly, and deviations()
 * mid-run agrees with it. Seeded, so a run is the same on every machine.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Path, unpackDeviations, type Deviation } from '../../scheduler/path';

const SEED = 0x9a7;

/** Deviations as the engine records them: steps never decrease. */
const recorded = fc
  .array(
    fc.record({
      gap: fc.oneof(fc.constant(0), fc.nat({ max: 3 }), fc.nat({ max: 2 ** 31 / 4096 })),
      sub: fc.oneof(fc.nat({ max: 3 }), fc.nat({ max: 1 << 20 })),
      kind: fc.nat({ max: 4 }),
      id: fc.oneof(fc.constant(-1), fc.nat({ max: 70 }), fc.nat({ max: 2 ** 30 })),
    }),
    { maxLength: 200 },
  )
  .map((raw) => {
    let step = 0;
    return raw.map((r): Deviation => ({ step: (step += r.gap), sub: r.sub, kind: r.kind, id: r.id }));
  });

describe('property: path deviation encoding', () => {
  it('round-trips any recorded list through take() and unpackDeviations', () => {
    fc.assert(
      fc.property(recorded, (all) => {
        const p = new Path();
        // (Crossing a 64 KiB chunk: test/scheduler/path.test.ts.)
        for (const d of all) p.record(d.step, d.sub, d.kind, d.id);
        expect(p.size).to.equal(all.length);
        expect(p.deviations()).to.deep.equal(all);
        const chunks = p.take();
        expect(unpackDeviations(chunks)).to.deep.equal(all);
        expect(p.size).to.equal(0);
        // The path is reusable: a second run records from step 0 again.
        p.record(3, 0, 0, 1);
        expect(p.deviations()).to.deep.equal([{ step: 3, sub: 0, kind: 0, id: 1 }]);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('keeps a deviation small: NONE (-1) and a step delta under 128 take one byte each', () => {
    const p = new Path();
    p.record(5, 0, 1, -1);
    p.record(5, 1, 1, 70);
    const [b] = p.take();
    expect(Array.from(b)).to.deep.equal([5, 1, 1, 0, 9, 140, 1]);
    expect(unpackDeviations([b])).to.deep.equal([
      { step: 5, sub: 0, kind: 1, id: -1 },
      { step: 5, sub: 1, kind: 1, id: 70 },
    ]);
  });
});
