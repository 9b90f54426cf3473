/**
 * Regressions from the engine review: each case once gave a wrong time, a false finding, a
 * hang or a raw exception.
 */
import { expect } from 'chai';
import {
  Engine,
  InputError,
  ProgramError,
  ReplayStrategy,
  ScheduleError,
  hunt,
  makeStrategy,
  replay,
  runIteration,
  type InterruptSource,
  type Program,
  type Thread,
} from '../../scheduler';
import { grid, runaway } from '../../scheduler/examples/toys';

describe('engine regressions', () => {
  it('a spinner taking over a released lock continues at the release, not after later work', () => {
    for (const spin of [true, false]) {
      const p: Program = {
        name: 'spin-release-time',
        setup(sim) {
          const lock = sim.object('lock');
          const wq = sim.waitable('wq');
          const st = { held: false };
          const out: Record<string, number> = {};
          sim.world = out;
          sim.spawn('A', function* (t) {
            yield t.write(lock);
            st.held = true;
            yield t.work(100);
            yield t.write(lock);
            st.held = false;
            t.wake(wq);
            yield t.work(1000);
            yield t.point();
          });
          sim.spawn('S', function* (t) {
            yield t.work(10);
            yield t.write(lock);
            if (st.held) yield spin ? t.spinUntil(() => !st.held) : t.block(wq);
            out.acquiredAt = t.clock;
          });
        },
      };
      for (const window of [0, Infinity]) {
        const e = new Engine({ window });
        e.run(p, makeStrategy({ strategy: 'dfs' }), 1, 10);
        expect((e.world as { acquiredAt: number }).acquiredAt, `spin=${spin} window=${window}`).to.equal(100);
      }
    }
  });

  it('an interrupt raised during a masked handler lands when the handler returns, inside split work', () => {
    const p: Program = {
      name: 'split-second-irq',
      setup(sim) {
        const out: Record<string, number> = {};
        sim.world = out;
        const cpu = sim.spawn('cpu', function* (t) {
          yield t.work(1000);
          out.bodyDone = t.clock;
        });
        const mk = (name: string): InterruptSource =>
          sim.interruptSource({
            name,
            target: cpu,
            *handler(t) {
              out[`${name}Start`] = t.clock;
              yield t.work(100);
            },
          });
        const i1 = mk('irq1'), i2 = mk('irq2');
        sim.timer(300, () => sim.raise(i1));
        sim.timer(350, () => sim.raise(i2));
      },
    };
    const e = new Engine({ window: 0 });
    e.run(p, makeStrategy({}), 1, 10);
    expect(e.world).to.deep.equal({ irq1Start: 300, irq2Start: 400, bodyDone: 1200 });
  });

  for (const how of ['retarget', 'mask'] as const) {
    it(`a thread waiting at exit for an interrupt that goes away (${how}) exits, no false no_progress`, () => {
      const p: Program = {
        name: `exit-${how}`,
        setup(sim) {
          const o = sim.object('o');
          const b = sim.spawn('B', function* (t) {
            yield t.point();
          });
          let src: InterruptSource;
          sim.spawn('A', function* (t) {
            yield t.write(o);
            if (how === 'retarget') sim.retarget(src, t);
            else b.interruptible = false;
            yield t.point();
          });
          src = sim.interruptSource({ name: 'irq', target: b, *handler(t) { yield t.work(1); } });
          sim.raise(src);
        },
      };
      const h = hunt(p, { strategy: 'dfs', iterations: 100, stopAtFirst: false });
      expect(h.exhausted).to.equal(true);
      expect(h.findings).to.deep.equal([]);
    });
  }

  it('wakeChoice with more than 64 waiters and an interrupt storm of more than 64 sources', () => {
    const p: Program = {
      name: 'many',
      setup(sim) {
        const wq = sim.waitable('wq');
        const o = sim.object('o');
        const st = { woken: 0, irqs: 0 };
        sim.world = st;
        for (let i = 0; i < 70; i++) {
          sim.spawn(`s${i}`, function* (t) {
            yield t.block(wq);
            st.woken++;
          });
        }
        const cpu = sim.spawn('waker', function* (t) {
          for (let i = 0; i < 70; i++) {
            yield t.write(o);
            sim.wakeChoice(wq);
          }
        });
        for (let i = 0; i < 80; i++) {
          sim.raise(sim.interruptSource({ name: `i${i}`, target: cpu, *handler(t) { st.irqs++; yield t.work(1); } }));
        }
      },
    };
    const e = new Engine();
    for (let seed = 0; seed < 30; seed++) {
      const r = e.run(p, makeStrategy({ strategy: 'random' }), seed, 200);
      expect(r.findings).to.deep.equal([]);
      expect(e.world).to.deep.equal({ woken: 70, irqs: 80 });
    }
  });

  it('an interrupt whose canDeliver turns true later is delivered', () => {
    const p: Program = {
      name: 'candeliver-late',
      setup(sim) {
        const wq = sim.waitable('wq');
        const o = sim.object('o');
        const st = { on: false };
        const b = sim.spawn('B', function* (t) {
          yield t.block(wq);
        });
        sim.spawn('A', function* (t) {
          yield t.write(o);
          st.on = true;
          yield t.write(o);
        });
        const src = sim.interruptSource({ name: 'irq', target: b, canDeliver: () => st.on, *handler(t) { yield t.work(1); t.wake(wq); } });
        sim.raise(src);
      },
    };
    for (const window of [Infinity, 0]) {
      const h = hunt(p, { strategy: 'dfs', window, iterations: 100, stopAtFirst: false });
      expect(h.findings, `window ${window}`).to.deep.equal([]);
    }
  });

  it('fair-PCT delivers the interrupt a polling thread waits for', () => {
    const p: Program = {
      name: 'poll-own-irq',
      setup(sim) {
        const st = { done: false };
        const o = sim.object('flag');
        const cpu = sim.spawn('cpu', function* (t) {
          while (!st.done) yield t.point();
        });
        sim.spawn('other', function* (t) {
          for (let i = 0; i < 3; i++) yield t.write(o);
        });
        sim.raise(sim.interruptSource({ name: 'dev', target: cpu, *handler(t) { yield t.write(o); st.done = true; } }));
      },
    };
    for (const depth of [1, 2, 3]) {
      const e = new Engine({ stepBudget: 20000 });
      const s = makeStrategy({ strategy: 'fair-pct', depth });
      for (let seed = 0; seed < 100; seed++) expect(e.run(p, s, seed, 20).findings, `d=${depth} seed ${seed}`).to.deep.equal([]);
    }
  });

  it('timed mode: a finished thread whose interrupt is raised later idles until the raise', () => {
    const p: Program = {
      name: 'late-ipi',
      setup(sim) {
        const o = sim.object('o');
        const out: Record<string, number> = {};
        sim.world = out;
        const b = sim.spawn('B', function* (t) {
          yield t.write(o);
          yield t.work(10);
          yield t.write(o);
        });
        const ipi = sim.interruptSource({ name: 'ipi', target: b, *handler(t) { out.ipiAt = t.clock; yield t.work(1); } });
        sim.spawn('A', function* (t) { t.raise(ipi); yield t.write(o); }, 1000);
      },
    };
    const e = new Engine({ window: 0, stepBudget: 1000 });
    const r = e.run(p, makeStrategy({}), 1, 10);
    expect(r.findings).to.deep.equal([]);
    expect(e.world).to.deep.equal({ ipiAt: 1000 });
  });

  it('a masked interrupt does not drag its blocked target forward in time', () => {
    const p: Program = {
      name: 'masked-raise-clock',
      setup(sim) {
        const wq = sim.waitable('wq');
        const out: Record<string, number> = {};
        sim.world = out;
        const b = sim.spawn('B', function* (t) {
          t.interruptible = false;
          yield t.block(wq);
          out.wokeAt = t.clock;
        });
        const src = sim.interruptSource({ name: 'irq', target: b, *handler(t) { yield t.work(1); } });
        sim.spawn('A', function* (t) { yield t.work(1_000_000); yield t.point(); t.raise(src); });
        sim.spawn('C', function* (t) { yield t.work(10); yield t.point(); t.wake(wq); });
      },
    };
    const e = new Engine();
    e.run(p, makeStrategy({ strategy: 'dfs' }), 0, 10);
    expect(e.world).to.deep.equal({ wokeAt: 10 });
  });

  it('a step_budget schedule replays (the budget is part of the program hash)', () => {
    const h = hunt(runaway(), { iterations: 1, stepBudget: 200 });
    const s = h.findings[0].schedule;
    expect(() => replay(runaway(), s)).to.throw(ScheduleError, /options changed/);
    expect(replay(runaway(), s, { stepBudget: 200 }).findings.map((f) => f.kind)).to.deep.equal(['step_budget']);
  });

  it('deleting a deviation of one kind does not move a later deviation of another kind', () => {
    const p: Program = {
      name: 'sub-shift',
      setup(sim) {
        const wq = sim.waitable('wq');
        const st: Record<string, number> = {};
        sim.world = st;
        sim.spawn('P', function* (t) {
          yield t.point();
          if (sim.fault(0.5)) t.wake(wq);
        });
        sim.spawn('Y', function* (t) {
          yield t.point();
          st.a = sim.jitter([0, 1, 2]);
          st.b = sim.jitter([0, 1, 2]);
        });
        sim.spawn('Z', function* (t) {
          yield t.block(wq);
          yield t.point();
        });
      },
    };
    const e = new Engine();
    // find a run where the fault fired and only b got jitter
    let devs = null;
    for (let seed = 0; seed < 500 && devs === null; seed++) {
      const r = e.run(p, makeStrategy({}), seed, 10);
      const w = e.world as Record<string, number>;
      if (r.deviations.some((d) => d.kind === 4) && w.a === 0 && w.b === 2) devs = r.deviations;
    }
    expect(devs).to.not.equal(null);
    const withoutFault = devs!.filter((d) => d.kind !== 4);
    e.run(p, new ReplayStrategy(withoutFault, 'lenient'), 0, 10);
    expect(e.world).to.deep.equal({ a: 0, b: 2 });
  });

  it('runIteration walks DFS paths in order', () => {
    const paths = [0, 1, 2, 3].map((i) => runIteration(grid(2, 2), { strategy: 'dfs', iteration: i }).hash);
    expect(new Set(paths).size).to.equal(4);
    expect(() => runIteration(grid(2, 2), { strategy: 'dfs', iteration: 6 })).to.throw(InputError, /past the end of the DFS tree/);
  });

  it('resuming local work picked without a choice is not a preemption', () => {
    const p: Program = {
      name: 'cont-preempt',
      setup(sim) {
        const o = sim.object('o');
        sim.spawn('B', function* (t) { yield t.work(5); yield t.write(o); yield t.work(5); yield t.write(o); yield t.write(o); });
        sim.spawn('A', function* (t) { yield t.work(10); yield t.write(o); });
      },
    };
    const r = new Engine({ window: 0 }).run(p, makeStrategy({ strategy: 'dfs' }), 0, 10);
    expect(r.metrics.preemptions).to.be.at.most(r.metrics.choices);
    expect(r.metrics.preemptions).to.equal(0);
  });

  it('bad program input is a scenario_error finding (or an InputError for bad options), never a raw exception', () => {
    const one = (body: (sim: Engine, t: Thread) => Generator<unknown, unknown, unknown>, extra?: (sim: Engine) => void): Program => ({
      name: 'bad',
      setup(sim) {
        sim.spawn('a', (t) => body(sim, t));
        extra?.(sim);
      },
    });
    const crash = (p: Program, re: RegExp) => {
      const r = new Engine({}).run(p, makeStrategy({}), 1, 10);
      expect(r.endReason).to.equal('fatal');
      expect(r.findings.map((f) => f.kind)).to.deep.equal(['scenario_error']);
      expect(r.findings[0].text).to.match(re);
    };
    crash(one(function* (_s, t) { yield t.spinUntil(undefined as unknown as () => boolean); }), /spinUntil\(\) needs a predicate/);
    crash(one(function* (_s, t) { yield t.spinUntil(() => { throw new Error('boom'); }); }), /spin predicate of thread a threw: boom/);
    crash(one(function* (_s, t) { yield t.point(); }, (sim) => sim.timer(5, () => { throw new Error('boom'); })), /timer timer threw: boom/);
    crash(one(function* (s, t) { s.raise(undefined as unknown as InterruptSource); yield t.point(); }), /raise\(\) needs an interrupt source/);
    crash(one(function* (_s, t) { yield t.read(2 ** 31); }), /not a shared object id/);
    expect(() => hunt(grid(), { strategy: 'pct', depth: 1e10 })).to.throw(InputError, /bad depth/);
    expect(() => hunt(grid(), { maxFaults: 'abc' as unknown as number })).to.throw(InputError, /bad fault budget/);
    expect(() => new ReplayStrategy([], 'bogus' as 'strict')).to.throw(InputError, /unknown replay mode "bogus"/);
    expect(() => runIteration(grid(), { iteration: 'x' as unknown as number })).to.throw(InputError, /bad iteration/);
  });

});
