/**
 * Lock stealing and hand-over as upstream has them (kernel/locking/mutex.c and rwsem.c, v6.12):
 * a task arriving while a woken waiter has not yet run takes the lock ahead of it; once the
 * first waiter has set MUTEX_FLAG_HANDOFF (at once after a failed retry) or RWSEM_FLAG_HANDOFF
 * (only after RWSEM_WAIT_TIMEOUT), nobody can overtake it any more.
 *
 * Each test fails on the FIFO hand-over model this replaced (the woken waiter held the lock from
 * the releaser's step): there no arrival ever overtakes, and no HANDOFF flag is ever set.
 */
import { expect } from 'chai';
import { Engine, makeStrategy, type Program } from '../../scheduler';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock, type mutex } from '../../lib/kernel/mutex';
import { DECLARE_RWSEM, RWSEM_WAIT_TIMEOUT, down_write, up_write, type rw_semaphore } from '../../lib/kernel/rwsem';
import type { Lock } from '../../lib/kernel/lock';
import type { Task } from '../../lib/kernel/task';
import type { Machine } from '../../lib/kernel/machine';
import { kernelProgram, type KernelWorld } from '../support/kernel';

function* until(cur: Task, pred: () => boolean): Generator<unknown, void, unknown> {
  yield cur.thread.spinUntil(pred);
}

/**
 * A predicate that stays true once it has been true: spin predicates are re-checked after every
 * step, but the spinner may be scheduled only after a short-lived condition has passed again.
 */
function latch(pred: () => boolean): () => boolean {
  let seen = false;
  return () => (seen ||= pred());
}

/** True from the step in which task `comm` went to sleep in a lock's slow path (hook `schedule`). */
function sleptIn(m: Machine, comm: string): () => boolean {
  let slept = false;
  m.addHooks({ schedule: (t) => void (slept ||= t.comm === comm) });
  return () => slept;
}

/** `who in`, checking that owner tracking and lockdep's held list agree that `cur` holds it. */
function enter(log: string[], cur: Task, lock: Lock, who: string): void {
  const owned = lock.owner !== null && lock.owner.task === cur;
  const held = cur.held.some((h) => h.lock === lock);
  log.push(owned && held ? `${who} in` : `VIOLATION ${who} in: owner=${lock.owner?.task.comm ?? 'none'} held=${held}`);
}

/** Run `n` seeded random-walk schedules; each run's log and findings go to `check`. */
function seeded(p: Program, n: number, check: (log: string[], seed: number) => void): void {
  const e = new Engine({ window: Infinity });
  for (let seed = 1; seed <= n; seed++) {
    const r = e.run(p, makeStrategy({ strategy: 'random' }), seed, 200);
    expect(r.findings.map((f) => f.kind), `seed ${seed}: ${(e.world as KernelWorld).log.join(", ")} ${r.findings.map((f) => f.text).join("\n")}`).to.deep.equal([]);
    check((e.world as KernelWorld).log, seed);
  }
}

const before = (log: string[], a: string, b: string): boolean => log.indexOf(a) >= 0 && log.indexOf(a) < log.indexOf(b);

describe('mutex: no FIFO hand-over (v6.12 __mutex_unlock_slowpath)', () => {
  /** H holds mu; W queues; A arrives only once W is on the wait list. */
  const overtake = kernelProgram('mutex-overtake', 3, (m, log) => {
    const mu = DEFINE_MUTEX(m, 'mu');
    const wQueued = sleptIn(m, 'W');
    m.kthread('H', 0, function* (cur) {
      yield* mutex_lock(cur, mu);
      yield* until(cur, () => mu.waiters.length >= 1);
      yield* mutex_unlock(cur, mu);
    });
    m.kthread('W', 1, function* (cur) {
      yield* until(cur, () => mu.owner !== null);
      yield* mutex_lock(cur, mu);
      enter(log, cur, mu, 'W');
      yield* mutex_unlock(cur, mu);
    });
    m.kthread('A', 2, function* (cur) {
      yield* until(cur, wQueued);
      yield* mutex_lock(cur, mu);
      enter(log, cur, mu, 'A');
      yield* mutex_unlock(cur, mu);
    });
  });

  it('an arriving task takes the mutex ahead of the sleeping waiter it found queued', () => {
    let overtook = 0;
    let fifo = 0;
    seeded(overtake, 300, (log, seed) => {
      expect(log.filter((l) => l.startsWith('VIOLATION')), `seed ${seed}`).to.deep.equal([]);
      expect(log, `seed ${seed}`).to.have.members(['W in', 'A in']);
      if (before(log, 'A in', 'W in')) overtook++;
      else fifo++;
    });
    // Under FIFO hand-over A, which arrives only after W queued, could never be first.
    expect(overtook, 'schedules where the arrival overtook').to.be.greaterThan(0);
    expect(fifo, 'schedules where the waiter went first').to.be.greaterThan(0);
  });

  /**
   * H holds; W queues; A1 arrives and may steal at H's unlock; A1 then holds on until W has
   * been shut out and set HANDOFF (or W got in). A2 arrives only once it sees HANDOFF.
   */
  const handoff = kernelProgram('mutex-handoff', 4, (m, log) => {
    const mu: mutex = DEFINE_MUTEX(m, 'mu');
    let wDone = false;
    const wQueued = sleptIn(m, 'W');
    const sawHandoff = latch(() => mu.handoff);
    m.kthread('H', 0, function* (cur) {
      yield* mutex_lock(cur, mu);
      yield* until(cur, () => mu.waiters.length >= 1);
      yield* mutex_unlock(cur, mu);
    });
    m.kthread('W', 1, function* (cur) {
      yield* until(cur, () => mu.owner !== null);
      yield* mutex_lock(cur, mu);
      enter(log, cur, mu, 'W');
      yield* mutex_unlock(cur, mu);
      wDone = true;
    });
    m.kthread('A1', 2, function* (cur) {
      yield* until(cur, wQueued);
      yield* mutex_lock(cur, mu);
      enter(log, cur, mu, 'A1');
      yield* until(cur, () => mu.handoff || wDone);
      yield* mutex_unlock(cur, mu);
    });
    m.kthread('A2', 3, function* (cur) {
      yield* until(cur, () => sawHandoff() || wDone);
      if (sawHandoff()) log.push('A2 saw HANDOFF');
      yield* mutex_lock(cur, mu);
      enter(log, cur, mu, 'A2');
      yield* mutex_unlock(cur, mu);
    });
  });

  it('once the woken first waiter has set MUTEX_FLAG_HANDOFF, no arrival overtakes it', () => {
    let handoffs = 0;
    seeded(handoff, 300, (log, seed) => {
      expect(log.filter((l) => l.startsWith('VIOLATION')), `seed ${seed}`).to.deep.equal([]);
      if (!log.includes('A2 saw HANDOFF')) return;
      handoffs++;
      // HANDOFF is only set after a steal, and from then on the mutex goes to W
      expect(before(log, 'A1 in', 'W in'), `seed ${seed}: ${log.join(', ')}`).to.equal(true);
      expect(before(log, 'W in', 'A2 in'), `seed ${seed}: ${log.join(', ')}`).to.equal(true);
    });
    expect(handoffs, 'schedules where W set HANDOFF').to.be.greaterThan(0);
  });
});

describe('rw_semaphore: writers steal until RWSEM_FLAG_HANDOFF (v6.12 rwsem_try_write_lock)', () => {
  /** `hold`: how long H keeps it after W queued (ns): W's wait before its first retry. */
  const writers = (hold: number): Program =>
    kernelProgram(`rwsem-writers-${hold}`, 4, (m, log) => {
      const s: rw_semaphore = DECLARE_RWSEM(m, 'sem');
      let wDone = false;
      let wTried = false;
      const wQueued = sleptIn(m, 'W');
      const sawHandoff = latch(() => s.handoff);
      m.kthread('H', 0, function* (cur) {
        yield* down_write(cur, s);
        yield* until(cur, () => s.waiters.length >= 1);
        if (hold > 0) yield cur.thread.work(hold);
        yield* up_write(cur, s);
      });
      m.kthread('W', 1, function* (cur) {
        yield* until(cur, () => s.owner !== null);
        yield* down_write(cur, s);
        enter(log, cur, s, 'W');
        yield* up_write(cur, s);
        wDone = true;
      });
      m.kthread('A1', 2, function* (cur) {
        yield* until(cur, wQueued);
        yield* down_write(cur, s);
        enter(log, cur, s, 'A1');
        // W, woken by H's up_write, has retried once it is TASK_UNINTERRUPTIBLE again (or got in)
        yield* until(cur, () => sawHandoff() || wDone || s.waiters[0]?.task.state === 'TASK_UNINTERRUPTIBLE');
        wTried = true;
        yield* up_write(cur, s);
      });
      m.kthread('A2', 3, function* (cur) {
        yield* until(cur, () => sawHandoff() || wDone || wTried);
        if (sawHandoff()) log.push('A2 saw HANDOFF');
        yield* down_write(cur, s);
        enter(log, cur, s, 'A2');
        yield* up_write(cur, s);
      });
    });

  it('an arriving writer takes the semaphore ahead of the woken writer', () => {
    let overtook = 0;
    seeded(writers(0), 300, (log, seed) => {
      expect(log.filter((l) => l.startsWith('VIOLATION')), `seed ${seed}`).to.deep.equal([]);
      if (before(log, 'A1 in', 'W in')) overtook++;
    });
    expect(overtook, 'schedules where A1 overtook W').to.be.greaterThan(0);
  });

  it('a writer shut out before RWSEM_WAIT_TIMEOUT does not set HANDOFF, so later arrivals steal too', () => {
    let twice = 0;
    seeded(writers(0), 300, (log, seed) => {
      expect(log, `seed ${seed}`).not.to.include('A2 saw HANDOFF');
      if (before(log, 'A1 in', 'W in') && before(log, 'A2 in', 'W in')) twice++;
    });
    expect(twice, 'schedules where W was overtaken twice').to.be.greaterThan(0);
  });

  it('after waiting past RWSEM_WAIT_TIMEOUT the shut-out writer sets HANDOFF and no arrival overtakes it', () => {
    const hz = 250;
    const jiffy = 1e9 / hz;
    const hold = (RWSEM_WAIT_TIMEOUT(hz) + 2) * jiffy; // past time_after(jiffies, timeout)
    let handoffs = 0;
    seeded(writers(hold), 300, (log, seed) => {
      expect(log.filter((l) => l.startsWith('VIOLATION')), `seed ${seed}`).to.deep.equal([]);
      if (!log.includes('A2 saw HANDOFF')) return;
      handoffs++;
      expect(before(log, 'A1 in', 'W in'), `seed ${seed}: ${log.join(', ')}`).to.equal(true);
      expect(before(log, 'W in', 'A2 in'), `seed ${seed}: ${log.join(', ')}`).to.equal(true);
    });
    expect(handoffs, 'schedules where W set HANDOFF').to.be.greaterThan(0);
  });
});
