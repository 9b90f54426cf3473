import { expect } from 'chai';
import { CoverageAccumulator, Engine, KEYS_SHOWN, makeStrategy, pctBound, pctDepth, type Program, type RunMetrics, type Thread } from '../../scheduler';
import { mixed } from '../../scheduler/examples/toys';

const metrics = (steps: number, threads: number): RunMetrics =>
  ({ steps, threads, choices: 0, preemptions: 0, switches: 0, interrupts: 0, coalesced: 0, timers: 0, faults: 0, deviations: 0, endTime: 0 });

/** Two threads each take a point step; the one that steps first covers `first:<name>` and mixes its id. */
function racers(cover: boolean): Program {
  return {
    name: 'toy-coverage-racers',
    params: { cover },
    setup(sim) {
      let first = -1;
      for (let i = 0; i < 2; i++) {
        sim.spawn(`r${i}`, function* (t: Thread) {
          yield t.point();
          if (first < 0) first = i;
          if (cover) {
            sim.cover(`first:r${first}`);
            sim.cover(`first:r${first}`); // set semantics within a run
            sim.cover(`ran:r${i}`);
            sim.mixClass(first);
          }
          yield t.point();
        });
      }
    },
  };
}

describe('coverage: engine channel', () => {
  it('is null / 0 when the program records nothing, and reports the threads spawned', () => {
    const r = new Engine().run(mixed(3, 2), makeStrategy({}), 1, 60);
    expect(r.coverage).to.equal(null);
    expect(r.interleaving).to.equal(0);
    expect(r.metrics.threads).to.be.greaterThan(3);
  });

  it('keeps distinct keys in first-seen order and resets per run', () => {
    const e = new Engine();
    const a = e.run(racers(true), makeStrategy({}), 3, 10);
    expect(a.coverage).to.have.length(3);
    expect(new Set(a.coverage).size).to.equal(3);
    expect(a.coverage![0]).to.match(/^first:r[01]$/);
    expect(a.coverage![1]).to.match(/^ran:r[01]$/);
    expect(a.interleaving).to.not.equal(0);
    const b = e.run(racers(false), makeStrategy({}), 3, 10);
    expect(b.coverage).to.equal(null);
    expect(b.interleaving).to.equal(0);
    expect(b.metrics.threads).to.equal(2);
  });

  it('never changes the path: same hash, steps and deviations with and without coverage', () => {
    const e = new Engine();
    for (let seed = 0; seed < 40; seed++) {
      const a = e.run(racers(true), makeStrategy({ strategy: 'pct', depth: 2 }), seed, 10);
      const b = e.run(racers(false), makeStrategy({ strategy: 'pct', depth: 2 }), seed, 10);
      expect(a.hash).to.equal(b.hash);
      expect(a.metrics.steps).to.equal(b.metrics.steps);
      expect(a.deviations).to.deep.equal(b.deviations);
    }
  });

  it('the interleaving class is order-free over the values mixed, and tells different multisets apart', () => {
    const cls = (xs: number[]): number => {
      const p: Program = { name: 'mix', setup: (sim) => xs.forEach((x) => sim.mixClass(x)) };
      return new Engine().run(p, makeStrategy({}), 0, 1).interleaving;
    };
    expect(cls([1, 2, 3])).to.equal(cls([3, 1, 2]));
    expect(cls([1, 2, 3])).to.not.equal(cls([1, 2, 4]));
    expect(cls([0])).to.not.equal(cls([])); // mixing 0 counts
    expect(cls([5, 5])).to.not.equal(cls([5]));
    expect(cls([7])).to.be.within(0, 0xffffffff);
  });

  it('both racers end up first across schedules: two classes, both keys', () => {
    const e = new Engine();
    const acc = new CoverageAccumulator();
    for (let seed = 0; seed < 50; seed++) acc.add(e.run(racers(true), makeStrategy({}), seed, 10));
    const s = acc.summary({ strategy: 'random' });
    expect(s.groups.first).to.deep.equal({ distinct: 2, keys: ['first:r0', 'first:r1'] });
    expect(s.interleavingClasses).to.equal(2);
    expect(s.threads).to.equal(2);
  });
});

describe('coverage: accumulator', () => {
  it('counts distinct keys per prefix, sorted, and classes', () => {
    const acc = new CoverageAccumulator();
    acc.add({ coverage: ['lockorder:B->A', 'irqheld:x@-', 'plain'], interleaving: 7, metrics: metrics(10, 2) });
    acc.add({ coverage: ['lockorder:A->B', 'lockorder:B->A'], interleaving: 7, metrics: metrics(30, 3) });
    acc.add({ coverage: null, interleaving: 9, metrics: metrics(20, 2) });
    const s = acc.summary({ strategy: 'random' });
    expect(Object.keys(s.groups)).to.deep.equal(['irqheld', 'lockorder', 'other']);
    expect(s.groups.lockorder).to.deep.equal({ distinct: 2, keys: ['lockorder:A->B', 'lockorder:B->A'] });
    expect(s.groups.other).to.deep.equal({ distinct: 1, keys: ['plain'] });
    expect(s.schedules).to.equal(3);
    expect(s.interleavingClasses).to.equal(2);
    expect(s.schedulesPerClass).to.deep.equal({ mean: 1.5, min: 1, max: 2 });
    expect(s.singletonClasses).to.equal(1);
    expect(s.threads).to.equal(3);
    expect(s.steps).to.equal(30);
    expect(s.meanSteps).to.equal(20);
    expect(s.depth).to.equal(null);
    expect(s.pctBound).to.equal(null);
    expect(Object.keys(s)).to.deep.equal([
      'schedules', 'groups', 'interleavingClasses', 'schedulesPerClass', 'singletonClasses', 'threads', 'steps', 'meanSteps', 'depth', 'pctBound',
    ]);
  });

  it('caps the keys listed per prefix but counts them all', () => {
    const acc = new CoverageAccumulator();
    const keys = Array.from({ length: KEYS_SHOWN + 20 }, (_, i) => `k:${String(i).padStart(3, '0')}`);
    acc.add({ coverage: keys.slice().reverse(), interleaving: 1, metrics: metrics(1, 1) });
    const g = acc.summary({ strategy: 'random' }).groups.k;
    expect(g.distinct).to.equal(KEYS_SHOWN + 20);
    expect(g.keys).to.deep.equal(keys.slice(0, KEYS_SHOWN));
  });

  it('the PCT bound is 1/(n·k^(d−1)) for the largest n and k seen', () => {
    expect(pctBound(2, 180, 3)).to.equal(1 / (2 * 180 * 180));
    expect(pctBound(4, 100, 1)).to.equal(1 / 4);
    expect(pctBound(3, 50, 2)).to.equal(1 / 150);
    expect(pctBound(0, 10, 2)).to.equal(null);
    const acc = new CoverageAccumulator();
    acc.add({ coverage: null, interleaving: 1, metrics: metrics(120, 2) });
    acc.add({ coverage: null, interleaving: 2, metrics: metrics(180, 2) });
    expect(acc.summary({ strategy: 'pct3' }).pctBound).to.equal(1 / (2 * 180 ** 2));
    expect(acc.summary({ strategy: 'pct', depth: 2 }).pctBound).to.equal(1 / (2 * 180));
    expect(acc.summary({ strategy: 'fairpct2' }).depth).to.equal(2);
    expect(acc.summary({ strategy: 'random', depth: 3 }).pctBound).to.equal(null);
    expect(acc.summary({ strategy: 'dfs' }).pctBound).to.equal(null);
  });

  it('pctDepth reads the strategy names the factory makes', () => {
    expect(pctDepth(makeStrategy({ strategy: 'pct', depth: 4 }).name)).to.equal(4);
    expect(pctDepth(makeStrategy({ strategy: 'fair-pct', depth: 2 }).name)).to.equal(2);
    expect(pctDepth('pct')).to.equal(3);
    expect(pctDepth('fair-pct', 5)).to.equal(5);
    expect(pctDepth('random')).to.equal(null);
  });

  it('merging slices (in any order, or through saved state) gives the summary of one accumulator', () => {
    const recs = Array.from({ length: 30 }, (_, i) => ({
      coverage: i % 4 === 0 ? null : [`lockorder:L${i % 5}->L${(i * 7) % 5}`, `irqheld:q@L${i % 3}`],
      interleaving: (i * 2654435761) % 7,
      metrics: metrics(10 + ((i * 13) % 17), 1 + (i % 3)),
    }));
    const whole = new CoverageAccumulator();
    for (const r of recs) whole.add(r);
    const parts = [new CoverageAccumulator(), new CoverageAccumulator(), new CoverageAccumulator()];
    recs.forEach((r, i) => parts[i % 3].add(r));
    const merged = CoverageAccumulator.fromState(JSON.parse(JSON.stringify(parts[2].state())));
    merged.merge(parts[0]);
    merged.merge(parts[1].state());
    expect(merged.summary({ strategy: 'pct3' })).to.deep.equal(whole.summary({ strategy: 'pct3' }));
    expect(merged.state()).to.deep.equal(whole.state());
  });

  it('an empty accumulator summarises to zeros', () => {
    const s = new CoverageAccumulator().summary({ strategy: 'pct3' });
    expect(s.schedules).to.equal(0);
    expect(s.interleavingClasses).to.equal(0);
    expect(s.schedulesPerClass).to.deep.equal({ mean: 0, min: 0, max: 0 });
    expect(s.pctBound).to.equal(null);
  });
});
