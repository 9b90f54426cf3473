/**
 * Issue 9 ("reach every window"): races whose window is a plain store or a piece of local work
 * are reachable, wakeups can be lost as in the kernel, an op's bookkeeping never comes apart
 * from the op, and a hardirq that tries to sleep is the kernel's splat, not a crash.
 */
import { expect } from 'chai';
import { hunt, replay, type Program } from '../../scheduler';
import { kernelProgram as prog, everySchedule as every } from '../support/kernel';
import { DECLARE_COMPLETION, complete, reinit_completion, wait_for_completion } from '../../lib/kernel/completion';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { lockdep_is_held, DEFINE_SPINLOCK, spin_lock, spin_unlock } from '../../lib/kernel/spinlock';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock } from '../../lib/kernel/mutex';
import { __set_current_state, schedule, set_current_state, wake_up_process } from '../../lib/kernel/sched';
import type { Task } from '../../lib/kernel/task';

const kinds = (fs: { kind: string }[]) => [...new Set(fs.map((f) => f.kind))].sort();

/**
 * A driver issues a command whose completion interrupt does complete(&cmd_done), then waits.
 * Buggy: reinit_completion() after ringing the doorbell — if the interrupt comes first, the
 * reinit wipes its completion and the wait never ends. Fixed: reinit before the doorbell.
 */
function reinitRace(buggy: boolean): Program {
  return prog(`reinit-${buggy ? 'buggy' : 'fixed'}`, 2, (m) => {
    const done = DECLARE_COMPLETION(m, 'cmd_done');
    const line = request_irq(m, 1, 'dev', function* (cur) {
      yield* complete(cur, done);
    });
    m.kthread('driver', 0, function* (cur) {
      if (!buggy) yield* reinit_completion(cur, done);
      yield* raise_irq(cur, line); // the doorbell: the device completes the command at once
      if (buggy) yield* reinit_completion(cur, done);
      yield* wait_for_completion(cur, done);
    });
  });
}

describe('every window is reachable (issue 9)', () => {
  it('finds the reinit_completion-after-doorbell race in interleave mode within 500 schedules; the fix is clean over 5,000', () => {
    const b = hunt(reinitRace(true), { strategy: 'random', iterations: 500, seed: 0 });
    expect(kinds(b.findings)).to.deep.equal(['no_progress']);
    expect(b.findings[0].text).to.match(/driver/);
    const f = hunt(reinitRace(false), { strategy: 'random', iterations: 5000, seed: 0 });
    expect(f.schedulesRun).to.equal(5000);
    expect(f.findings).to.deep.equal([]);
  });

  /**
   * The classic lost wakeup: the sleeper tests its condition, then sets TASK_UNINTERRUPTIBLE and
   * schedules; the waker's store and wake_up_process landing between the test and the state
   * change find a TASK_RUNNING task (try_to_wake_up does nothing) and the sleep never ends.
   * The correct form sets the state first and tests after.
   */
  function lostWakeup(correct: boolean): Program {
    return prog(`lost-wakeup-${correct ? 'fixed' : 'buggy'}`, 2, (m) => {
      const flagObj = m.sim.object('data_ready');
      let ready = false;
      const sleeper = m.kthread('consumer', 0, function* (cur) {
        if (correct) {
          yield* set_current_state(cur, 'TASK_UNINTERRUPTIBLE');
          yield cur.thread.read(flagObj);
          if (ready) yield* __set_current_state(cur, 'TASK_RUNNING');
          else yield* schedule(cur);
        } else {
          yield cur.thread.read(flagObj);
          if (!ready) {
            yield* set_current_state(cur, 'TASK_UNINTERRUPTIBLE');
            yield* schedule(cur);
          }
        }
      });
      m.kthread('producer', 1, function* (cur) {
        yield cur.thread.write(flagObj);
        ready = true;
        yield* wake_up_process(cur, sleeper);
      });
    });
  }

  it('finds the lost wakeup (test, then set_current_state) and names the sleeper; set_current_state first is clean on every schedule', () => {
    const b = hunt(lostWakeup(false), { strategy: 'random', iterations: 2000, seed: 0 });
    expect(kinds(b.findings)).to.deep.equal(['no_progress']);
    expect(b.findings[0].text).to.match(/consumer/);
    const n = every(lostWakeup(true), (_log, r) => expect(r.findings.map((f) => f.kind)).to.deep.equal([]));
    expect(n).to.be.greaterThan(3);
    // and the buggy form is found on an exhaustive walk too
    let lost = 0;
    every(lostWakeup(false), (_log, r) => (lost += r.findings.some((f) => f.kind === 'no_progress') ? 1 : 0));
    expect(lost).to.be.greaterThan(0);
  });

  it('an interrupt landing inside a critical section of local work sees the lock held by the owner and by lockdep alike', () => {
    const p = prog('local-section', 2, (m, log) => {
      const l = DEFINE_SPINLOCK(m, 'priv_lock');
      let holder: Task | null = null;
      const line = request_irq(m, 0, 'nic', function* (cur) {
        const owned = l.owner !== null && l.owner.task === holder;
        log.push(`owner=${owned} lockdep=${holder !== null && lockdep_is_held(holder, l)}`);
        yield cur.thread.point();
      });
      holder = m.kthread('ethtool', 0, function* (cur) {
        yield* spin_lock(cur, l);
        yield cur.thread.work(500); // the whole critical section is local work
        yield* spin_unlock(cur, l);
      });
      m.kthread('device', 1, function* (cur) {
        yield* raise_irq(cur, line);
      });
    });
    let inside = 0;
    every(p, (log) => {
      for (const e of log) {
        expect(e === 'owner=true lockdep=true' || e === 'owner=false lockdep=false', e).to.equal(true);
        if (e === 'owner=true lockdep=true') inside++;
      }
    });
    expect(inside, 'some schedule delivers the interrupt inside the section').to.be.greaterThan(0);
  });

  it('the self-deadlock of a handler taking the lock its CPU holds reports the lock held (lockdep and the machine state agree)', () => {
    const p = prog('local-section-deadlock', 2, (m) => {
      const l = DEFINE_SPINLOCK(m, 'priv_lock');
      const line = request_irq(m, 0, 'nic', function* (cur) {
        yield* spin_lock(cur, l);
        yield* spin_unlock(cur, l);
      });
      m.kthread('ethtool', 0, function* (cur) {
        yield* spin_lock(cur, l);
        yield cur.thread.work(500);
        yield* spin_unlock(cur, l);
      });
      m.kthread('device', 1, function* (cur) {
        yield* raise_irq(cur, line);
      });
    });
    const h = hunt(p, { strategy: 'random', iterations: 500, seed: 1, stopWhen: (fs) => fs.some((f) => f.kind === 'deadlock') });
    const dl = h.findings.find((f) => f.kind === 'deadlock');
    expect(dl, kinds(h.findings).join(',')).to.not.equal(undefined);
    // lockdep's report in the run that deadlocks: the handler took the lock over ethtool holding it
    const r = replay(p, dl!.schedule);
    const lockdep = r.findings.find((f) => f.kind === 'lockdep');
    expect(lockdep, 'lockdep reports the inconsistent use').to.not.equal(undefined);
    expect(lockdep!.text).to.not.match(/no locks held by ethtool/);
    expect(lockdep!.text, lockdep!.text).to.match(/lock(s)? held by ethtool\/\d+:[\s\S]*priv_lock/);
  });

  it('no interrupt lands inside a one-step primitive: complete() counts and wakes in one step', () => {
    const p = prog('one-step', 2, (m, log) => {
      const done = DECLARE_COMPLETION(m, 'done');
      let waiter: Task | null = null;
      const line = request_irq(m, 0, 'probe', function* (cur) {
        // seen from an interrupt on the completing CPU: either before complete() or after all of it
        const queued = waiter !== null && done.waiters.includes(waiter);
        log.push(`done=${done.done} queued=${queued}`);
        yield cur.thread.point();
      });
      waiter = m.kthread('waiter', 1, function* (cur) {
        yield* wait_for_completion(cur, done);
      });
      m.kthread('completer', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield* complete(cur, done);
      });
    });
    let seen = 0;
    every(p, (log) => {
      for (const e of log) {
        seen++;
        expect(e, 'a done count with the waiter still queued is a half-done complete()').to.not.equal('done=1 queued=true');
      }
    });
    expect(seen).to.be.greaterThan(0);
  });

  it('a hardirq over the idle task that blocks on a mutex prints might_sleep, scheduling while atomic and "bad: scheduling from the idle thread!", and ends the run (no crash)', () => {
    const p = prog('irq-mutex-idle', 2, (m) => {
      const mu = DEFINE_MUTEX(m, 'dev_mutex');
      const line = request_irq(m, 1, 'dev', function* (cur) {
        yield* mutex_lock(cur, mu); // contended: a sleep in hardirq context
        yield* mutex_unlock(cur, mu);
      });
      m.kthread('owner', 0, function* (cur) {
        yield* mutex_lock(cur, mu);
        yield* raise_irq(cur, line); // CPU 1 is idle: the handler runs over swapper/1
        yield cur.thread.work(1000);
        yield* mutex_unlock(cur, mu);
      });
    });
    // the schedule where the handler meets the held mutex
    const h = hunt(p, { strategy: 'random', iterations: 200, seed: 0, stopWhen: (fs) => fs.some((f) => f.subkind === 'scheduling_while_atomic') });
    const swaF = h.findings.find((f) => f.subkind === 'scheduling_while_atomic');
    expect(swaF, 'the contended schedule is reached').to.not.equal(undefined);
    const r = replay(p, swaF!.schedule);
    expect(r.endReason).to.equal('fatal');
    const ks = r.findings.map((f) => `${f.kind}${f.subkind ? `/${f.subkind}` : ''}`);
    expect(ks).to.not.include('internal_error');
    expect(ks).to.not.include('scenario_error');
    const ms = r.findings.find((f) => f.kind === 'might_sleep' && f.subkind === undefined)!;
    expect(ms.text).to.match(/BUG: sleeping function called from invalid context at kernel\/locking\/mutex\.c|mutex_lock/);
    expect(ms.text).to.match(/in_atomic\(\): 1/);
    const swa = r.findings.find((f) => f.subkind === 'scheduling_while_atomic')!;
    expect(swa.text).to.match(/BUG: scheduling while atomic: swapper\/1\/0\/0x0001000/);
    const idle = r.findings.find((f) => f.subkind === 'scheduling_from_idle')!;
    expect(idle.text).to.match(/^bad: scheduling from the idle thread!/);
    // in the kernel's order: might_sleep at the primitive, then __schedule_bug, then the idle splat
    expect(r.findings.indexOf(ms)).to.be.lessThan(r.findings.indexOf(swa));
    expect(r.findings.indexOf(swa)).to.be.lessThan(r.findings.indexOf(idle));
  });
});
