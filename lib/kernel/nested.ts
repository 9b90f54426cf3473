/**
 * The lockdep nesting annotations of sleeping locks (include/linux/mutex.h, rwsem.h,
 * lockdep_types.h, v6.12): mutex_lock_nested, down_read_nested, down_write_nested and
 * SINGLE_DEPTH_NESTING. They lock exactly as mutex_lock / down_read / down_write; the only
 * difference is the subclass lockdep files the hold under (`<class>/<subclass>`), so two locks of
 * one class taken in a fixed order (parent then child inode, say) are not "possible recursive
 * locking". The subclass travels to lockdep in the hook's `how`, as spin_lock_nested's does:
 * `mutex_lock_nested/<subclass>`.
 *
 * SHIM (until mutex.ts and rwsem.ts take the `how`): mutex_lock, down_read and down_write name
 * their hold themselves, so the three functions below carry private copies of their bodies with
 * the `how` threaded through. The lead's replacement is one line each:
 *   mutex_lock(cur, lock, how = 'mutex_lock')   -> mutex_lock_nested calls mutex_lock(cur, lock, `mutex_lock_nested/${subclass}`)
 *   down_read(cur, sem, how = 'down_read')      -> down_read_nested calls down_read(cur, sem, `down_read_nested/${subclass}`)
 *   down_write(cur, sem, how = 'down_write')    -> down_write_nested calls down_write(cur, sem, `down_write_nested/${subclass}`)
 * (`how` replacing the literal in their lockAcquire emit and recordAcquired/recordReadAcquired).
 */
import { recordAcquired } from './lock';
import type { mutex } from './mutex';
import { recordReadAcquired } from './rwlock';
import type { rw_semaphore } from './rwsem';
import { might_sleep, sleep } from './sched';
import type { Task } from './task';

/** lockdep_types.h: the subclass for "one level below" (MAX_LOCKDEP_SUBCLASSES is 8). */
export const SINGLE_DEPTH_NESTING = 1;
export const MAX_LOCKDEP_SUBCLASSES = 8;

function checkSubclass(fn: string, subclass: number): void {
  // lockdep's look_up_lock_class: "BUG: looking up invalid subclass" and the hold is not tracked.
  if (!Number.isInteger(subclass) || subclass < 0 || subclass >= MAX_LOCKDEP_SUBCLASSES) throw new Error(`${fn}: subclass must be 0..${MAX_LOCKDEP_SUBCLASSES - 1}, got ${subclass}`);
}

/** mutex_lock_nested(lock, subclass). */
export function* mutex_lock_nested(cur: Task, lock: mutex, subclass: number): Generator<unknown, void, unknown> {
  checkSubclass('mutex_lock_nested', subclass);
  yield* shimMutexLock(cur, lock, `mutex_lock_nested/${subclass}`);
}

/** down_read_nested(sem, subclass). */
export function* down_read_nested(cur: Task, sem: rw_semaphore, subclass: number): Generator<unknown, void, unknown> {
  checkSubclass('down_read_nested', subclass);
  yield* shimDownRead(cur, sem, `down_read_nested/${subclass}`);
}

/** down_write_nested(sem, subclass). */
export function* down_write_nested(cur: Task, sem: rw_semaphore, subclass: number): Generator<unknown, void, unknown> {
  checkSubclass('down_write_nested', subclass);
  yield* shimDownWrite(cur, sem, `down_write_nested/${subclass}`);
}

// ---- SHIM: copies of mutex.ts mutex_lock and rwsem.ts down_read/down_write with `how` ----

function* shimMutexLock(cur: Task, lock: mutex, how: string): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, how.slice(0, how.indexOf('/')));
  const m = cur.cpu.machine;
  m.emit('lockAcquire', cur, lock, how, false);
  yield cur.thread.write(lock.obj);
  if (lock.owner === null) {
    recordAcquired(cur, lock, how);
    return;
  }
  cur.woken = false;
  lock.waiters.push(cur);
  yield* sleep(cur, { kind: 'mutex', lock, what: lock.name }, 'mutex_lock');
  recordAcquired(cur, lock, how);
}

interface ShimRwsemWaiter {
  task: Task;
  depth: number;
  write: boolean;
  granted: boolean;
}

const readFree = (sem: rw_semaphore): boolean => sem.owner === null && sem.waiters.length === 0;
const writeFree = (sem: rw_semaphore): boolean => readFree(sem) && sem.readers.length === 0;

function* shimWaitFor(cur: Task, sem: rw_semaphore, write: boolean, where: string): Generator<unknown, void, unknown> {
  const w: ShimRwsemWaiter = { task: cur, depth: cur.depth, write, granted: false };
  (sem.waiters as ShimRwsemWaiter[]).push(w);
  const why = { kind: 'rwsem' as const, lock: sem, what: sem.name };
  while (!w.granted) yield* sleep(cur, why, where);
}

function* shimDownRead(cur: Task, sem: rw_semaphore, how: string): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'down_read');
  cur.cpu.machine.emit('lockAcquire', cur, sem, how, false);
  yield cur.thread.write(sem.obj);
  if (readFree(sem)) {
    recordReadAcquired(cur, sem, how, false);
    return;
  }
  yield* shimWaitFor(cur, sem, false, 'down_read');
  recordReadAcquired(cur, sem, how, true);
}

function* shimDownWrite(cur: Task, sem: rw_semaphore, how: string): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'down_write');
  cur.cpu.machine.emit('lockAcquire', cur, sem, how, false);
  yield cur.thread.write(sem.obj);
  if (!writeFree(sem)) yield* shimWaitFor(cur, sem, true, 'down_write');
  recordAcquired(cur, sem, how);
}
