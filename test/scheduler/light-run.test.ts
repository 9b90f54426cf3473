import { expect } from 'chai';
import { Engine, hunt, makeStrategy, replay, RandomWalk, type ChoiceView } from '../../scheduler';
import { contention, lostUpdate, mixed } from '../../scheduler/examples/toys';

/**
 * Light runs (recordPath: false): a hunt's seeded runs keep no path, and the few whose
 * findings need a schedule are run again with it. A light run must take the same path as a
 * recorded one: same event hash, metrics and findings.
 */
describe('light runs', () => {
  it('take the same path as recorded runs: event hash, metrics and findings, timed and interleaved', () => {
    const cases = [
      { p: mixed(3, 2), o: {} },
      { p: lostUpdate(), o: {} },
      { p: contention(8, 2, 40), o: { window: 0 } },
    ];
    for (const { p, o } of cases) {
      for (const strategy of ['random', 'pct'] as const) {
        const light = new Engine({ ...o, recordPath: false, maxFaults: 2 });
        const full = new Engine({ ...o, maxFaults: 2 });
        for (let seed = 0; seed < 40; seed++) {
          const a = light.run(p, makeStrategy({ strategy }), seed, 60);
          const b = full.run(p, makeStrategy({ strategy }), seed, 60);
          expect(a.hash, `${p.name} ${strategy} seed ${seed}`).to.equal(b.hash);
          expect(a.metrics).to.deep.equal(b.metrics);
          expect(a.metrics.deviations).to.equal(b.deviations.length);
          expect(a.findings.map((f) => f.fingerprint)).to.deep.equal(b.findings.map((f) => f.fingerprint));
        }
      }
    }
  });

  it('count choice ordinals for a strategy that reads them: view.sub is the same light and recorded', () => {
    /** A random walk that also notes each choice's ordinal (it does not say it ignores them). */
    class SubReader extends RandomWalk {
      override readonly ignoresSub = false;
      subs: number[] = [];
      override choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, w: Float64Array | null): number {
        this.subs.push(view.step * 8 + view.sub);
        return super.choose(kind, ids, n, def, view, w);
      }
    }
    const p = mixed(3, 2);
    for (let seed = 0; seed < 20; seed++) {
      const a = new SubReader();
      const b = new SubReader();
      new Engine({ recordPath: false, maxFaults: 2 }).run(p, a, seed, 60);
      new Engine({ maxFaults: 2 }).run(p, b, seed, 60);
      expect(a.subs, `seed ${seed}`).to.deep.equal(b.subs);
      // Some steps make more than one choice (a fault after a scheduling choice), so ordinals above 0 occur.
      if (seed === 19) expect(b.subs.some((x) => x % 8 > 0)).to.equal(true);
    }
  });

  it('refuses to hand out the deviations of a light run', () => {
    const r = new Engine({ recordPath: false }).run(lostUpdate(), makeStrategy({}), 3, 50);
    expect(() => r.deviations).to.throw(/light run/);
  });

  it('a hunt made of light runs folds the same as one that records every run, and its schedules replay', () => {
    const h = hunt(lostUpdate(), { iterations: 200, seed: 5, stopAtFirst: false });
    // --check-determinism records every run (it compares paths).
    const all = hunt(lostUpdate(), { iterations: 200, seed: 5, stopAtFirst: false, checkDeterminism: true });
    expect(h.findings.map((f) => [f.fingerprint, f.count, f.runs, f.schedule])).to.deep.equal(all.findings.map((f) => [f.fingerprint, f.count, f.runs, f.schedule]));
    expect(h.totals).to.deep.equal(all.totals);
    expect(h.findings.length).to.be.greaterThan(0);
    for (const f of h.findings) {
      const r = replay(lostUpdate(), f.schedule, {});
      expect(r.findings.map((x) => x.fingerprint)).to.include(f.fingerprint);
    }
  });
});
