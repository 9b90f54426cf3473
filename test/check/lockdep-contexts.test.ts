/**
 * lockdep beyond the selftests' single task: the same verdicts when locks are taken in workqueue
 * workers, timer softirqs, threaded handlers and across more than two CPUs; flush_work
 * dependencies; and --confirm turning predictions into deadlocking schedules (or saying they
 * were not reached).
 */
import { expect } from 'chai';
import { hunt, replay, type Program } from '../../scheduler';
import { confirmPredictions } from '../../lib/scenario/hunt';
import { raise_irq, request_threaded_irq, IRQ_WAKE_THREAD } from '../../lib/kernel/irq';
import type { Machine } from '../../lib/kernel/machine';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock } from '../../lib/kernel/mutex';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_bh, spin_lock_irqsave, spin_unlock, spin_unlock_bh, spin_unlock_irqrestore, type spinlock_t } from '../../lib/kernel/spinlock';
import { jiffies, mod_timer, timer_setup } from '../../lib/kernel/timer';
import { DECLARE_WORK, flush_work, queue_work, system_wq } from '../../lib/kernel/workqueue';
import type { Task } from '../../lib/kernel/task';
import { defineScenario, scenarioProgram, type ScenarioDef } from '../../lib/scenario/define';
import abba from '../../scenarios/abba';
import irqSelf from '../../scenarios/irq-self-deadlock';

function program(name: string, cpus: number, build: (m: Machine) => void): Program {
  const def = defineScenario({ id: name, name, description: name, params: {}, machine: () => ({ cpus }), variants: [{ name: 'buggy', expect: {} }], build });
  return scenarioProgram(def as unknown as ScenarioDef, 'buggy', {});
}

const lockdepKinds = (p: Program, iterations = 30) =>
  hunt(p, { seed: 1, iterations, stopAtFirst: false })
    .findings.filter((f) => f.kind === 'lockdep')
    .map((f) => f.subkind);

function* both(cur: Task, a: spinlock_t, b: spinlock_t) {
  yield* spin_lock(cur, a);
  yield* spin_lock(cur, b);
  yield* spin_unlock(cur, b);
  yield* spin_unlock(cur, a);
}

describe('lockdep in other contexts', () => {
  it('ABBA between a kworker and a timer softirq on another CPU: circular; same order: silent', () => {
    for (const inverted of [true, false]) {
      const p = program(`wq-timer-${inverted}`, 2, (m) => {
        const a = DEFINE_SPINLOCK(m, 'sess_lock');
        const b = DEFINE_SPINLOCK(m, 'stats_lock');
        const tm = timer_setup(m, 'stats_timer_fn', function* (cur) {
          yield* (inverted ? both(cur, b, a) : both(cur, a, b));
        });
        const w = DECLARE_WORK(m, 'sess_work', function* sess_work_fn(cur) {
          // bottom halves off: the timer takes these locks in softirq context
          yield* spin_lock_bh(cur, a);
          yield* spin_lock(cur, b);
          yield* spin_unlock(cur, b);
          yield* spin_unlock_bh(cur, a);
        });
        m.kthread('arm', 1, function* (cur) {
          yield* mod_timer(cur, tm, jiffies(m) + 1);
        });
        m.kthread('submit', 0, function* (cur) {
          yield* queue_work(cur, system_wq(m), w);
        });
      });
      expect(lockdepKinds(p), `inverted=${inverted}`).to.deep.equal(inverted ? ['circular'] : []);
    }
  });

  it('a lock shared by a hardirq handler and its threaded handler needs irqsave in the thread', () => {
    for (const irqsave of [false, true]) {
      const p = program(`threaded-${irqsave}`, 1, (m) => {
        const l = DEFINE_SPINLOCK(m, 'ring_lock');
        const line = request_threaded_irq(
          m,
          0,
          'nic',
          function* (cur) {
            yield* spin_lock(cur, l);
            yield* spin_unlock(cur, l);
            return IRQ_WAKE_THREAD;
          },
          function* (cur) {
            if (irqsave) {
              const f = yield* spin_lock_irqsave(cur, l);
              yield* spin_unlock_irqrestore(cur, l, f);
            } else {
              yield* spin_lock(cur, l);
              yield* spin_unlock(cur, l);
            }
          },
        );
        m.kthread('dev', 0, function* (cur) {
          yield* raise_irq(cur, line);
          yield cur.thread.point();
        });
      });
      expect(lockdepKinds(p), `irqsave=${irqsave}`).to.deep.equal(irqsave ? [] : ['inconsistent']);
    }
  });

  it('a four-CPU cycle A->B->C->D->A over kthreads and kworkers: circular, whatever order ran', () => {
    const p = program('abcd', 4, (m) => {
      const l = ['a', 'b', 'c', 'd'].map((n) => DEFINE_SPINLOCK(m, `lock_${n}`));
      for (let i = 0; i < 3; i++) m.kthread(`t${i}`, i, (cur) => both(cur, l[i], l[i + 1]));
      const w = DECLARE_WORK(m, 'closing', function* closing_fn(cur) {
        yield* both(cur, l[3], l[0]);
      });
      m.kthread('q', 3, function* (cur) {
        yield* queue_work(cur, system_wq(m), w);
      });
    });
    const h = hunt(p, { seed: 2, iterations: 40, stopAtFirst: false });
    const ld = h.findings.filter((f) => f.kind === 'lockdep');
    expect(ld.map((f) => f.subkind)).to.deep.equal(['circular']);
    expect(ld[0].fingerprint).to.equal('lockdep:circular:lock_a+lock_b+lock_c+lock_d');
    expect(ld[0].text).to.contain('Chain exists of:');
  });

  it('flush_work under a lock the work item takes is a dependency cycle (the flush annotation)', () => {
    for (const underLock of [true, false]) {
      const p = program(`flush-${underLock}`, 2, (m) => {
        const mu = DEFINE_MUTEX(m, 'dev_mutex');
        const w = DECLARE_WORK(m, 'reset_work', function* dev_reset_work(cur) {
          yield* mutex_lock(cur, mu);
          yield* mutex_unlock(cur, mu);
        });
        m.kthread('ioctl', 0, function* (cur) {
          yield* queue_work(cur, system_wq(m), w);
          if (underLock) yield* mutex_lock(cur, mu);
          yield* flush_work(cur, w);
          if (underLock) yield* mutex_unlock(cur, mu);
        });
      });
      const h = hunt(p, { seed: 1, iterations: 40, stopAtFirst: false });
      const ld = h.findings.filter((f) => f.kind === 'lockdep');
      if (underLock) {
        expect(ld.map((f) => f.subkind)).to.deep.equal(['circular']);
        expect(ld[0].text).to.contain('(work_completion)(dev_reset_work)');
        // and the schedule where the item runs after the flush began really hangs
        expect(h.findings.some((f) => f.kind === 'deadlock' || f.kind === 'no_progress')).to.equal(true);
      } else expect(ld).to.deep.equal([]);
    }
  });
});

describe('--confirm: predictions realised by a schedule', () => {
  const confirm = (def: ScenarioDef, iterations: number) => {
    const p = scenarioProgram(def, 'buggy', def.params);
    const opts = { seed: 7, iterations, stopAtFirst: true } as const;
    const h = hunt(p, opts); // stops at the first finding: lockdep's prediction
    expect(h.findings.map((f) => f.kind)).to.deep.equal(['lockdep']);
    return { h, c: confirmPredictions(p, opts, h) };
  };

  it('ABBA and the hardirq self-deadlock: confirmed by a schedule that deadlocks', () => {
    for (const def of [abba, irqSelf] as unknown as ScenarioDef[]) {
      const { h, c } = confirm(def, 200);
      const msg = c.get(h.findings[0].fingerprint)!;
      expect(msg, def.id).to.match(/^confirmed by schedule 2:[0-9a-f]{8}:/);
      // the schedule replays to a deadlock on the predicted classes
      const sched = msg.replace('confirmed by schedule ', '');
      const r = replay(scenarioProgram(def, 'buggy', def.params), sched);
      expect(r.findings.map((f) => f.kind), def.id).to.include('deadlock');
    }
  });

  it('a prediction no schedule can realise (both paths under one outer mutex) is "not reached"', () => {
    const def = defineScenario({
      id: 'gated-abba',
      name: 'gated ABBA',
      description: 'lockdep false positive: the inversion is serialised by an outer mutex',
      params: {},
      machine: () => ({ cpus: 2 }),
      variants: [{ name: 'buggy', expect: {} }],
      build(m) {
        const gate = DEFINE_MUTEX(m, 'gate');
        const a = DEFINE_SPINLOCK(m, 'lock_a');
        const b = DEFINE_SPINLOCK(m, 'lock_b');
        for (const [i, x, y] of [[0, a, b], [1, b, a]] as const) {
          m.kthread(`t${i}`, i, function* (cur) {
            yield* mutex_lock(cur, gate);
            yield* both(cur, x, y);
            yield* mutex_unlock(cur, gate);
          });
        }
      },
    }) as unknown as ScenarioDef;
    const { h, c } = confirm(def, 100);
    expect(c.get(h.findings[0].fingerprint)).to.equal('not reached in 100 schedules');
  });
});
