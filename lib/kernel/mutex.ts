/**
 * Mutexes: mutex_lock (might_sleep, then sleep while contended, giving the CPU away),
 * mutex_trylock (never sleeps, no might_sleep), mutex_unlock (hands the mutex to the first
 * waiter, FIFO, and wakes it).
 */
import { Lock, recordAcquired, recordReleased } from './lock';
import type { Machine } from './machine';
import { might_sleep, sleep, wake_up_process } from './sched';
import type { Task } from './task';

export class mutex extends Lock {
  readonly waiters: Task[] = [];
  constructor(m: Machine, name: string) {
    super('mutex', name, m.sim.object(name));
  }
}

/** DEFINE_MUTEX(name) / mutex_init(&lock) with the lockdep class `name`. */
export function DEFINE_MUTEX(m: Machine, name: string): mutex {
  return new mutex(m, name);
}
export const mutex_init = DEFINE_MUTEX;

export function* mutex_lock(cur: Task, lock: mutex): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'mutex_lock');
  const m = cur.cpu.machine;
  m.emit('lockAcquire', cur, lock, 'mutex_lock', false);
  yield cur.thread.write(lock.obj);
  if (lock.owner === null) {
    recordAcquired(cur, lock, 'mutex_lock');
    return;
  }
  cur.woken = false; // a stale wakeup must not end the sleep before the hand-over
  lock.waiters.push(cur);
  // mutex_unlock hands ownership over before waking us, so we own it when we run again.
  yield* sleep(cur, { kind: 'mutex', lock, what: lock.name }, 'mutex_lock');
  recordAcquired(cur, lock, 'mutex_lock'); // the owner was set by the hand-over; same value
}

export function* mutex_trylock(cur: Task, lock: mutex): Generator<unknown, boolean, unknown> {
  cur.cpu.machine.emit('lockAcquire', cur, lock, 'mutex_trylock', true);
  yield cur.thread.write(lock.obj);
  if (lock.owner !== null) return false;
  recordAcquired(cur, lock, 'mutex_trylock');
  return true;
}

export function* mutex_unlock(cur: Task, lock: mutex): Generator<unknown, void, unknown> {
  const m = cur.cpu.machine;
  m.emit('lockRelease', cur, lock, 'mutex_unlock');
  yield cur.thread.write(lock.obj);
  recordReleased(cur, lock);
  const next = lock.waiters.shift();
  if (next === undefined) {
    lock.owner = null;
    return;
  }
  lock.owner = { task: next, depth: 0 };
  wake_up_process(next);
}

export function mutex_is_locked(lock: mutex): boolean {
  return lock.owner !== null;
}
