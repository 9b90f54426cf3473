/**
 * Mutexes: mutex_lock (might_sleep, then sleep while contended, giving the CPU away),
 * mutex_trylock (never sleeps, no might_sleep), mutex_unlock (hands the mutex to the first
 * waiter, FIFO, and wakes it).
 */
import type { Thread } from '../../scheduler';
import { Lock, recordAcquired, recordReleased } from './lock';
import type { Machine } from './machine';
import { might_sleep, sleep_until, try_to_wake_up } from './sched';
import type { Task } from './task';

export class mutex extends Lock {
  readonly waiters: Task[] = [];
  /** How each waiter asked (mutex_lock, mutex_lock_nested/1): recorded at its hand-over. */
  readonly waiterHow: string[] = [];
  /** Each waiter's ticket, and the ticket of the last hand-over: a waiter goes on when its ticket was handed the lock. */
  readonly waiterTicket: number[] = [];
  tickets = 0;
  handedTicket = 0;
  constructor(m: Machine, name: string) {
    super('mutex', name, m.sim.object(name));
  }
}

/** DEFINE_MUTEX(name) / mutex_init(&lock) with the lockdep class `name`. */
export function DEFINE_MUTEX(m: Machine, name: string): mutex {
  return new mutex(m, name);
}
export const mutex_init = DEFINE_MUTEX;

export function* mutex_lock(cur: Task, lock: mutex, how = 'mutex_lock'): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'mutex_lock');
  const m = cur.cpu.machine;
  m.emit('lockAcquire', cur, lock, how, false);
  yield cur.thread.write(lock.obj);
  if (lock.owner === null) {
    recordAcquired(cur, lock, how);
    return;
  }
  lock.waiters.push(cur);
  lock.waiterHow.push(how);
  // mutex_unlock hands ownership over (and records it) in its own step before waking us, so
  // we own it, and lockdep says so, from that step on.
  // (A recursive mutex_lock by the owner sleeps here for good, as the kernel's does: the
  // condition is the hand-over to this waiter, not ownership.)
  const ticket = ++lock.tickets;
  lock.waiterTicket.push(ticket);
  yield* sleep_until(cur, () => lock.handedTicket === ticket, { kind: 'mutex', lock, what: lock.name }, 'mutex_lock');
}


export function* mutex_trylock(cur: Task, lock: mutex): Generator<unknown, boolean, unknown> {
  cur.cpu.machine.emit('lockAcquire', cur, lock, 'mutex_trylock', true);
  yield cur.thread.write(lock.obj);
  if (lock.owner !== null) return false;
  recordAcquired(cur, lock, 'mutex_trylock');
  return true;
}

function unlockFx(t: Thread, lock: mutex): void {
  const cur = t.local as Task;
  cur.cpu.machine.emit('lockRelease', cur, lock, 'mutex_unlock');
  recordReleased(cur, lock);
  const next = lock.waiters.shift();
  const how = lock.waiterHow.shift() ?? 'mutex_lock';
  const ticket = lock.waiterTicket.shift() ?? 0;
  if (next === undefined) {
    lock.owner = null;
    return;
  }
  lock.handedTicket = ticket;
  recordAcquired(next, lock, how, 0); // the hand-over: the waiter holds it from this step
  try_to_wake_up(next);
}

/** mutex_unlock: lockdep's release, the hand-over to the first waiter and its wakeup, one step. */
export function* mutex_unlock(cur: Task, lock: mutex): Generator<unknown, void, unknown> {
  yield cur.thread.write(lock.obj, unlockFx, lock);
}

export function mutex_is_locked(lock: mutex): boolean {
  return lock.owner !== null;
}
