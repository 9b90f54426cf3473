import { expect } from 'chai';
import { Engine, hunt, makeStrategy, type Program, type Thread } from '../../scheduler';
import { irqSpread } from '../../scheduler/examples/toys';

describe('interrupt delivery', () => {
  it('random walk spreads the landing point over a long critical section', () => {
    const len = 40;
    const e = new Engine();
    const s = makeStrategy({ strategy: 'random' });
    const landed: number[] = [];
    for (let seed = 0; seed < 400; seed++) {
      e.run(irqSpread(len), s, seed, len + 1);
      landed.push((e.world as { landedAt: number }).landedAt);
    }
    const secondHalf = landed.filter((x) => x >= len / 2).length / landed.length;
    const atFirst = landed.filter((x) => x <= 0).length / landed.length;
    const distinct = new Set(landed).size;
    // A coin flip per point would land ~50% at the first point and almost never in the second half.
    expect(secondHalf).to.be.within(0.3, 0.7);
    expect(atFirst).to.be.below(0.1);
    expect(distinct).to.be.at.least(30);
  });

  it('PCT lands interrupts at many points too (priorities plus change points)', () => {
    const e = new Engine();
    const s = makeStrategy({ strategy: 'pct', depth: 3 });
    const landed = new Set<number>();
    for (let seed = 0; seed < 400; seed++) {
      e.run(irqSpread(40), s, seed, 41);
      landed.add((e.world as { landedAt: number }).landedAt);
    }
    expect(landed.size).to.be.at.least(10);
  });

  /** cpu0 holds a spinlock-like flag; an interrupt on cpu0 wants it too. */
  function selfDeadlock(maskDuringSection: boolean): Program {
    return {
      name: `self-deadlock-${maskDuringSection}`,
      params: { maskDuringSection },
      setup(sim) {
        const lockObj = sim.object('lock');
        const st = { owner: -1 };
        function* lock(t: Thread) {
          yield t.write(lockObj);
          if (st.owner >= 0) yield t.spinUntil(() => st.owner < 0);
          st.owner = t.id;
        }
        function* unlock(t: Thread) {
          yield t.write(lockObj);
          st.owner = -1;
        }
        const cpu = sim.spawn('cpu0', function* (t) {
          if (maskDuringSection) t.interruptible = false;
          yield* lock(t);
          yield t.work(100);
          yield t.point();
          yield* unlock(t);
          if (maskDuringSection) {
            t.interruptible = true;
            yield t.point(); // pending interrupts may land once re-enabled
          }
        });
        const irq = sim.interruptSource({ name: 'irq', target: cpu, handler: lock });
        sim.raise(irq);
      },
    };
  }

  it('a handler spinning on a lock its own thread holds is found (no_progress)', () => {
    const h = hunt(selfDeadlock(false), { seed: 1, iterations: 200 });
    expect(h.findings.map((f) => f.kind)).to.deep.equal(['no_progress']);
    expect(h.findings[0].text).to.match(/cpu0: spinning/);
  });

  it('masking interrupts across the section keeps it clean, and the interrupt is still taken', () => {
    const e = new Engine();
    const s = makeStrategy({ strategy: 'random' });
    for (let seed = 0; seed < 300; seed++) {
      const r = e.run(selfDeadlock(true), s, seed, 10);
      expect(r.findings, `seed ${seed}`).to.deep.equal([]);
      expect(r.metrics.interrupts).to.equal(1);
    }
    expect(hunt(selfDeadlock(true), { strategy: 'dfs', iterations: 1000 }).findings).to.deep.equal([]);
  });

  it('an interrupt lands on a blocked thread and the thread blocks again after it', () => {
    const p: Program = {
      name: 'irq-on-blocked',
      setup(sim) {
        const wq = sim.waitable('wq');
        const out: string[] = [];
        sim.world = out;
        const sleeper = sim.spawn('sleeper', function* (t) {
          yield t.block(wq);
          out.push(`woken at ${t.clock}`);
        });
        const irq = sim.interruptSource({
          name: 'irq',
          target: sleeper,
          *handler(t) {
            out.push(`irq at ${t.clock}`);
            yield t.work(10);
          },
        });
        sim.timer(100, () => sim.raise(irq));
        sim.timer(500, () => sim.wake(wq));
      },
    };
    const r = new Engine({ window: 0 }).run(p, makeStrategy({}), 1, 10);
    expect(r.findings).to.deep.equal([]);
    expect(r.metrics.interrupts).to.equal(1);
  });

  it('a wake that lands while the handler runs is applied when the handler returns', () => {
    const p: Program = {
      name: 'wake-under-handler',
      setup(sim) {
        const wq = sim.waitable('wq');
        const o = sim.object('o');
        const out: string[] = [];
        sim.world = out;
        const sleeper = sim.spawn('sleeper', function* (t) {
          yield t.block(wq);
          out.push('sleeper resumed');
        });
        sim.spawn('waker', function* (t) {
          yield t.work(50);
          yield t.write(o);
          out.push('wake');
          t.wake(wq);
        });
        const irq = sim.interruptSource({
          name: 'irq',
          target: sleeper,
          *handler(t) {
            out.push('handler start');
            yield t.write(o);
            yield t.write(o);
            out.push('handler end');
          },
        });
        sim.raise(irq);
      },
    };
    const e = new Engine();
    const s = makeStrategy({ strategy: 'dfs' });
    const orders = new Set<string>();
    while (!s.exhausted()) {
      const r = e.run(p, s, 0, 10);
      expect(r.findings).to.deep.equal([]);
      const out = e.world as string[];
      expect(out.filter((x) => x === 'sleeper resumed')).to.have.length(1);
      orders.add(out.join(','));
    }
    // woken underneath the handler: resumes only once the handler has returned
    expect(orders).to.include('handler start,wake,handler end,sleeper resumed');
    // woken first, interrupt taken at its last chance (as the thread exits)
    expect(orders).to.include('wake,sleeper resumed,handler start,handler end');
    for (const o of orders) expect(o).to.not.match(/handler start,[^]*sleeper resumed,[^]*handler end/);
  });

  it('raising an interrupt that is already pending coalesces', () => {
    const p: Program = {
      name: 'coalesce',
      setup(sim) {
        const cpu = sim.spawn('cpu', function* (t) {
          t.interruptible = false;
          yield t.work(10);
          yield t.point();
          t.interruptible = true;
          yield t.point();
        });
        const irq = sim.interruptSource({ name: 'irq', target: cpu, *handler(t) { yield t.work(1); } });
        sim.raise(irq);
        sim.raise(irq);
        sim.raise(irq);
      },
    };
    const r = new Engine().run(p, makeStrategy({}), 1, 5);
    expect(r.metrics.interrupts).to.equal(1);
    expect(r.metrics.coalesced).to.equal(2);
  });
});

describe('daemon threads', () => {
  it('an idle daemon waiting for interrupts does not make a finished run look stuck', () => {
    const p: Program = {
      name: 'daemon',
      setup(sim) {
        const never = sim.waitable('never');
        const out: string[] = [];
        sim.world = out;
        const idle = sim.spawn('swapper/0', function* (t) {
          yield t.block(never);
        }, 0, { daemon: true });
        const irq = sim.interruptSource({ name: 'tick', target: idle, *handler(t) { out.push('tick'); yield t.work(1); } });
        sim.spawn('worker', function* (t) {
          yield t.work(10);
          yield t.point();
          t.raise(irq);
        });
      },
    };
    const r = new Engine().run(p, makeStrategy({}), 1, 10);
    expect(r.findings).to.deep.equal([]);
    expect(r.endReason).to.equal('done');
    expect(r.metrics.interrupts).to.equal(1);
  });
});
