import { expect } from 'chai';
import { hunt } from '../../scheduler';
import { BUG_ON, WARN_ON, WARN_ON_ONCE, lockdep_assert_held } from '../../lib/kernel/bug';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock } from '../../lib/kernel/mutex';
import { sleep_until } from '../../lib/kernel/sched';
import { defineScenario, scenarioProgram, type ScenarioDef } from '../../lib/scenario/define';

describe('scenario definitions', () => {
  it('prepare builds state once per program and restore() resets it before every later run', () => {
    let prepared = 0;
    let restored = 0;
    const seen: number[] = [];
    const def = defineScenario({
      id: 'prep',
      name: 'prepare/restore',
      description: 'state built once, restored per run',
      params: { slots: 8 },
      variants: [{ name: 'buggy', expect: { clean: true } }],
      prepare: (p) => {
        prepared++;
        const pool = new Int32Array(p.slots);
        const snap = pool.slice();
        return {
          pool,
          restore() {
            restored++;
            pool.set(snap);
          },
        };
      },
      build(m, { state }) {
        m.kthread('user', 0, function* (cur) {
          seen.push(state.pool[0]); // always 0 at the start of a run
          state.pool[0] += 5;
          yield cur.thread.point();
        });
      },
    });
    const h = hunt(scenarioProgram(def, 'buggy', def.params), { seed: 3, iterations: 20, stopAtFirst: false });
    expect(h.findings).to.deep.equal([]);
    expect(prepared).to.equal(1);
    expect(restored).to.equal(h.schedulesRun + 4 - 1); // + calibration runs, minus the first
    expect(new Set(seen)).to.deep.equal(new Set([0]));
  });

  it('findings without machine state (no_progress, assertions) get every CPU state', () => {
    const def = defineScenario({
      id: 'lost',
      name: 'lost wakeup',
      description: 'a task sleeps and nobody wakes it',
      params: {},
      variants: [{ name: 'buggy', expect: { findings: ['no_progress'] } }],
      build(m) {
        const mu = DEFINE_MUTEX(m, 'cfg_mutex');
        m.kthread('waiter', 0, function* (cur) {
          yield* mutex_lock(cur, mu);
          yield* sleep_until(cur, () => false, { kind: 'completion', what: 'fw_ready' }, 'schedule');
          yield* mutex_unlock(cur, mu);
        });
      },
    });
    const h = hunt(scenarioProgram(def as unknown as ScenarioDef, 'buggy', {}), { seed: 1, iterations: 1 });
    const f = h.findings[0];
    expect(f.kind).to.equal('no_progress');
    expect(f.text).to.contain('machine state:');
    expect(f.text).to.contain('holds: cfg_mutex (mutex_lock');
    expect(f.text).to.contain('waiting for fw_ready');
    expect((f.data as { cpuStates: unknown[] }).cpuStates.length).to.be.greaterThan(0);
  });

  it('WARN_ON goes on, WARN_ON_ONCE logs once but counts every hit, BUG_ON ends the run', () => {
    const def = defineScenario({
      id: 'warns',
      name: 'warnings',
      description: 'kernel assertions',
      params: {},
      variants: [{ name: 'buggy', expect: { findings: ['assertion'] } }],
      build(m) {
        const mu = DEFINE_MUTEX(m, 'state_mutex');
        m.kthread('t', 0, function* (cur) {
          for (let i = 0; i < 3; i++) {
            WARN_ON_ONCE(cur, true, 'queue not empty');
            yield cur.thread.point();
          }
          lockdep_assert_held(cur, mu);
          expect(WARN_ON(cur, false)).to.equal(false);
          BUG_ON(cur, true, 'list corrupted');
          yield cur.thread.point();
          throw new Error('not reached: BUG_ON stops the run');
        });
      },
    });
    const h = hunt(scenarioProgram(def as unknown as ScenarioDef, 'buggy', {}), { seed: 1, iterations: 1, stopAtFirst: false });
    const by = Object.fromEntries(h.findings.map((f) => [f.fingerprint, f]));
    expect(by['warn:queue not empty@task'].totalCount).to.equal(3);
    expect(by['warn:queue not empty@task'].loggedCount).to.equal(1);
    expect(by['warn:lockdep_assert_held(state_mutex)@task'].text).to.match(/^WARNING: CPU: 0 PID: 1 at task: lockdep_assert_held\(state_mutex\)/);
    expect(by['bug:list corrupted@task'].fatal).to.equal(true);
  });
});
