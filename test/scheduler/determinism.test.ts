import { expect } from 'chai';
import { Engine, checkDeterminism, encodeSchedule, eventHash, hunt, makeStrategy, programHash, replay, type Program } from '../../scheduler';
import { lostUpdate, mixed } from '../../scheduler/examples/toys';

const STRATEGIES = [{ strategy: 'random' }, { strategy: 'pct', depth: 3 }, { strategy: 'fair-pct', depth: 2 }];

describe('determinism', () => {
  for (const mode of [{ window: Infinity }, { window: 0 }]) {
    const label = mode.window === 0 ? 'timed' : 'interleave';
    it(`two runs of the same seed give identical event-log hashes, 200 seeds (${label})`, () => {
      const p = mixed(3, 2);
      for (const spec of STRATEGIES) {
        const a = new Engine(mode);
        const b = new Engine(mode);
        for (let seed = 0; seed < 200; seed++) {
          const ra = a.run(p, makeStrategy(spec), seed, 60);
          const rb = b.run(p, makeStrategy(spec), seed, 60);
          expect(ra.hash, `seed ${seed} ${spec.strategy}`).to.equal(rb.hash);
          expect(ra.metrics).to.deep.equal(rb.metrics);
          expect(ra.deviations).to.deep.equal(rb.deviations);
        }
      }
    });
  }

  it('different seeds take different paths (the hash is not constant)', () => {
    const e = new Engine();
    const hashes = new Set<number>();
    for (let seed = 0; seed < 50; seed++) hashes.add(e.run(mixed(3, 2), makeStrategy({}), seed, 60).hash);
    expect(hashes.size).to.be.greaterThan(25);
  });

  it('a run replayed from its schedule string gives the same event log', () => {
    const p = mixed(3, 2);
    const heavy = new Engine({ instrument: true });
    const hash = programHash(p, {});
    for (let seed = 0; seed < 60; seed++) {
      const r = heavy.run(p, makeStrategy({ strategy: seed % 2 ? 'pct' : 'random' }), seed, 60);
      const s = encodeSchedule({ hash, events: eventHash(r.hash), strategy: 'random', seed, steps: r.metrics.steps, devs: r.deviations });
      const again = replay(p, s);
      expect(again.events).to.deep.equal(r.events);
      expect(again.hash).to.equal(r.hash);
    }
  });

  it('instrumentation on or off takes the same path', () => {
    const p = mixed(4, 2);
    const light = new Engine({ instrument: false });
    const heavy = new Engine({ instrument: true });
    for (let seed = 0; seed < 100; seed++) {
      const a = light.run(p, makeStrategy({ strategy: 'pct' }), seed, 80);
      const b = heavy.run(p, makeStrategy({ strategy: 'pct' }), seed, 80);
      expect(a.hash).to.equal(b.hash);
      expect(a.deviations).to.deep.equal(b.deviations);
      expect(a.events).to.equal(null);
      expect(b.events!.length).to.be.greaterThan(10);
    }
  });

  it('the self-check finds no divergence in a deterministic program', () => {
    const r = new Engine().run(lostUpdate(2, 3), makeStrategy({}), 5, 20);
    expect(checkDeterminism(lostUpdate(2, 3), {}, r.deviations, 5, 20, r.hash)).to.equal(null);
  });

  it('the self-check reports the first divergent event of a program with hidden state', () => {
    let calls = 0; // state kept outside the engine: the second run differs
    const leaky: Program = {
      name: 'leaky',
      setup(sim) {
        const o = sim.object('o');
        const extra = calls++ % 2;
        sim.spawn('a', function* (t) {
          yield t.write(o);
          if (extra) yield t.write(o);
        });
      },
    };
    const d = checkDeterminism(leaky, {}, [], 1);
    expect(d).to.not.equal(null);
    expect(d!.index).to.be.at.least(0);
    calls = 0;
    const h = hunt(leaky, { iterations: 3, checkDeterminism: true, stopAtFirst: false });
    expect(h.findings.map((f) => f.kind)).to.include('nondeterminism');
    expect(h.findings[0].text).to.match(/diverged/);
  });
});
