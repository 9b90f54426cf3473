import { expect } from 'chai';
import { Engine, Pct, hunt, type Program } from '../../scheduler';
import { depth2, depth3 } from '../../scheduler/examples/toys';

/**
 * PCT finds a bug of depth d among n threads in a run of k steps with probability at least
 * 1/(n * k^(d-1)). The toys are built so random walk needs about 2^-m luck instead.
 * All numbers come from fixed seeds, so these assertions are exact reruns, not samples.
 */
function rate(p: ReturnType<typeof depth2>, strategy: string, d: number, seed: number, iterations: number) {
  const h = hunt(p, { strategy, depth: d, seed, iterations, stopAtFirst: false });
  const hits = h.findings.length ? h.findings[0].runs : 0;
  return { hits, first: h.firstIteration, k: h.expectedSteps, bound: 1 / (2 * Math.pow(h.expectedSteps, d - 1)), runs: h.schedulesRun };
}

describe('PCT', () => {
  it('depth 2: PCT(d=2) hits at the rate 1/(n*k) promises; random walk does not find it', () => {
    const pct = rate(depth2(12), 'pct', 2, 7, 2000);
    expect(pct.k).to.equal(24);
    expect(pct.bound).to.be.closeTo(1 / 48, 1e-9);
    // 2000 runs * 1/48 = 41.7 expected at the bound; seed 7 gives 43 hits, the first at run 47.
    expect(pct.hits).to.equal(43);
    expect(pct.first).to.equal(47);
    expect(pct.hits / pct.runs).to.be.at.least(pct.bound * 0.8);
    const rnd = rate(depth2(12), 'random', 2, 7, 2000);
    expect(rnd.hits).to.equal(0);
  });

  it('depth 3: PCT(d=3) hits at about 1/(n*k^2); random walk does not find it', () => {
    const pct = rate(depth3(8), 'pct', 3, 2, 50_000);
    expect(pct.k).to.equal(24);
    // bound 1/1152 -> 43.4 expected hits in 50,000 runs; seed 2 gives 44.
    expect(pct.hits).to.equal(44);
    expect(pct.hits / pct.runs).to.be.at.least(pct.bound * 0.8);
    // Random walk needs B to stop for 8 steps and A for 8: about (1/2)^17 per run. Seed 2
    // gives one hit in 50,000 runs, 44 times fewer than PCT.
    const rnd = rate(depth3(8), 'random', 3, 2, 50_000);
    expect(rnd.hits).to.equal(1);
    expect(rnd.hits * 20).to.be.lessThan(pct.hits);
  });

  it('a depth-2 bug is beyond PCT(d=1), which never changes priorities', () => {
    const d1 = rate(depth2(12), 'pct', 1, 7, 2000);
    expect(d1.hits).to.equal(0);
  });

  it('fair-PCT still finds the depth-2 bug (PCT prefix) and finishes spin-retry programs', () => {
    const f = rate(depth2(12), 'fair-pct', 2, 7, 2000);
    expect(f.hits).to.be.greaterThan(20);
  });
});

describe('PCT draws (distinct priorities, change points without replacement)', () => {
  /** Four threads racing on one object and two interrupt sources: every entity gets a priority. */
  const prog: Program = {
    name: 'pct-draws',
    setup(sim) {
      const o = sim.object('o');
      const ts = [0, 1, 2, 3].map((i) =>
        sim.spawn(`t${i}`, function* (t) {
          for (let k = 0; k < 4; k++) yield t.write(o);
        }),
      );
      sim.raise(sim.interruptSource({ name: 'a', target: ts[0], *handler(t) { yield t.write(o); } }));
      sim.raise(sim.interruptSource({ name: 'b', target: ts[1], *handler(t) { yield t.write(o); } }));
    },
  };

  it('priorities of threads and sources are distinct; with no change point they are a permutation of d..d+m-1', () => {
    for (const depth of [1, 3]) {
      const e = new Engine();
      const s = new Pct(depth, 10);
      for (let seed = 0; seed < 300; seed++) {
        e.run(prog, s, seed, 10);
        const { threads, sources } = s.priorities();
        const all = [...threads, ...sources].filter((p) => p !== 0);
        expect(all.length, `d=${depth} seed ${seed}`).to.equal(6);
        expect(new Set(all).size, `d=${depth} seed ${seed}: ${all}`).to.equal(all.length);
        const high = all.filter((p) => p >= depth).sort((a, b) => a - b);
        const low = all.filter((p) => p < depth);
        // Ranks handed out are d..d+5; a change point moved some entities below d.
        for (const p of high) expect(Number.isInteger(p) && p < depth + 6, `${p}`).to.equal(true);
        for (const p of low) expect(Number.isInteger(p) && p >= 1, `${p}`).to.equal(true);
        if (depth === 1) expect(high).to.deep.equal([1, 2, 3, 4, 5, 6]);
      }
    }
  });

  it('the permutation is uniform: every order of three threads comes up about equally often', () => {
    const three: Program = {
      name: 'pct-three',
      setup(sim) {
        const o = sim.object('o');
        for (let i = 0; i < 3; i++) sim.spawn(`t${i}`, function* (t) { yield t.write(o); yield t.write(o); });
      },
    };
    const e = new Engine();
    const s = new Pct(1, 10);
    const orders = new Map<string, number>();
    for (let seed = 0; seed < 1200; seed++) {
      e.run(three, s, seed, 10);
      const p = s.priorities().threads.slice(0, 3);
      const key = [0, 1, 2].sort((a, b) => p[b] - p[a]).join('');
      orders.set(key, (orders.get(key) ?? 0) + 1);
    }
    expect(orders.size).to.equal(6);
    // 200 expected each; a binomial(1200, 1/6) stays within 200 +- 50 with probability > 0.999.
    for (const [k, c] of orders) expect(c, k).to.be.within(150, 250);
  });

  it('change points are distinct steps in 1..k, d-1 of them (k of them when k < d-1)', () => {
    const e = new Engine();
    for (const [depth, k] of [[5, 6], [4, 3], [3, 2], [6, 5]] as const) {
      const s = new Pct(depth, k);
      const firsts = new Set<number>();
      for (let seed = 0; seed < 300; seed++) {
        e.run(prog, s, seed, 10);
        const cps = s.changePoints();
        expect(cps.length, `d=${depth} k=${k}`).to.equal(Math.min(depth - 1, k));
        expect(new Set(cps).size, `d=${depth} k=${k} seed ${seed}: ${cps}`).to.equal(cps.length);
        for (const c of cps) expect(c).to.be.within(1, k);
        firsts.add(cps[0]);
      }
      // The draw order is random too: any step can be the first change point drawn.
      expect(firsts.size, `d=${depth} k=${k}`).to.equal(k);
    }
  });
});
