/**
 * Property test of the shrinker (scheduler/shrinker.ts): for random generated programs — a
 * lost update among a random number of busy bystanders with random lengths — and random hunt
 * seeds, every shrunk schedule replays strictly to the same fingerprint and never has more
 * deviations than the schedule it came from.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { decodeSchedule, hunt, replay, shrinkSchedule, type Program } from '../../scheduler';
import { lostUpdate } from '../../scheduler/examples/toys';

const SEED = 0x5421;

function noisy(bystanders: number, len: number, rounds: number): Program {
  const base = lostUpdate(2, rounds);
  return {
    name: `noisy-${bystanders}-${len}-${rounds}`,
    setup(sim) {
      base.setup(sim);
      const st = sim.world;
      for (let i = 0; i < bystanders; i++) {
        const o = sim.object(`noise${i}`);
        sim.spawn(`noise${i}`, function* (t) {
          for (let k = 0; k < len; k++) yield t.write(o);
        });
      }
      sim.world = st;
    },
    finish: base.finish,
  };
}

describe('property: shrinking keeps the fingerprint', () => {
  it('a shrunk schedule replays strictly to the same finding and is no longer', () => {
    let shrunkSome = 0;
    fc.assert(
      fc.property(fc.nat({ max: 3 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 2 }), fc.nat({ max: 1000 }), (by, len, rounds, seed) => {
        const p = noisy(by, len, rounds);
        const h = hunt(p, { seed, iterations: 300 });
        fc.pre(h.findings.length > 0);
        const f = h.findings[0];
        const s = shrinkSchedule(p, f.schedule, f.fingerprint);
        expect(s.reproduced).to.equal(true);
        expect(s.after).to.be.at.most(s.before);
        expect(decodeSchedule(s.schedule).devs.length).to.equal(s.after);
        if (s.after < s.before) shrunkSome++;
        const r = replay(p, s.schedule);
        expect(r.findings.map((x) => x.fingerprint)).to.include(f.fingerprint);
      }),
      { seed: SEED, numRuns: 40 },
    );
    expect(shrunkSome, 'the generator gives the shrinker something to remove').to.be.greaterThan(0);
  });
});
