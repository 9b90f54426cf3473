/**
 * The lockdep nesting annotations of sleeping locks (include/linux/mutex.h, rwsem.h,
 * lockdep_types.h, v6.12): mutex_lock_nested, down_read_nested, down_write_nested and
 * SINGLE_DEPTH_NESTING. They lock exactly as mutex_lock / down_read / down_write; the only
 * difference is the subclass lockdep files the hold under (`<class>/<subclass>`), so two locks of
 * one class taken in a fixed order (parent then child inode, say) are not "possible recursive
 * locking". The subclass travels to lockdep in the hook's `how`, as spin_lock_nested's does:
 * `mutex_lock_nested/<subclass>`.
 */
import { mutex_lock, type mutex } from './mutex';
import { down_read, down_write, type rw_semaphore } from './rwsem';
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
  yield* mutex_lock(cur, lock, `mutex_lock_nested/${subclass}`);
}

/** down_read_nested(sem, subclass). */
export function* down_read_nested(cur: Task, sem: rw_semaphore, subclass: number): Generator<unknown, void, unknown> {
  checkSubclass('down_read_nested', subclass);
  yield* down_read(cur, sem, `down_read_nested/${subclass}`);
}

/** down_write_nested(sem, subclass). */
export function* down_write_nested(cur: Task, sem: rw_semaphore, subclass: number): Generator<unknown, void, unknown> {
  checkSubclass('down_write_nested', subclass);
  yield* down_write(cur, sem, `down_write_nested/${subclass}`);
}
