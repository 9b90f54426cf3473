import { expect } from 'chai';
import { Dfs, Dpor, Engine, hunt, Resource, type Program, type Strategy, type Thread } from '../../scheduler';
import { explore as exploreStates, type Explored } from '../support/explore';
import { grid } from '../../scheduler/examples/toys';

/** A small deterministic generator for the test's random programs (not simulation code). */
class Gen {
  constructor(private s: number) {}
  next(): number {
    this.s = (Math.imul(this.s ^ (this.s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0;
    return ((this.s ^ (this.s >>> 13)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

type Instr =
  | { k: 'read'; o: number }
  | { k: 'write'; o: number }
  | { k: 'lock'; r: number; body: Instr[] }
  | { k: 'raise'; src: number }
  | { k: 'masked'; body: Instr[] }
  | { k: 'spin'; o: number }
  | { k: 'wait' }
  | { k: 'post' }
  | { k: 'work'; ns: number };

interface Spec {
  objects: number;
  locks: number;
  threads: Instr[][];
  irqs: { target: number; body: Instr[] }[];
  timer: { at: number; o: number } | null;
  declareSpin: boolean;
}

function genBody(g: Gen, spec: Pick<Spec, 'objects' | 'locks'>, n: number, irqs: number, depth: number, inIrq: boolean): Instr[] {
  const out: Instr[] = [];
  for (let i = 0; i < n; i++) {
    const r = g.int(10);
    if (r < 3) out.push({ k: 'read', o: g.int(spec.objects) });
    else if (r < 6) out.push({ k: 'write', o: g.int(spec.objects) });
    else if (r === 6 && depth === 0 && spec.locks > 0 && !inIrq) out.push({ k: 'lock', r: g.int(spec.locks), body: genBody(g, spec, 1 + g.int(2), irqs, 1, inIrq) });
    else if (r === 7 && irqs > 0) out.push({ k: 'raise', src: g.int(irqs) });
    else if (r === 8 && depth === 0 && !inIrq) out.push({ k: 'masked', body: genBody(g, spec, 1 + g.int(2), irqs, 1, inIrq) });
    else out.push({ k: 'work', ns: 1 + g.int(20) });
  }
  return out;
}

function genSpec(seed: number): Spec {
  const g = new Gen(seed);
  const base = { objects: 2 + g.int(2), locks: g.int(2) };
  const nthreads = 2 + g.int(3);
  const nirq = g.int(3);
  const per = nthreads >= 4 ? 2 : 3;
  const threads: Instr[][] = [];
  for (let i = 0; i < nthreads; i++) threads.push(genBody(g, base, 1 + g.int(per), nirq, 0, false));
  // Sometimes a spin on an object another thread writes, or a wait/post pair.
  if (g.int(3) === 0) threads[0].push({ k: 'spin', o: 0 });
  if (g.int(3) === 0 && nthreads >= 2) {
    threads[nthreads - 1].unshift({ k: 'wait' });
    threads[0].push({ k: 'post' });
  }
  const irqs: Spec['irqs'] = [];
  for (let i = 0; i < nirq; i++) irqs.push({ target: g.int(nthreads), body: genBody(g, { objects: base.objects, locks: 0 }, 1 + g.int(2), 0, 1, true) });
  const timer = g.int(3) === 0 ? { at: 5 + g.int(30), o: g.int(base.objects) } : null;
  return { ...base, threads, irqs, timer, declareSpin: g.int(2) === 0 };
}

/** A random program: shared state is `vals` (objects), `regs` (thread-local results), flags. */
function program(spec: Spec): Program {
  return {
    name: 'dpor-random',
    params: { spec: JSON.stringify(spec) },
    setup(sim: Engine) {
      const vals = new Array<number>(spec.objects).fill(0);
      const regs: number[][] = spec.threads.map(() => []);
      const st = { posted: 0, delivered: [] as number[] };
      sim.world = { vals, regs, st };
      const objs = vals.map((_, i) => sim.object(`o${i}`));
      const flagObj = sim.object('flag');
      const wq = sim.waitable('wq');
      const locks: Resource[] = [];
      for (let i = 0; i < spec.locks; i++) locks.push(new Resource(sim, `L${i}`, 1));
      const threads: Thread[] = [];
      const srcs: ReturnType<Engine['interruptSource']>[] = [];
      function* exec(t: Thread, body: Instr[], who: number): Generator<unknown, void, unknown> {
        for (const ins of body) {
          switch (ins.k) {
            case 'read':
              yield t.read(objs[ins.o]);
              regs[who].push(vals[ins.o]);
              break;
            case 'write':
              yield t.write(objs[ins.o]);
              vals[ins.o] = vals[ins.o] * 3 + who + 1;
              break;
            case 'lock':
              yield t.acquire(locks[ins.r]);
              yield* exec(t, ins.body, who);
              yield t.release(locks[ins.r]);
              break;
            case 'raise':
              yield t.point();
              sim.raise(srcs[ins.src]);
              break;
            case 'masked':
              t.interruptible = false;
              yield* exec(t, ins.body, who);
              t.interruptible = true;
              yield t.point();
              break;
            case 'spin':
              yield t.spinUntil(() => vals[ins.o] !== 0, null, null, null, spec.declareSpin ? [objs[ins.o]] : null);
              regs[who].push(vals[ins.o]);
              break;
            case 'wait':
              // Check-then-block in one step (as the engine promises).
              yield t.read(flagObj);
              while (st.posted === 0) {
                yield t.block(wq);
                yield t.read(flagObj);
              }
              regs[who].push(99);
              break;
            case 'post':
              yield t.write(flagObj);
              st.posted = 1;
              sim.wakeAll(wq);
              break;
            case 'work':
              yield t.work(ins.ns);
              break;
          }
        }
      }
      spec.threads.forEach((body, i) => threads.push(sim.spawn(`T${i}`, (t) => exec(t, body, i))));
      spec.irqs.forEach((irq, k) => {
        const who = spec.threads.length + k;
        regs.push([]);
        srcs.push(
          sim.interruptSource({
            name: `irq${k}`,
            target: threads[irq.target],
            handler: function* (t) {
              st.delivered.push(k);
              yield* exec(t, irq.body, who);
            },
          }),
        );
      });
      if (spec.timer !== null) {
        const o = spec.timer.o;
        sim.timer(spec.timer.at, () => {
          vals[o] = vals[o] * 3 + 7;
        });
      }
    },
  };
}

/** Terminal-state fingerprint: final shared state plus the run's findings. */

function explore(p: Program, s: Strategy, limit: number): Explored {
  return exploreStates(p, s, limit, { stepBudget: 500 });
}

describe('DPOR (source-DPOR with sleep sets)', () => {
  it('independent threads: one trace; threads on one object: every interleaving', () => {
    const indep: Program = {
      name: 'indep',
      setup(sim) {
        for (let i = 0; i < 3; i++) {
          const o = sim.object(`x${i}`);
          sim.spawn(`t${i}`, function* (t) {
            for (let k = 0; k < 3; k++) yield t.write(o);
          });
        }
      },
    };
    const d = new Dpor();
    const a = explore(indep, d, 1000);
    expect(a.exhausted).to.equal(true);
    expect(d.traces).to.equal(1);
    const d2 = new Dpor();
    const b = explore(grid(2, 3), d2, 1000);
    expect(b.exhausted).to.equal(true);
    // All writes to one object: the 20 orders are 20 distinct Mazurkiewicz traces.
    expect(d2.traces).to.equal(20);
    expect(b.states.size).to.equal(20);
  });

  it('two reads commute: 2 readers + 1 writer of one object give 4 traces, not 6', () => {
    const p: Program = {
      name: 'rrw',
      setup(sim) {
        const o = sim.object('x');
        const log: string[] = [];
        sim.world = log;
        sim.spawn('r1', function* (t) {
          yield t.read(o);
        });
        sim.spawn('r2', function* (t) {
          yield t.read(o);
        });
        sim.spawn('w', function* (t) {
          yield t.write(o);
        });
      },
    };
    const d = new Dpor();
    explore(p, d, 1000);
    // The reads commute; each orders against the write: 2 x 2 = 4 traces.
    expect(d.traces).to.equal(4);
  });

  // The differential check says "no" when a footprint is wrong: a spin whose predicate reads o0
  // but declares o1 lets DPOR treat the write of o0 as independent of the spin, and it misses
  // the terminal state where the spinner saw the first write.
  it('a spin predicate declaring the wrong object makes DPOR miss states (planted bug)', () => {
    const mk = (declared: 'right' | 'wrong'): Program => ({
      name: `spin-${declared}`,
      setup(sim) {
        const o0 = sim.object('o0');
        const o1 = sim.object('o1');
        const st = { v: 0, seen: -1 };
        sim.world = st;
        sim.spawn('w', function* (t) {
          yield t.write(o0);
          st.v = 1;
          yield t.write(o0);
          st.v = 2;
        });
        sim.spawn('s', function* (t) {
          yield t.spinUntil(() => st.v !== 0, null, null, null, [declared === 'right' ? o0 : o1]);
          st.seen = st.v;
        });
      },
    });
    const full = explore(mk('right'), new Dfs(), 1000).states;
    expect(full.size).to.equal(2);
    expect([...explore(mk('right'), new Dpor(), 1000).states].sort()).to.deep.equal([...full].sort());
    expect(explore(mk('wrong'), new Dpor(), 1000).states.size).to.be.below(full.size);
  });

  it('an undeclared spin predicate depends on everything: still sound', () => {
    const p: Program = {
      name: 'spin-undeclared',
      setup(sim) {
        const o0 = sim.object('o0');
        const st = { v: 0, seen: -1 };
        sim.world = st;
        sim.spawn('w', function* (t) {
          yield t.write(o0);
          st.v = 1;
          yield t.write(o0);
          st.v = 2;
        });
        sim.spawn('s', function* (t) {
          yield t.spinUntil(() => st.v !== 0);
          st.seen = st.v;
        });
      },
    };
    expect(explore(p, new Dpor(), 1000).states.size).to.equal(explore(p, new Dfs(), 1000).states.size);
  });

  it('search verdict: exhausted, budget (a run hit the step budget, or iterations ran out), decided', () => {
    const ok = hunt(grid(2, 3), { strategy: 'dpor', iterations: 1000 });
    expect(ok.search).to.equal('exhausted');
    expect(ok.dpor).to.include({ traces: 20, sleepBlocked: 0 });
    // Too few iterations: budget.
    expect(hunt(grid(2, 3), { strategy: 'dpor', iterations: 5 }).search).to.equal('budget');
    // Step budget cuts every run: the tree ran out, but it is not exhausted.
    const cut = hunt(grid(2, 3), { strategy: 'dpor', iterations: 1000, stepBudget: 3, stopAtFirst: false });
    expect(cut.search).to.equal('budget');
    // A finding stops the hunt: decided.
    const bug: Program = {
      name: 'bug',
      setup(sim) {
        const x = sim.object('x');
        const st = { a: 0 };
        sim.spawn('a', function* (t) {
          yield t.write(x);
          st.a = 1;
        });
        sim.spawn('b', function* (t) {
          yield t.read(x);
          sim.assert(st.a === 0, 'late', 'b saw a');
        });
      },
    };
    const d = hunt(bug, { strategy: 'dpor', iterations: 1000 });
    expect(d.findings.map((f) => f.kind)).to.deep.equal(['assertion']);
    expect(d.search).to.equal('decided');
    // Plain DFS gets the same verdicts.
    expect(hunt(grid(2, 3), { strategy: 'dfs', iterations: 1000 }).search).to.equal('exhausted');
  });

  it('a program that changes under a replayed prefix is a nondeterminism finding, never exhausted', () => {
    let calls = 0;
    const p: Program = {
      name: 'drift',
      setup(sim) {
        const x = sim.object('x');
        calls++;
        const n = calls >= 7 ? 3 : 2; // a third thread appears after 4 calibration runs and 2 DPOR runs
        for (let i = 0; i < n; i++) {
          sim.spawn(`t${i}`, function* (t) {
            yield t.write(x);
            yield t.write(x);
          });
        }
      },
    };
    const r = hunt(p, { strategy: 'dpor', iterations: 1000, stopAtFirst: false });
    expect(r.findings.map((f) => f.kind)).to.include('nondeterminism');
    expect(r.search).to.not.equal('exhausted');
  });

  it('--strategy dpor refuses bounds, a horizon, and splitting', () => {
    expect(() => hunt(grid(2, 2), { strategy: 'dpor', preemptionBound: 1 })).to.throw(/bounded by steps only/);
    expect(() => hunt(grid(2, 2), { strategy: 'dpor', horizon: 1000 })).to.throw(/horizon/);
    expect(() => hunt(grid(2, 2), { strategy: 'dpor', splitDfs: true })).to.throw(/one process/);
  });

  // Differential: DPOR reaches exactly the terminal states (final shared state + findings) of
  // unbounded plain DFS, on random programs with locks, interrupts, spins, wait/post and timers.
  const SEEDS = 80;
  let dfsRuns = 0;
  let dporRuns = 0;
  let compared = 0;
  let skipped = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    it(`random program ${seed}: same terminal states as plain DFS`, function () {
      const spec = genSpec(seed * 7919);
      const p = program(spec);
      // Programs whose full tree is too large for a unit test are skipped (counted below).
      const full = explore(p, new Dfs(), 12_000);
      if (!full.exhausted) {
        skipped++;
        this.skip();
      }
      const d = new Dpor();
      const red = explore(p, d, 200_000);
      expect(red.exhausted).to.equal(true);
      expect(d.divergences).to.equal(0);
      expect([...red.states].sort()).to.deep.equal([...full.states].sort());
      expect(red.runs).to.be.at.most(full.runs);
      dfsRuns += full.runs;
      dporRuns += red.runs;
      compared++;
    });
  }
  after(() => {
    // eslint-disable-next-line no-console
    console.log(`      differential: ${compared} programs (${skipped} too large for plain DFS, skipped), DFS ${dfsRuns} runs, DPOR ${dporRuns} runs`);
  });
});
