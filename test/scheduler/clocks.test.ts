import { expect } from 'chai';
import { Engine, Resource, makeStrategy, type Program, type Thread } from '../../scheduler';

/** Records (thread, clock) at every visible step of every frame, handlers included. */
function recorder(): Program {
  return {
    name: 'clock-recorder',
    setup(sim) {
      const seen: [number, number][] = [];
      sim.world = seen;
      const lock = new Resource(sim, 'lock', 1);
      const o = sim.object('o');
      const ths: Thread[] = [];
      for (let i = 0; i < 3; i++) {
        ths.push(
          sim.spawn(`t${i}`, function* (t) {
            for (let r = 0; r < 3; r++) {
              yield t.work(7 + 13 * i);
              yield lock.acquire(t);
              seen.push([t.id, t.clock]);
              yield t.work(100);
              yield lock.release(t);
              seen.push([t.id, t.clock]);
              yield t.write(o);
              seen.push([t.id, t.clock]);
            }
          }),
        );
      }
      const irq = sim.interruptSource({
        name: 'irq',
        target: ths[1],
        *handler(t) {
          seen.push([t.id, t.clock]);
          yield t.work(25);
          yield t.write(o);
          seen.push([t.id, t.clock]);
        },
      });
      sim.timer(150, () => sim.raise(irq));
      sim.timer(420, () => sim.raise(irq));
    },
  };
}

describe('virtual clocks', () => {
  for (const spec of [{ strategy: 'random' }, { strategy: 'pct', depth: 3 }, { strategy: 'fair-pct' }, { strategy: 'dfs', preemptionBound: 2 }]) {
    for (const window of [Infinity, 0, 50]) {
      it(`never run backwards under ${spec.strategy} (window ${window})`, () => {
        const e = new Engine({ window });
        const s = makeStrategy(spec);
        for (let seed = 0; seed < 60 && !s.exhausted(); seed++) {
          const r = e.run(recorder(), s, seed, 60);
          expect(r.endReason).to.equal('done');
          const last = new Map<number, number>();
          for (const [id, c] of e.world as [number, number][]) {
            expect(c, `thread ${id} seed ${seed}`).to.be.at.least(last.get(id) ?? 0);
            last.set(id, c);
          }
        }
      });
    }
  }

  it('carries time across a lock hand-over: the waiter continues at the releaser clock', () => {
    const p: Program = {
      name: 'handover',
      setup(sim) {
        const lock = new Resource(sim, 'lock', 1);
        const got: Record<string, number> = {};
        sim.world = got;
        sim.spawn('holder', function* (t) {
          yield lock.acquire(t);
          yield t.work(1000);
          yield lock.release(t);
        });
        sim.spawn('waiter', function* (t) {
          yield t.work(5);
          yield lock.acquire(t);
          got.waiter = t.clock;
        });
      },
    };
    for (const window of [Infinity, 0]) {
      const e = new Engine({ window });
      // default policy: the holder runs first and holds 1000 ns; the waiter blocks at 5 ns.
      e.run(p, makeStrategy({ strategy: 'dfs' }), 0, 10);
      expect((e.world as { waiter: number }).waiter).to.equal(1000);
    }
  });

  it('timed mode runs steps in time order and splits local work at an interrupt', () => {
    const p: Program = {
      name: 'split',
      setup(sim) {
        const o = sim.object('o');
        const out: Record<string, number> = {};
        sim.world = out;
        const cpu = sim.spawn('cpu', function* (t) {
          yield t.work(1000);
          yield t.write(o);
          out.after = t.clock;
        });
        const irq = sim.interruptSource({
          name: 'irq',
          target: cpu,
          *handler(t) {
            out.handlerStart = t.clock;
            yield t.work(100);
          },
        });
        sim.timer(300, () => sim.raise(irq));
      },
    };
    const e = new Engine({ window: 0 });
    e.run(p, makeStrategy({}), 1, 10);
    expect(e.world).to.deep.equal({ handlerStart: 300, after: 1100 });
  });

  it('a horizon ends a timed run cleanly', () => {
    const p: Program = {
      name: 'forever',
      setup(sim) {
        sim.spawn('tick', function* (t) {
          for (;;) yield t.work(10);
        });
      },
    };
    const r = new Engine({ window: 0, horizon: 10_000 }).run(p, makeStrategy({}), 1, 10);
    expect(r.endReason).to.equal('horizon');
    expect(r.findings).to.deep.equal([]);
    expect(r.metrics.endTime).to.be.within(10_000, 10_010);
  });
});
