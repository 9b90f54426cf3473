import { expect } from 'chai';
import * as sinon from 'sinon';
import { Engine, deriveSeed, hunt, makeStrategy, replay, runIteration, type Program } from '../../scheduler';
import type { InterruptSpec } from '../../scheduler/interrupt';
import type { ThreadFn } from '../../scheduler/thread';
import { grid, lostUpdate, lostWakeup, runaway } from '../../scheduler/examples/toys';

describe('explorer', () => {
  it('stops a runaway run at the step budget with a finding, never hangs', () => {
    const h = hunt(runaway(), { iterations: 3, stepBudget: 5000 });
    expect(h.findings.map((f) => f.kind)).to.deep.equal(['step_budget']);
    expect(h.findings[0].headline).to.match(/5000 steps/);
    expect(h.schedulesRun).to.equal(1);
  });

  it('stops an endless loop of invisible work too', () => {
    const p: Program = {
      name: 'invisible-loop',
      setup(sim) {
        sim.spawn('spin', function* (t) {
          for (;;) yield t.work(1);
        });
      },
    };
    const r = new Engine().run(p, makeStrategy({}), 1, 10);
    expect(r.findings.map((f) => f.fingerprint)).to.deep.equal(['step_budget:inline:spin']);
  });

  it('finds a lost wakeup as no_progress, naming who waits on what', () => {
    const h = hunt(lostWakeup(), { seed: 0, iterations: 200 });
    expect(h.findings.map((f) => f.kind)).to.deep.equal(['no_progress']);
    expect(h.findings[0].fingerprint).to.equal('no_progress:sleeper@wq');
    expect(h.findings[0].text).to.match(/sleeper: blocked on wq/);
    // ... and DFS proves the correct order exists too
    const all = hunt(lostWakeup(), { strategy: 'dfs', iterations: 100, stopAtFirst: false });
    expect(all.exhausted).to.equal(true);
    expect(all.findings[0].runs).to.be.lessThan(all.schedulesRun);
  });

  it('"first finding" is the lowest iteration, and that iteration reruns alone', () => {
    const h = hunt(lostUpdate(2, 2), { seed: 9, iterations: 500 });
    const first = h.firstIteration;
    expect(first).to.be.at.least(0);
    const all = hunt(lostUpdate(2, 2), { seed: 9, iterations: first + 1, stopAtFirst: false });
    expect(all.firstIteration).to.equal(first);
    const alone = runIteration(lostUpdate(2, 2), { seed: 9, iteration: first });
    expect(alone.findings.map((f) => f.fingerprint)).to.deep.equal(h.findings.map((f) => f.fingerprint));
    expect(alone.seed).to.equal(deriveSeed(9, first));
  });

  it('collects every distinct fingerprint with counts when asked to run everything', () => {
    const h = hunt(lostUpdate(3, 1), { seed: 2, iterations: 300, stopAtFirst: false });
    expect(h.schedulesRun).to.equal(300);
    const f = h.findings[0];
    expect(f.runs).to.be.greaterThan(10);
    expect(f.totalCount).to.equal(f.runs);
    expect(h.totals.steps).to.equal(300 * 6);
  });

  it('stopWhenSeen runs until every wanted kind has appeared', () => {
    const h = hunt(lostUpdate(2, 1), { seed: 2, iterations: 300, stopWhenSeen: ['assertion'] });
    expect(h.findings.map((f) => f.kind)).to.deep.equal(['assertion']);
    expect(h.schedulesRun).to.equal(h.firstIteration + 1);
  });

  it('reports progress through the callback', () => {
    const spy = sinon.spy();
    hunt(grid(2, 3), { iterations: 250, stopAtFirst: false, onProgress: spy, progressEvery: 100 });
    expect(spy.callCount).to.equal(3);
    expect(spy.firstCall.args[0]).to.deep.equal({ done: 100, total: 250, findings: 0 });
    expect(spy.lastCall.args[0].done).to.equal(250);
  });

  it('every finding carries a schedule that replays to the same fingerprint', () => {
    for (const strategy of ['random', 'pct', 'fair-pct', 'dfs']) {
      const h = hunt(lostUpdate(2, 2), { strategy, seed: 5, iterations: 2000 });
      expect(h.findings, strategy).to.have.length(1);
      const r = replay(lostUpdate(2, 2), h.findings[0].schedule);
      expect(r.findings.map((f) => f.fingerprint)).to.deep.equal([h.findings[0].fingerprint]);
    }
  });

  it('bounds injected faults per run', () => {
    const p: Program = {
      name: 'faults',
      setup(sim) {
        const o = sim.object('o');
        const st = { fired: 0 };
        sim.world = st;
        sim.spawn('f', function* (t) {
          for (let i = 0; i < 50; i++) {
            yield t.write(o);
            if (sim.fault(0.5)) st.fired++;
          }
        });
      },
    };
    for (const maxFaults of [0, 1, 3]) {
      const e = new Engine({ maxFaults });
      for (let seed = 0; seed < 20; seed++) {
        const r = e.run(p, makeStrategy({}), seed, 50);
        expect((e.world as { fired: number }).fired).to.equal(r.metrics.faults);
        expect(r.metrics.faults).to.be.at.most(maxFaults);
        if (maxFaults > 0) expect(r.metrics.faults).to.be.greaterThan(0);
      }
    }
  });

  it('reports a malformed program as a scenario_error finding naming the thread and the site, with its schedule', () => {
    const bad: Program = {
      name: 'bad',
      setup(sim) {
        sim.spawn('oops', function* () {
          yield 42;
        });
      },
    };
    const hb = hunt(bad, { iterations: 1 });
    expect(hb.findings.map((f) => f.kind)).to.deep.equal(['scenario_error']);
    expect(hb.findings[0].text).to.match(/thread oops yielded 42 instead of an op/);
    // placed at the code that issued the op (this test file), found by re-running with op sites
    expect(hb.findings[0].text).to.match(/test\/scheduler\/explorer\.test\.ts:\d+/);
    const neg: Program = {
      name: 'neg',
      setup(sim) {
        sim.spawn('neg', function* (t) {
          yield t.work(-5);
        });
      },
    };
    const hn = hunt(neg, { iterations: 1 });
    expect(hn.findings.map((f) => f.kind)).to.deep.equal(['scenario_error']);
    expect(hn.findings[0].text).to.match(/work\(-5\): duration must be/);
  });

  it('reports a thread function or interrupt handler that returns no generator as a scenario_error naming it', () => {
    // The engine resumes bodies with %GeneratorPrototype%.next, so anything else is refused up front.
    const plain: Program = {
      name: 'plain',
      setup(sim) {
        sim.spawn('notgen', (() => ({ next: () => ({ done: true, value: undefined }) })) as unknown as ThreadFn);
      },
    };
    const hp = hunt(plain, { iterations: 1 });
    expect(hp.findings.map((f) => f.kind)).to.deep.equal(['scenario_error']);
    expect(hp.findings[0].text).to.match(/thread notgen: its function returned an object that is not a generator: write it as a generator function/);
    const handler: Program = {
      name: 'handler',
      setup(sim) {
        sim.spawn('cpu', function* (t) {
          const src = sim.interruptSource({ name: 'irq0', target: t, handler: (() => 7) as unknown as InterruptSpec['handler'] });
          sim.raise(src);
          yield t.work(10);
        });
      },
    };
    const hh = hunt(handler, { iterations: 1 });
    expect(hh.findings.map((f) => f.kind)).to.deep.equal(['scenario_error']);
    expect(hh.findings[0].text).to.match(/interrupt irq0: its handler returned 7: write it as a generator function/);
  });
});
