import { expect } from 'chai';
import { Engine, ReplayStrategy, decodeSchedule, hunt, replay, shrinkSchedule, type Program } from '../../scheduler';
import { lostUpdate } from '../../scheduler/examples/toys';

/** The lost update among busy bystanders: random walk's schedule is full of irrelevant switches. */
function noisyLostUpdate(): Program {
  const base = lostUpdate(2, 1);
  return {
    name: 'noisy-lost-update',
    setup(sim) {
      base.setup(sim);
      const st = sim.world;
      for (let i = 0; i < 3; i++) {
        const o = sim.object(`noise${i}`);
        sim.spawn(`noise${i}`, function* (t) {
          for (let k = 0; k < 15; k++) yield t.write(o);
        });
      }
      sim.world = st;
    },
    finish: base.finish,
  };
}

describe('shrinker', () => {
  it('shrinks a schedule with many irrelevant deviations to the one preemption that matters', () => {
    const p = noisyLostUpdate();
    const h = hunt(p, { seed: 3, iterations: 500 });
    expect(h.findings).to.have.length(1);
    const f = h.findings[0];
    const before = decodeSchedule(f.schedule).devs.length;
    expect(before).to.be.greaterThan(10);
    const s = shrinkSchedule(p, f.schedule, f.fingerprint);
    expect(s.reproduced).to.equal(true);
    // inc0 and inc1 are threads 0 and 1: one must be preempted between its read and its write.
    expect(s.after).to.equal(1);
    const r = replay(p, s.schedule); // strict replay of the result
    expect(r.findings.map((x) => x.fingerprint)).to.deep.equal([f.fingerprint]);
  });

  it('hunt({shrink: true}) attaches the shrunk schedule to each finding', () => {
    const h = hunt(noisyLostUpdate(), { seed: 3, iterations: 500, shrink: true });
    const f = h.findings[0];
    expect(f.shrunk).to.be.a('string');
    expect(decodeSchedule(f.shrunk!).devs.length).to.be.lessThan(decodeSchedule(f.schedule).devs.length);
  });

  it('deleting a deviation never changes the meaning of the others', () => {
    const p = noisyLostUpdate();
    const e = new Engine();
    const h = hunt(p, { seed: 11, iterations: 500, stopAtFirst: false });
    const devs = decodeSchedule(h.findings[0].schedule).devs;
    expect(devs.length).to.be.greaterThan(10);
    for (let j = 0; j < devs.length; j++) {
      const rest = devs.filter((_, i) => i !== j);
      const strat = new ReplayStrategy(rest, 'lenient');
      const r = e.run(p, strat, decodeSchedule(h.findings[0].schedule).seed, 100);
      // Every choice that differs from the default is one of the remaining deviations, at its
      // own (step, sub-choice), with its own id: none was reinterpreted.
      const key = (d: { step: number; sub: number; kind: number; id: number }) => `${d.step}.${d.sub}${d.kind}:${d.id}`;
      const allowed = new Set(rest.map(key));
      for (const d of r.deviations) expect(allowed.has(key(d)), `after deleting #${j}: ${key(d)}`).to.equal(true);
      // and those before the deleted one still apply, untouched
      const prefix = rest.slice(0, j).map(key);
      expect(r.deviations.slice(0, j).map(key)).to.deep.equal(prefix);
    }
  });

  it('says so when a schedule does not reproduce the fingerprint', () => {
    const p = lostUpdate(2, 1);
    const h = hunt(p, { seed: 1, iterations: 200 });
    const s = shrinkSchedule(p, h.findings[0].schedule, 'assertion:something-else');
    expect(s.reproduced).to.equal(false);
  });
});
