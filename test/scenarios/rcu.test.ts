/**
 * Seeded hunts over the rcu-uaf scenario, both sides: the buggy variant yields its rcu findings
 * within a stated number of schedules from a fixed seed, the fixed (kfree_rcu) and sync
 * (synchronize_rcu + kfree) variants stay clean over at least ten times as many, and a replayed
 * schedule reproduces the same finding text.
 */
import { expect } from 'chai';
import { Engine, hunt, makeStrategy, replay } from '../../scheduler';
import type { Machine } from '../../lib/kernel';
import { rcuStateIfUsed } from '../../lib/kernel/rcu';
import { scenarioProgram, type ScenarioDef } from '../../lib/scenario/define';
import rcuUaf from '../../scenarios/rcu-uaf';

const def = rcuUaf as unknown as ScenarioDef;

// Schedules to the first finding from these seeds (random walk): 27 and 9 with the defaults,
// 17 and 4 with three readers on four CPUs.
const cases: { params: Record<string, number>; within: number }[] = [
  { params: {}, within: 30 },
  { params: { cpus: 4, readers: 3 }, within: 20 },
];

describe('rcu-uaf scenario: both sides', () => {
  for (const c of cases) {
    const params = { ...def.params, ...c.params };
    const label = `rcu-uaf${Object.keys(c.params).length ? ` ${JSON.stringify(c.params)}` : ''}`;
    for (const seed of [1, 2]) {
      it(`${label}: buggy shows rcu use_after_free within ${c.within} schedules (seed ${seed}); fixed and sync clean over ${10 * c.within}`, () => {
        const buggy = scenarioProgram(def, 'buggy', params);
        const h = hunt(buggy, { seed, iterations: c.within, stopWhenSeen: ['rcu'] });
        expect(h.findings.map((f) => f.fingerprint).sort()).to.deep.equal([
          'rcu:use_after_free:freed_under_reader:foo_config@foo_detach',
          'rcu:use_after_free:kasan:foo_config@foo_poll',
        ]);
        for (const f of h.findings) {
          const r = replay(buggy, f.schedule);
          expect(r.findings.find((x) => x.fingerprint === f.fingerprint)!.text).to.equal(f.text);
        }
        for (const v of ['fixed', 'sync']) {
          const clean = hunt(scenarioProgram(def, v, params), { seed, iterations: Math.max(10 * c.within, 100), stopAtFirst: false });
          expect(clean.findings.map((f) => f.headline), v).to.deep.equal([]);
        }
      });
    }
  }

  it('the fixed and sync variants stay clean under exhaustive DFS', () => {
    for (const v of ['fixed', 'sync']) {
      const h = hunt(scenarioProgram(def, v, def.params), { strategy: 'dfs', iterations: 20_000, stopAtFirst: false });
      expect(h.findings, v).to.deep.equal([]);
      expect(h.exhausted, v).to.equal(true);
    }
  });

  it('the fixed variant really frees the old config from RCU_SOFTIRQ once its grace period ends', () => {
    const e = new Engine();
    const s = makeStrategy({ strategy: 'dfs' });
    let runs = 0;
    while (!s.exhausted()) {
      e.run(scenarioProgram(def, 'fixed', def.params), s, 0, 50);
      const st = rcuStateIfUsed(e.world as Machine)!;
      expect(st.completed).to.equal(1);
      expect(st.nextCb).to.equal(2);
      expect(st.cbs.every((q) => q.length === 0)).to.equal(true);
      runs++;
    }
    expect(runs).to.be.greaterThan(5);
  });
});
