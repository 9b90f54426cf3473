/**
 * Hangs through works and completions (issue 18 item 4): the wait-for graph follows flush_work,
 * cancel_work_sync, flush_workqueue, synchronize_irq and annotated completions, so these hangs
 * are `deadlock` findings naming the cycle (irqsim's own check), and --confirm counts a reached
 * hang on lockdep's predicted classes as confirmation.
 */
import { expect } from 'chai';
import { Engine, makeStrategy, type Finding, type Program } from '../../scheduler';
import { set_completer } from '../../lib/kernel/completer';
import { DECLARE_COMPLETION, complete, wait_for_completion } from '../../lib/kernel/completion';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock } from '../../lib/kernel/mutex';
import { IRQF_ONESHOT, raise_irq, request_threaded_irq, synchronize_irq } from '../../lib/kernel/irq';
import { fn } from '../../lib/kernel/stack';
import { DECLARE_WORK, alloc_ordered_workqueue, cancel_work_sync, flush_work, flush_workqueue, queue_work, schedule_work, type work_struct } from '../../lib/kernel/workqueue';
import type { Machine } from '../../lib/kernel/machine';
import type { Task } from '../../lib/kernel/task';
import { defineScenario } from '../../lib/scenario/define';
import { huntVariant } from '../../lib/scenario/hunt';
import { kernelProgram } from '../support/kernel';

function once(p: Program): Finding[] {
  const e = new Engine();
  return e.run(p, makeStrategy({ strategy: 'dfs' }), 0, 200).findings;
}

/**
 * The remove path of a driver: holds dev->mutex, then waits for its work item, which takes the
 * same mutex. `how` picks the wait; `annotate` false leaves a completion unannotated.
 */
function removeUnderMutex(m: Machine, how: 'flush_work' | 'cancel_work_sync' | 'flush_workqueue' | 'none'): void {
  const mu = DEFINE_MUTEX(m, 'dev->mutex');
  const wq = alloc_ordered_workqueue(m, 'foo_wq', 0);
  const started = DECLARE_COMPLETION(m, 'started');
  const work: work_struct = DECLARE_WORK(m, 'foo_work', function* foo_work_fn(cur: Task) {
    yield* complete(cur, started);
    yield* mutex_lock(cur, mu);
    yield cur.thread.work(100);
    yield* mutex_unlock(cur, mu);
  });
  m.process('rmmod', 0, function* (cur) {
    yield* fn(cur, 'foo_remove', (function* () {
      yield* mutex_lock(cur, mu);
      yield* queue_work(cur, wq, work);
      yield* wait_for_completion(cur, started); // the worker runs the item and blocks on the mutex
      if (how === 'flush_work') yield* flush_work(cur, work);
      else if (how === 'cancel_work_sync') yield* cancel_work_sync(cur, work);
      else if (how === 'flush_workqueue') yield* flush_workqueue(cur, wq);
      yield* mutex_unlock(cur, mu);
    })());
  });
}

describe('hangs through works and completions (wait-for graph)', () => {
  for (const how of ['flush_work', 'cancel_work_sync', 'flush_workqueue'] as const) {
    it(`${how} under the mutex the work item takes: deadlock naming rmmod → ${how} → kworker → mutex → rmmod`, () => {
      const fs = once(kernelProgram(`remove-${how}`, 2, (m) => removeUnderMutex(m, how)));
      const d = fs.find((f) => f.kind === 'deadlock');
      expect(fs.map((f) => f.kind), fs.map((f) => f.headline).join('\n')).to.include('deadlock');
      expect(fs.map((f) => f.kind)).to.not.include('no_progress');
      const wait = how === 'flush_workqueue' ? 'flush_workqueue\\(foo_wq\\)' : 'flush_work\\(foo_work_fn\\)';
      expect(d!.text).to.match(/^irqsim: deadlock: a wait-for cycle of 2 contexts \(irqsim's own check/);
      expect(d!.text).to.match(new RegExp(`rmmod/\\d+ → ${wait} → kworker/u?\\d+:\\d+/\\d+ → mutex dev->mutex → rmmod/\\d+|kworker/u?\\d+:\\d+/\\d+ → mutex dev->mutex → rmmod/\\d+ → ${wait} → kworker`));
      const classes = d!.data!.classes as string[];
      expect(classes).to.include('dev->mutex');
      expect(classes).to.include(how === 'flush_workqueue' ? '(wq_completion)foo_wq' : '(work_completion)(foo_work_fn)');
    });
  }

  it('no cycle when the remove path drops the mutex before flushing (the fix): clean', () => {
    const p = kernelProgram('remove-fixed', 2, (m) => {
      const mu = DEFINE_MUTEX(m, 'dev->mutex');
      const work = DECLARE_WORK(m, 'foo_work', function* foo_work_fn(cur: Task) {
        yield* mutex_lock(cur, mu);
        yield* mutex_unlock(cur, mu);
      });
      m.process('rmmod', 0, function* (cur) {
        yield* schedule_work(cur, work);
        yield* mutex_lock(cur, mu);
        yield cur.thread.work(10_000);
        yield* mutex_unlock(cur, mu);
        yield* flush_work(cur, work);
      });
    });
    expect(once(p).filter((f) => f.kind !== 'lockdep')).to.deep.equal([]);
  });

  it('two tasks each waiting for the other\'s annotated completion: a deadlock with the cycle; unannotated: no_progress', () => {
    const build = (annotate: boolean) => (m: Machine) => {
      const a_done = DECLARE_COMPLETION(m, 'a_done');
      const b_done = DECLARE_COMPLETION(m, 'b_done');
      const a = m.kthread('task_a', 0, function* (cur) {
        yield* wait_for_completion(cur, b_done);
        yield* complete(cur, a_done);
      });
      const b = m.kthread('task_b', 1, function* (cur) {
        yield* wait_for_completion(cur, a_done);
        yield* complete(cur, b_done);
      });
      if (annotate) {
        set_completer(m, a_done, a);
        set_completer(m, b_done, b);
      }
    };
    const fs = once(kernelProgram('completions', 2, build(true)));
    const d = fs.find((f) => f.kind === 'deadlock');
    expect(d, fs.map((f) => f.headline).join('\n')).to.not.equal(undefined);
    expect(d!.text).to.match(/task_[ab]\/\d+ → wait_for_completion\([ab]_done\) completed by task task_[ab]\/\d+ → task_[ab]\/\d+ → wait_for_completion\([ab]_done\) completed by task task_[ab]\/\d+ → task_[ab]\/\d+/);
    // without the annotation the graph has no edge: the engine's no_progress, as before
    const plain = once(kernelProgram('completions-plain', 2, build(false)));
    expect(plain.map((f) => f.kind)).to.deep.equal(['no_progress']);
  });

  it('a completer that is a work item: the edge goes to the worker running it', () => {
    const fs = once(kernelProgram('completion-work', 2, (m) => {
      const mu = DEFINE_MUTEX(m, 'cfg_mutex');
      const done = DECLARE_COMPLETION(m, 'cfg_done');
      const work = DECLARE_WORK(m, 'cfg_work', function* cfg_work_fn(cur: Task) {
        yield* mutex_lock(cur, mu);
        yield* complete(cur, done);
        yield* mutex_unlock(cur, mu);
      });
      set_completer(m, done, { work, holders: () => workHolders(work) }, 'work cfg_work_fn');
      m.kthread('cfg', 0, function* (cur) {
        yield* mutex_lock(cur, mu);
        yield* schedule_work(cur, work);
        yield* wait_for_completion(cur, done);
        yield* mutex_unlock(cur, mu);
      });
    }));
    const d = fs.find((f) => f.kind === 'deadlock');
    expect(d, fs.map((f) => f.headline).join('\n')).to.not.equal(undefined);
    expect(d!.text).to.match(/wait_for_completion\(cfg_done\) completed by work cfg_work_fn → kworker\/\d+:\d+\/\d+ → mutex cfg_mutex → cfg\/\d+/);
  });

  it('synchronize_irq from the irq thread\'s own lock holder: the thread edge closes the cycle', () => {
    const fs = once(kernelProgram('sync-irq', 2, (m) => {
      const mu = DEFINE_MUTEX(m, 'foo->lock');
      const started = DECLARE_COMPLETION(m, 'started');
      const line = request_threaded_irq(m, 1, 'foo', null, function* foo_thread_fn(cur: Task) {
        yield* complete(cur, started);
        yield* mutex_lock(cur, mu);
        yield* mutex_unlock(cur, mu);
      }, IRQF_ONESHOT);
      m.process('foo_suspend', 0, function* (cur) {
        yield* mutex_lock(cur, mu);
        raise_irq(m, line);
        yield* wait_for_completion(cur, started);
        yield* synchronize_irq(cur, line);
        yield* mutex_unlock(cur, mu);
      });
    }));
    const d = fs.find((f) => f.kind === 'deadlock');
    expect(d, fs.map((f) => f.text).join('\n')).to.not.equal(undefined);
    expect(d!.text, d!.text).to.match(/foo_suspend\/\d+ → synchronize_irq\(\d+\) → irq\/\d+-foo\/\d+ → mutex foo->lock → foo_suspend/);
  });

  it('--confirm counts the reached flush deadlock as confirming lockdep\'s prediction (it said "not reached" before)', () => {
    const def = defineScenario({
      id: 'flush-under-mutex',
      name: 'remove path flushes a work item under the mutex it takes',
      description: 'test scenario',
      params: {},
      variants: [{ name: 'buggy', expect: { findings: ['lockdep', 'deadlock'] }, confirm: true }],
      options: { iterations: 20 },
      build(m) {
        removeUnderMutex(m, 'cancel_work_sync');
      },
    });
    const r = huntVariant(def, def.variants[0], {}, { all: true });
    const ld = r.findings.find((f) => f.kind === 'lockdep');
    expect(ld, JSON.stringify(r.findings.map((f) => f.fingerprint))).to.not.equal(undefined);
    expect(ld!.confirmed).to.match(/^confirmed by schedule /);
    expect(r.verdict).to.equal('as-expected');
  });
});

import { work_holders as workHolders } from '../../lib/kernel/workqueue';

describe('--confirm accepts any hang on the predicted classes', () => {
  const lockdep = { kind: 'lockdep', subkind: 'circular', fingerprint: 'lockdep:circular:a+b', data: { classes: ['a_mutex', 'b_mutex'] } };
  const idle: Program = { name: 'idle', setup() {} };
  for (const kind of ['deadlock', 'hung_task', 'no_progress']) {
    it(`${kind} holding / waiting on both predicted classes confirms; on other classes it does not`, () => {
      const hang = { kind, fingerprint: `${kind}:x`, schedule: 'S1', data: { classes: ['a_mutex', 'b_mutex', 'other'] } };
      const yes = confirmPredictions(idle as never, { iterations: 2 }, { findings: [lockdep, hang] } as never);
      expect(yes.get('lockdep:circular:a+b')).to.equal('confirmed by schedule S1');
      const unrelated = { ...hang, data: { classes: ['a_mutex', 'other'] } };
      const no = confirmPredictions(idle as never, { iterations: 2 }, { findings: [lockdep, unrelated] } as never);
      expect(no.get('lockdep:circular:a+b')).to.equal('not reached in 2 schedules');
    });
  }
});

import { confirmPredictions } from '../../lib/scenario/hunt';

describe('no_progress carries the classes its tasks hold and wait on', () => {
  it('a holder waiting on an unannotated completion its waiter would complete: no_progress with the mutex class', () => {
    const def = defineScenario({
      id: 'np',
      name: 'np',
      description: 'np',
      params: {},
      variants: [{ name: 'buggy', expect: { findings: ['no_progress'] } }],
      build(m) {
        const mu = DEFINE_MUTEX(m, 'np_mutex');
        const done = DECLARE_COMPLETION(m, 'np_done');
        const held = DECLARE_COMPLETION(m, 'np_held');
        m.kthread('a', 0, function* (cur) {
          yield* mutex_lock(cur, mu);
          yield* complete(cur, held);
          yield* wait_for_completion(cur, done);
          yield* mutex_unlock(cur, mu);
        });
        m.kthread('b', 1, function* (cur) {
          yield* wait_for_completion(cur, held);
          yield* mutex_lock(cur, mu);
          yield* complete(cur, done);
          yield* mutex_unlock(cur, mu);
        });
      },
    });
    const h = hunt(scenarioProgram(def, 'buggy', {}), { iterations: 1, strategy: 'dfs' });
    const np = h.findings.find((f) => f.kind === 'no_progress')!;
    expect(np.data!.classes).to.deep.equal(['np_mutex']);
  });
});

import { hunt } from '../../scheduler';
import { scenarioProgram } from '../../lib/scenario/define';
