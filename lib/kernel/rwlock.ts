/**
 * Reader-writer spinlocks (rwlock_t) with queued-rwlock semantics (kernel/locking/qrwlock.c):
 * many readers or one writer. A locker that cannot go on at once waits in arrival order on the
 * lock's queue (the qrwlock's wait_lock), so a process-context reader that finds a writer
 * waiting queues behind it, and the readers at the head of the queue go in together.
 *
 * A reader in interrupt context (in_interrupt(): hardirq, serving a softirq, or BH disabled, as
 * read_lock_bh is) never queues: it takes the lock whenever no writer holds it, even with
 * writers waiting. That is why read_lock in an IRQ handler is allowed while process context
 * holds the lock for reading without irqsave, and write_lock in the handler is not.
 *
 * The _irq, _irqsave and _bh forms move preempt_count and the IRQ state exactly as the
 * spinlock forms do; a waiting CPU spins (blocked on a predicate, no busy steps) with IRQs as
 * they are, so plain read_lock/write_lock spin interruptibly.
 */
import { local_irq_disable, local_irq_enable, local_irq_restore, local_irq_save } from './irqflags';
import { Lock, recordAcquired, recordReleased, type Owner } from './lock';
import type { Thread } from '../../scheduler';
import type { Machine } from './machine';
import { PREEMPT_OFFSET, SOFTIRQ_LOCK_OFFSET, in_interrupt } from './preempt';
import { __local_bh_enable_ip } from './preemption';
import { preemptionPoint } from './sched';
import type { Task } from './task';

/** A context queued on the lock; it is an Owner so it can be listed as one once it gets in. */
interface RwWaiter extends Owner {
  write: boolean;
}

export class rwlock_t extends Lock {
  // `owner` (from Lock) is the writer holding the lock, or null.
  /** The contexts holding it for reading, in the order they got in. */
  readonly readers: Owner[] = [];
  /** Process-context lockers waiting, in arrival order (the qrwlock's wait_lock queue). */
  readonly queue: RwWaiter[] = [];
  /**
   * Interrupt-context readers spinning until the writer leaves. The kernel's have already
   * added their reader bias, so a waiting writer waits for them too.
   */
  irqReaders = 0;

  constructor(m: Machine, name: string) {
    super('rwlock', name, m.sim.object(name));
  }

  override holders(): Owner[] {
    return this.owner === null ? this.readers.slice() : [this.owner, ...this.readers];
  }

  /** A queued locker also waits for every locker queued ahead of it. */
  override waitsFor(task: Task, depth: number): Owner[] {
    const i = this.queue.findIndex((w) => w.task === task && w.depth === depth);
    return i <= 0 ? this.holders() : [...this.holders(), ...this.queue.slice(0, i)];
  }
}

/** DEFINE_RWLOCK(name) / rwlock_init(&lock) with the lockdep class `name`. */
export function DEFINE_RWLOCK(m: Machine, name: string): rwlock_t {
  return new rwlock_t(m, name);
}
export const rwlock_init = DEFINE_RWLOCK;

// ---- shared with rwsem.ts: reader bookkeeping for locks that list every reader ----

/** A lock whose readers are listed beside the writer (`owner`). */
export interface SharedLock extends Lock {
  readonly readers: Owner[];
}

/**
 * Record a read acquisition in `cur`'s held locks (and the lockAcquired hook). `listed`: the
 * reader is already in `lock.readers` (a hand-over did it). `owner` stays the writer slot.
 */
export function recordReadAcquired(cur: Task, lock: SharedLock, how: string, listed: boolean, depth: number = cur.depth): void {
  const writer = lock.owner;
  recordAcquired(cur, lock, how, depth);
  if (!listed) lock.readers.push(lock.owner!);
  lock.owner = writer;
}

/**
 * Remove `cur`'s innermost reader entry: the one of the running context, else (a lock taken in
 * one context of the task and released in another) any of the task's. False when `cur` holds
 * no read lock on it: an unbalanced unlock, which changes nothing (lockdep reports it).
 */
export function dropReader(cur: Task, lock: SharedLock): boolean {
  const r = lock.readers;
  const d = cur.depth;
  let i = r.length - 1;
  while (i >= 0 && !(r[i].task === cur && r[i].depth === d)) i--;
  if (i < 0) {
    i = r.length - 1;
    while (i >= 0 && r[i].task !== cur) i--;
  }
  if (i < 0) return false;
  r.splice(i, 1);
  recordReleased(cur, lock);
  return true;
}

// ---- the lock itself ----

/** No writer and no reader holds it, and no interrupt-context reader spins with its bias counted. */
function writerMayEnter(lock: rwlock_t): boolean {
  return lock.owner === null && lock.readers.length === 0 && lock.irqReaders === 0;
}

/**
 * The qrwlock fast paths: a reader gets in unless a writer holds the lock or waits at the head
 * of the queue (_QW_LOCKED | _QW_WAITING); a writer only when the lock is wholly free.
 */
function mayEnterNow(lock: rwlock_t, write: boolean): boolean {
  if (write) return writerMayEnter(lock) && lock.queue.length === 0;
  return lock.owner === null && (lock.queue.length === 0 || !lock.queue[0].write);
}

function* take(cur: Task, lock: rwlock_t, write: boolean, how: string): Generator<unknown, void, unknown> {
  cur.cpu.machine.emit('lockAcquire', cur, lock, how, false);
  yield cur.thread.write(lock.obj);
  // queued_read_lock_slowpath in interrupt context: only a writer holding the lock stops us.
  const irqReader = !write && in_interrupt(cur.preempt_count);
  if (irqReader ? lock.owner !== null : !mayEnterNow(lock, write)) {
    cur.waitingFor = { kind: 'rwlock', lock, what: `${lock.name} (${write ? 'write' : 'read'})` };
    if (irqReader) {
      lock.irqReaders++;
      // The lock's state changes only in steps that write lock.obj: the predicate reads just it,
      // and the step that ends the spin writes it (it updates the lock).
      yield cur.thread.spinUntil(() => lock.owner === null, null, null, null, [lock.obj]);
      cur.thread.sim.also(lock.obj);
      lock.irqReaders--;
    } else {
      const w: RwWaiter = { task: cur, depth: cur.depth, write };
      lock.queue.push(w);
      // The head goes first; the predicate is rechecked when we step, so the take is atomic.
      yield cur.thread.spinUntil(() => lock.queue[0] === w && (write ? writerMayEnter(lock) : lock.owner === null), null, null, null, [lock.obj]);
      cur.thread.sim.also(lock.obj);
      lock.queue.shift();
    }
    cur.waitingFor = null;
  }
  if (write) recordAcquired(cur, lock, how);
  else recordReadAcquired(cur, lock, how, false);
}

function dropReadFx(t: Thread, lock: rwlock_t, how: string): void {
  const cur = t.local as Task;
  cur.cpu.machine.emit('lockRelease', cur, lock, how);
  dropReader(cur, lock); // waiters see the change when their predicate is rechecked
}

/** The unlock is one visible step, lockdep's release inside it; until it runs the lock is still held. */
function* dropRead(cur: Task, lock: rwlock_t, how: string): Generator<unknown, void, unknown> {
  yield cur.thread.write(lock.obj, dropReadFx, lock, how);
}

function dropWriteFx(t: Thread, lock: rwlock_t, how: string): void {
  const cur = t.local as Task;
  cur.cpu.machine.emit('lockRelease', cur, lock, how);
  // Unlocking a write lock this task does not hold changes nothing (bad unlock balance).
  if (lock.owner === null || lock.owner.task !== cur) return;
  lock.owner = null;
  recordReleased(cur, lock);
}

function* dropWrite(cur: Task, lock: rwlock_t, how: string): Generator<unknown, void, unknown> {
  yield cur.thread.write(lock.obj, dropWriteFx, lock, how);
}

function* lockPlain(cur: Task, lock: rwlock_t, write: boolean, how: string): Generator<unknown, void, unknown> {
  cur.preempt_count += PREEMPT_OFFSET;
  yield* take(cur, lock, write, how);
}

function* lockIrq(cur: Task, lock: rwlock_t, write: boolean, how: string): Generator<unknown, void, unknown> {
  yield* local_irq_disable(cur, `_raw_${how}`);
  cur.preempt_count += PREEMPT_OFFSET;
  yield* take(cur, lock, write, how);
}

function* lockIrqsave(cur: Task, lock: rwlock_t, write: boolean, how: string): Generator<unknown, number, unknown> {
  const flags = yield* local_irq_save(cur, `_raw_${how}`);
  cur.preempt_count += PREEMPT_OFFSET;
  yield* take(cur, lock, write, how);
  return flags;
}

function* lockBh(cur: Task, lock: rwlock_t, write: boolean, how: string): Generator<unknown, void, unknown> {
  // BH off first (SOFTIRQ_LOCK_OFFSET, as __raw_read_lock_bh): from here on a reader counts as
  // in interrupt context, as in the kernel.
  cur.preempt_count += SOFTIRQ_LOCK_OFFSET;
  yield* take(cur, lock, write, how);
}

function* trylock(cur: Task, lock: rwlock_t, write: boolean, how: string): Generator<unknown, boolean, unknown> {
  cur.preempt_count += PREEMPT_OFFSET;
  cur.cpu.machine.emit('lockAcquire', cur, lock, how, true);
  yield cur.thread.write(lock.obj);
  if (mayEnterNow(lock, write)) {
    if (write) recordAcquired(cur, lock, how);
    else recordReadAcquired(cur, lock, how, false);
    return true;
  }
  cur.preempt_count -= PREEMPT_OFFSET;
  return false;
}

function* afterUnlock(cur: Task): Generator<unknown, void, unknown> {
  cur.preempt_count -= PREEMPT_OFFSET;
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}

function* afterUnlockIrq(cur: Task): Generator<unknown, void, unknown> {
  cur.preempt_count -= PREEMPT_OFFSET;
  yield* local_irq_enable(cur);
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}

function* afterUnlockIrqrestore(cur: Task, flags: number): Generator<unknown, void, unknown> {
  cur.preempt_count -= PREEMPT_OFFSET;
  yield* local_irq_restore(cur, flags);
  if (cur.cpu.machine.preemption === 'full') yield* preemptionPoint(cur);
}

// ---- read side ----

export function* read_lock(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* lockPlain(cur, lock, false, 'read_lock');
}

export function* read_lock_irq(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* lockIrq(cur, lock, false, 'read_lock_irq');
}

export function* read_lock_irqsave(cur: Task, lock: rwlock_t): Generator<unknown, number, unknown> {
  return yield* lockIrqsave(cur, lock, false, 'read_lock_irqsave');
}

export function* read_lock_bh(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* lockBh(cur, lock, false, 'read_lock_bh');
}

/** read_trylock: never waits; fails while a writer holds the lock or waits for it. */
export function* read_trylock(cur: Task, lock: rwlock_t): Generator<unknown, boolean, unknown> {
  return yield* trylock(cur, lock, false, 'read_trylock');
}

export function* read_unlock(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* dropRead(cur, lock, 'read_unlock');
  yield* afterUnlock(cur);
}

export function* read_unlock_irq(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* dropRead(cur, lock, 'read_unlock_irq');
  yield* afterUnlockIrq(cur);
}

export function* read_unlock_irqrestore(cur: Task, lock: rwlock_t, flags: number): Generator<unknown, void, unknown> {
  yield* dropRead(cur, lock, 'read_unlock_irqrestore');
  yield* afterUnlockIrqrestore(cur, flags);
}

export function* read_unlock_bh(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* dropRead(cur, lock, 'read_unlock_bh');
  yield* __local_bh_enable_ip(cur, SOFTIRQ_LOCK_OFFSET); // runs pending softirqs, then a preemption point
}

// ---- write side ----

export function* write_lock(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* lockPlain(cur, lock, true, 'write_lock');
}

export function* write_lock_irq(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* lockIrq(cur, lock, true, 'write_lock_irq');
}

export function* write_lock_irqsave(cur: Task, lock: rwlock_t): Generator<unknown, number, unknown> {
  return yield* lockIrqsave(cur, lock, true, 'write_lock_irqsave');
}

export function* write_lock_bh(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* lockBh(cur, lock, true, 'write_lock_bh');
}

/** write_trylock: never waits; succeeds only when nobody holds or waits for the lock. */
export function* write_trylock(cur: Task, lock: rwlock_t): Generator<unknown, boolean, unknown> {
  return yield* trylock(cur, lock, true, 'write_trylock');
}

export function* write_unlock(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* dropWrite(cur, lock, 'write_unlock');
  yield* afterUnlock(cur);
}

export function* write_unlock_irq(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* dropWrite(cur, lock, 'write_unlock_irq');
  yield* afterUnlockIrq(cur);
}

export function* write_unlock_irqrestore(cur: Task, lock: rwlock_t, flags: number): Generator<unknown, void, unknown> {
  yield* dropWrite(cur, lock, 'write_unlock_irqrestore');
  yield* afterUnlockIrqrestore(cur, flags);
}

export function* write_unlock_bh(cur: Task, lock: rwlock_t): Generator<unknown, void, unknown> {
  yield* dropWrite(cur, lock, 'write_unlock_bh');
  yield* __local_bh_enable_ip(cur, SOFTIRQ_LOCK_OFFSET);
}

/** rwlock_is_contended: someone waits for the lock. */
export function rwlock_is_contended(lock: rwlock_t): boolean {
  return lock.queue.length > 0 || lock.irqReaders > 0;
}
