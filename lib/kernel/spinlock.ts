/**
 * Spinlocks (non-RT): spin_lock{,_irq,_irqsave,_bh}, their unlocks, spin_trylock, and the raw_
 * forms. A spinlock is an engine resource of capacity one, so waiters are served in arrival
 * order (queued spinlocks) and a spinning CPU is blocked on the lock, not busy-stepping. It
 * spins with interrupts as they are: spin_lock_irqsave spins with IRQs off, spin_lock and
 * spin_lock_bh spin interruptibly, so an interrupt can land on a spinning CPU.
 */
import type { Engine, Thread } from '../../scheduler';
import { Resource } from '../../scheduler/resource';
import { local_irq_disable, local_irq_enable, local_irq_restore, local_irq_save } from './irqflags';
import { Lock, recordAcquired, recordReleased } from './lock';
import type { Machine } from './machine';
import { PREEMPT_OFFSET, SOFTIRQ_LOCK_OFFSET } from './preempt';
import { preemptionPoint } from './sched';
import { bhEnableSoftirqs } from './softirq';
import type { Task } from './task';

export class spinlock_t extends Lock {
  readonly res: Resource;
  constructor(sim: Engine, name: string, raw: boolean) {
    const res = new Resource(sim, name, 1);
    super(raw ? 'raw_spinlock' : 'spinlock', name, res.obj);
    this.res = res;
    // The unlock hands the lock to the first spinner at once: it owns it (and no longer spins)
    // from that step, even if an interrupt keeps it from running before anything else happens.
    res.onHandover = (t, depth) => {
      const task = t.local as Task;
      this.owner = { task, depth };
      task.waits[depth] = null;
    };
  }
}
export type raw_spinlock_t = spinlock_t;

/** DEFINE_SPINLOCK(name) / spin_lock_init(&lock) with the lockdep class `name`. */
export function DEFINE_SPINLOCK(m: Machine, name: string): spinlock_t {
  return new spinlock_t(m.sim, name, false);
}
export const spin_lock_init = DEFINE_SPINLOCK;
export function DEFINE_RAW_SPINLOCK(m: Machine, name: string): raw_spinlock_t {
  return new spinlock_t(m.sim, name, true);
}
export const raw_spin_lock_init = DEFINE_RAW_SPINLOCK;

/** The acquisition's effect: the context holds the lock (at once, or at the hand-over). */
function takeFx(t: Thread, lock: spinlock_t, how: string, depth: number): void {
  const cur = t.local as Task;
  cur.waits[depth] = null;
  recordAcquired(cur, lock, how, depth);
}

function* take(cur: Task, lock: spinlock_t, how: string): Generator<unknown, void, unknown> {
  const m = cur.cpu.machine;
  m.emit('lockAcquire', cur, lock, how, false);
  cur.waitingFor = { kind: 'spinlock', lock, what: lock.name };
  yield cur.thread.acquire(lock.res, takeFx, lock, how);
}

/** The release's effect: lockdep's release and the held-locks list, in the unlock's own step. */
function dropFx(t: Thread, lock: spinlock_t, how: string): void {
  const cur = t.local as Task;
  cur.cpu.machine.emit('lockRelease', cur, lock, how);
  recordReleased(cur, lock);
}

/** The unlock itself is one visible step; until it runs the lock is still held (lockdep agrees). */
function* drop(cur: Task, lock: spinlock_t, how: string): Generator<unknown, void, unknown> {
  if (lock.res.free > 0) {
    // Unlocking a lock nobody holds: lockdep reports it (bad unlock balance); the lock
    // itself stays unlocked.
    yield cur.thread.write(lock.obj, dropFx, lock, how);
  } else {
    yield cur.thread.release(lock.res, dropFx, lock, how); // hands over to the first spinner, if any (onHandover)
    if (lock.res.free > 0) lock.owner = null;
  }
}

export function* spin_lock(cur: Task, lock: spinlock_t, name = 'spin_lock'): Generator<unknown, void, unknown> {
  cur.preempt_count += PREEMPT_OFFSET;
  yield* take(cur, lock, name);
}

/** spin_lock_nested(lock, subclass): lockdep annotation only; same locking. */
export function* spin_lock_nested(cur: Task, lock: spinlock_t, subclass: number): Generator<unknown, void, unknown> {
  cur.preempt_count += PREEMPT_OFFSET;
  yield* take(cur, lock, `spin_lock_nested/${subclass}`);
}

export function* spin_lock_irq(cur: Task, lock: spinlock_t): Generator<unknown, void, unknown> {
  yield* local_irq_disable(cur, '_raw_spin_lock_irq');
  cur.preempt_count += PREEMPT_OFFSET;
  yield* take(cur, lock, 'spin_lock_irq');
}

export function* spin_lock_irqsave(cur: Task, lock: spinlock_t): Generator<unknown, number, unknown> {
  const flags = yield* local_irq_save(cur, '_raw_spin_lock_irqsave');
  cur.preempt_count += PREEMPT_OFFSET;
  yield* take(cur, lock, 'spin_lock_irqsave');
  return flags;
}

export function* spin_lock_bh(cur: Task, lock: spinlock_t): Generator<unknown, void, unknown> {
  // __raw_spin_lock_bh: __local_bh_disable_ip(SOFTIRQ_LOCK_OFFSET) = 0x200 + PREEMPT_LOCK_OFFSET.
  cur.preempt_count += SOFTIRQ_LOCK_OFFSET;
  yield* take(cur, lock, 'spin_lock_bh');
}

/** spin_trylock: never waits; true when taken. */
export function* spin_trylock(cur: Task, lock: spinlock_t): Generator<unknown, boolean, unknown> {
  cur.preempt_count += PREEMPT_OFFSET;
  cur.cpu.machine.emit('lockAcquire', cur, lock, 'spin_trylock', true);
  yield cur.thread.write(lock.obj);
  if (lock.res.free > 0) {
    // in the write's step: the test and the taking are one atomic cmpxchg
    lock.res.free--;
    recordAcquired(cur, lock, 'spin_trylock');
    return true;
  }
  cur.preempt_count -= PREEMPT_OFFSET;
  return false;
}

export function* spin_unlock(cur: Task, lock: spinlock_t): Generator<unknown, void, unknown> {
  yield* drop(cur, lock, 'spin_unlock');
  cur.preempt_count -= PREEMPT_OFFSET;
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}

export function* spin_unlock_irq(cur: Task, lock: spinlock_t): Generator<unknown, void, unknown> {
  yield* drop(cur, lock, 'spin_unlock_irq');
  cur.preempt_count -= PREEMPT_OFFSET;
  yield* local_irq_enable(cur, '_raw_spin_unlock_irq');
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}

export function* spin_unlock_irqrestore(cur: Task, lock: spinlock_t, flags: number): Generator<unknown, void, unknown> {
  yield* drop(cur, lock, 'spin_unlock_irqrestore');
  cur.preempt_count -= PREEMPT_OFFSET;
  yield* local_irq_restore(cur, flags, '_raw_spin_unlock_irqrestore');
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}

export function* spin_unlock_bh(cur: Task, lock: spinlock_t): Generator<unknown, void, unknown> {
  yield* drop(cur, lock, 'spin_unlock_bh');
  cur.preempt_count -= SOFTIRQ_LOCK_OFFSET;
  yield* bhEnableSoftirqs(cur);
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}

export const raw_spin_lock = spin_lock;
export const raw_spin_lock_irq = spin_lock_irq;
export const raw_spin_lock_irqsave = spin_lock_irqsave;
export const raw_spin_trylock = spin_trylock;
export const raw_spin_unlock = spin_unlock;
export const raw_spin_unlock_irq = spin_unlock_irq;
export const raw_spin_unlock_irqrestore = spin_unlock_irqrestore;

/** lockdep_assert_held: the assertion lockdep makes (reported by the lockdep issue's checker). */
export function lockdep_is_held(cur: Task, lock: Lock): boolean {
  return cur.held.some((h) => h.lock === lock);
}
