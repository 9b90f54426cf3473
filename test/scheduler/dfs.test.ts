import { expect } from 'chai';
import { Engine, hunt, makeStrategy, type Program } from '../../scheduler';
import { grid } from '../../scheduler/examples/toys';

/**
 * CHESS-style count for two threads of m visible steps each, at most c preemptions.
 *
 * A schedule is a sequence of b >= 2 alternating blocks. The thread that starts has ceil(b/2)
 * blocks, the other floor(b/2); splitting m steps into j non-empty blocks can be done in
 * C(m-1, j-1) ways. Every switch is a preemption except the one where the first thread to
 * finish runs out of steps, so a schedule of b blocks has b - 2 preemptions. Hence
 *
 *   N(m, c) = 2 * sum_{b=2}^{c+2} C(m-1, ceil(b/2)-1) * C(m-1, floor(b/2)-1)
 *
 * For m = 3: b = 2..6 contribute 1, 2, 4, 2, 1 (times 2 for who starts), so N(3, 0) = 2,
 * N(3, 1) = 6, N(3, 2) = 14, N(3, 3) = 18 and N(3, inf) = 20 = C(6, 3).
 */
function binom(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}
function chess(m: number, c: number): number {
  let sum = 0;
  for (let b = 2; b <= Math.min(c + 2, 2 * m); b++) sum += binom(m - 1, Math.ceil(b / 2) - 1) * binom(m - 1, Math.floor(b / 2) - 1);
  return 2 * sum;
}

/** Enumerate with DFS and return the distinct interleavings seen. */
function enumerate(p: Program, spec: { preemptionBound?: number; irqBound?: number }): { runs: number; distinct: Set<string> } {
  const e = new Engine();
  const s = makeStrategy({ strategy: 'dfs', ...spec });
  const distinct = new Set<string>();
  let runs = 0;
  while (!s.exhausted() && runs < 100_000) {
    e.run(p, s, 0, 10);
    runs++;
    distinct.add(JSON.stringify(e.world));
  }
  return { runs, distinct };
}

describe('bounded DFS', () => {
  it('the CHESS formula gives the textbook numbers', () => {
    expect([0, 1, 2, 3, 4].map((c) => chess(3, c))).to.deep.equal([2, 6, 14, 18, 20]);
    expect(chess(3, 99)).to.equal(binom(6, 3));
  });

  it('two threads of three visible steps: exactly 20 distinct interleavings without a bound', () => {
    const { runs, distinct } = enumerate(grid(2, 3), {});
    expect(runs).to.equal(20);
    expect(distinct.size).to.equal(20);
  });

  for (const c of [0, 1, 2, 3]) {
    it(`preemption bound ${c} gives the CHESS count ${chess(3, c)}`, () => {
      const { runs, distinct } = enumerate(grid(2, 3), { preemptionBound: c });
      expect(runs).to.equal(chess(3, c));
      expect(distinct.size).to.equal(runs);
    });
  }

  it('matches the formula for longer threads (m = 5, bounds 0..3)', () => {
    for (const c of [0, 1, 2, 3]) expect(enumerate(grid(2, 5), { preemptionBound: c }).runs).to.equal(chess(5, c));
    expect(enumerate(grid(2, 5), {}).runs).to.equal(binom(10, 5));
  });

  it('three threads without a bound: the multinomial 6!/(2!2!2!) = 90', () => {
    const { runs, distinct } = enumerate(grid(3, 2), {});
    expect(runs).to.equal(90);
    expect(distinct.size).to.equal(90);
  });

  it('bounds interrupt deliveries separately from preemptions', () => {
    const p: Program = {
      name: 'irq-points',
      setup(sim) {
        const o = sim.object('o');
        const order: string[] = [];
        sim.world = order;
        const cpu = sim.spawn('cpu', function* (t) {
          for (let i = 0; i < 4; i++) {
            yield t.write(o);
            order.push(`s${i}`);
          }
        });
        const irq = sim.interruptSource({
          name: 'irq',
          target: cpu,
          *handler(t) {
            order.push('irq');
            yield t.work(1);
          },
        });
        sim.raise(irq);
      },
    };
    // Bound 0: the interrupt is only taken where it is forced (as the thread finishes).
    const none = enumerate(p, { irqBound: 0 });
    expect(none.runs).to.equal(1);
    expect([...none.distinct][0]).to.equal(JSON.stringify(['s0', 's1', 's2', 's3', 'irq']));
    // Bound 1: before each of the four steps, or forced at the end: five places.
    const one = enumerate(p, { irqBound: 1 });
    expect(one.runs).to.equal(5);
    expect(one.distinct.size).to.equal(5);
  });

  it('a hunt with DFS stops when the tree is exhausted', () => {
    const h = hunt(grid(2, 3), { strategy: 'dfs', iterations: 1000 });
    expect(h.schedulesRun).to.equal(20);
    expect(h.exhausted).to.equal(true);
    expect(h.findings).to.deep.equal([]);
  });
});
