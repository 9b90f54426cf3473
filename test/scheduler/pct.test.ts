import { expect } from 'chai';
import { hunt } from '../../scheduler';
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
    // 2000 runs * 1/48 = 41.7 expected at the bound; seed 7 gives 48 hits, the first at run 47.
    expect(pct.hits).to.equal(48);
    expect(pct.first).to.equal(47);
    expect(pct.hits / pct.runs).to.be.at.least(pct.bound * 0.8);
    const rnd = rate(depth2(12), 'random', 2, 7, 2000);
    expect(rnd.hits).to.equal(0);
  });

  it('depth 3: PCT(d=3) hits at about 1/(n*k^2); random walk does not find it', () => {
    const pct = rate(depth3(8), 'pct', 3, 2, 50_000);
    expect(pct.k).to.equal(24);
    // bound 1/1152 -> 43.4 expected hits in 50,000 runs; seed 2 gives 45.
    expect(pct.hits).to.equal(45);
    expect(pct.hits / pct.runs).to.be.at.least(pct.bound * 0.8);
    // Random walk needs B to stop for 8 steps and A for 8: about (1/2)^17 per run. Seed 2
    // gives one hit in 50,000 runs, 45 times fewer than PCT.
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
