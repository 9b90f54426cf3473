import { expect } from 'chai';
import { Dfs, Engine, hunt, IterativeBounding, makeStrategy, Pct, type Program } from '../../scheduler';

/** Threads 0..n-1 each write `steps` times; the run fails iff the write order is exactly `bad`. */
function orderBug(n: number, steps: number, bad: number[]): Program {
  return {
    name: `order-bug-${n}-${steps}-${bad.join('')}`,
    setup(sim) {
      const log: number[] = [];
      sim.world = log;
      const x = sim.object('x');
      for (let i = 0; i < n; i++) {
        sim.spawn(`t${i}`, function* (t) {
          for (let k = 0; k < steps; k++) {
            yield t.write(x);
            log.push(i);
          }
        });
      }
    },
    finish(sim) {
      const log = sim.world as number[];
      sim.assert(log.join(',') !== bad.join(','), 'order', `bad order ${log.join(',')}`);
    },
  };
}

/** Smallest bound at which a bounded DFS finds the bug (walked directly, bound by bound). */
function smallest(p: Program, make: (b: number) => Dfs): number {
  for (let b = 0; b < 10; b++) {
    const s = make(b);
    const e = new Engine();
    while (!s.exhausted()) if (e.run(p, s, 0, 10).findings.length > 0) return b;
  }
  return -1;
}

describe('delay bounding and iterative bounding', () => {
  // Alternation 0,1,0,1,...: every switch but the last is a preemption, and (round robin from
  // the thread that ran) a delay of one: 2m-2 of each.
  for (const m of [2, 3]) {
    const alt = Array.from({ length: 2 * m }, (_, i) => i % 2);
    it(`alternation of 2x${m} steps needs ${2 * m - 2} preemptions and ${2 * m - 2} delays`, () => {
      const p = orderBug(2, m, alt);
      expect(smallest(p, (b) => new Dfs(b))).to.equal(2 * m - 2);
      expect(smallest(p, (b) => new Dfs(Infinity, Infinity, b))).to.equal(2 * m - 2);
    });
  }

  // Three one-step threads in order 2,1,0: no preemption at all (each finishes), but round robin
  // from thread 0 must skip 0 and 1 (2 delays), then from after 2 skip 0 (1 delay): 3.
  it('order 2,1,0 of three one-step threads: preemption bound 0, delay bound 3', () => {
    const p = orderBug(3, 1, [2, 1, 0]);
    expect(smallest(p, (b) => new Dfs(b))).to.equal(0);
    expect(smallest(p, (b) => new Dfs(Infinity, Infinity, b))).to.equal(3);
    // And 0,2,1 costs one delay (skip 1 after 0 finished).
    expect(smallest(orderBug(3, 1, [0, 2, 1]), (b) => new Dfs(Infinity, Infinity, b))).to.equal(1);
  });

  it('delay bound d explores exactly the schedules with at most d delays (3 one-step threads)', () => {
    // Round robin on 3 one-step threads: permutations by delay count 0:1, 1:2, 2:2, 3:1.
    const count = (d: number) => {
      const s = new Dfs(Infinity, Infinity, d);
      const e = new Engine();
      let n = 0;
      while (!s.exhausted()) {
        e.run(orderBug(3, 1, [9]), s, 0, 10);
        n++;
      }
      return n;
    };
    expect([0, 1, 2, 3, 4].map(count)).to.deep.equal([1, 3, 5, 6, 6]);
  });

  it('iterative preemption bounding stops at the smallest bound with the bug and says which', () => {
    const r = hunt(orderBug(2, 3, [0, 1, 0, 1, 0, 1]), { strategy: 'ipb', iterations: 10_000 });
    expect(r.findings.map((f) => f.kind)).to.deep.equal(['assertion']);
    expect(r.bound).to.deep.equal({ kind: 'preemption', value: 4 });
    expect(r.search).to.equal('decided');
    const d = hunt(orderBug(3, 1, [2, 1, 0]), { strategy: 'idb', iterations: 10_000 });
    expect(d.bound).to.deep.equal({ kind: 'delay', value: 3 });
  });

  it('iterative bounding on a clean program ends when a bound no longer bites: exhausted', () => {
    const s = makeStrategy({ strategy: 'ipb' }) as IterativeBounding;
    const r = hunt(orderBug(2, 2, [7]), { strategy: 'ipb', iterations: 10_000 });
    expect(r.findings).to.have.length(0);
    expect(r.search).to.equal('exhausted');
    expect(r.bound).to.equal(undefined);
    // 2x2 steps: C(4,2) = 6 paths in all; rounds 0, 1, 2 walk 2 + 4 + 6.
    expect(r.schedulesRun).to.equal(12);
    expect(s.bound).to.equal(0);
  });

  it('--pct-steps sets the change-point range instead of the calibrated estimate', () => {
    // With k = 1 the one step there is is the only change point (change points are distinct,
    // so d-1 = 2 of them cannot both fit), whatever the run length.
    const p = new Pct(3, 1);
    p.begin(42, 1000);
    expect(p.changePoints()).to.deep.equal([1]);
    const q = new Pct(3);
    q.begin(42, 1000);
    expect(q.changePoints().some((x) => x > 1)).to.equal(true);
  });
});

describe('t.join and sim.end', () => {
  const joinProg = (join: boolean): Program => ({
    name: `join-${join}`,
    setup(sim) {
      const x = sim.object('x');
      const st = { x: 0, seen: -1 };
      sim.world = st;
      const w = sim.spawn('worker', function* (t) {
        for (let i = 0; i < 3; i++) {
          yield t.write(x);
          st.x++;
        }
      });
      sim.spawn('main', function* (t) {
        if (join) yield* t.join(w);
        yield t.read(x);
        st.seen = st.x;
        sim.assert(st.seen === 3, 'early', `main saw ${st.seen}`);
      });
    },
  });

  for (const strategy of ['dfs', 'dpor']) {
    it(`${strategy}: main after join(worker) always sees the worker's three writes; without the join it does not`, () => {
      const ok = hunt(joinProg(true), { strategy, iterations: 10_000, stopAtFirst: false });
      expect(ok.findings).to.have.length(0);
      expect(ok.search).to.equal('exhausted');
      const bad = hunt(joinProg(false), { strategy, iterations: 10_000 });
      expect(bad.findings.map((f) => f.kind)).to.deep.equal(['assertion']);
    });
  }

  it('join of a thread that already finished does not block', () => {
    const p: Program = {
      name: 'join-done',
      setup(sim) {
        const w = sim.spawn('w', function* (t) {
          yield t.point();
        });
        sim.spawn('m', function* (t) {
          yield t.point();
          yield t.point();
          yield* t.join(w);
          yield* t.join(w);
        });
      },
    };
    const r = hunt(p, { strategy: 'dfs', iterations: 100, stopAtFirst: false });
    expect(r.findings).to.have.length(0);
    expect(r.search).to.equal('exhausted');
  });

  it('sim.end() ends the run cleanly: no finding for threads left blocked, no further steps', () => {
    const p = (end: boolean): Program => ({
      name: `end-${end}`,
      setup(sim) {
        const w = sim.waitable('never');
        sim.spawn('sleeper', function* (t) {
          yield t.block(w);
        });
        sim.spawn('ender', function* (t) {
          yield t.point();
          if (end) sim.end();
          yield t.point();
          yield t.point();
        });
      },
    });
    const e = new Engine();
    const r = e.run(p(true), makeStrategy({ strategy: 'dfs' }), 0, 10);
    expect(r.findings).to.have.length(0);
    expect(r.endReason).to.equal('done');
    expect(r.metrics.steps).to.equal(1);
    const r2 = new Engine().run(p(false), makeStrategy({ strategy: 'dfs' }), 0, 10);
    expect(r2.findings.map((f) => f.kind)).to.deep.equal(['no_progress']);
  });
});
