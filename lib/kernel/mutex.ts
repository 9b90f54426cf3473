/**
 * Mutexes (kernel/locking/mutex.c, v6.12): mutex_lock (might_sleep, then sleep while contended,
 * giving the CPU away), mutex_trylock (never sleeps, no might_sleep), mutex_unlock.
 *
 * No FIFO hand-over by default, as upstream: mutex_unlock clears the owner and wakes the first
 * waiter, which must try again when it runs; a task arriving in between (mutex_lock's first
 * trylock, or mutex_trylock) takes the mutex ahead of it. A woken first waiter that still finds
 * the mutex owned sets MUTEX_FLAG_HANDOFF; the next mutex_unlock then gives ownership straight to
 * the first waiter (__mutex_handoff) and nobody can steal it any more.
 *
 * Modelled as upstream except: optimistic spinning (mutex_optimistic_spin) is not modelled: a
 * spinner that takes the mutex at its release is the same overtaking step as an arrival's
 * trylock, only the CPU time it burns spinning is missing. MUTEX_FLAG_PICKUP is folded into the
 * hand-over: the owner field names the waiter from the unlocker's step on (upstream: owner =
 * waiter|PICKUP, which no other task can take either), so lockdep and the wait-for graph see it
 * holding the mutex from that step.
 */
import { Lock, recordAcquired, recordReleased } from './lock';
import type { Machine } from './machine';
import { might_sleep, set_task_state, sleep, try_to_wake_up } from './sched';
import type { Task } from './task';
import type { Thread } from '../../scheduler';

/** A sleeping mutex_lock: struct mutex_waiter, on lock->wait_list. */
export interface MutexWaiter {
  task: Task;
  /** The nesting depth it waits at (the owner entry it becomes at a hand-over). */
  depth: number;
  /** How it asked (mutex_lock, mutex_lock_nested/1): recorded when it gets the mutex. */
  how: string;
}

export class mutex extends Lock {
  /** lock->wait_list: FIFO; a waiter stays on it until it has the mutex. */
  readonly wait_list: MutexWaiter[] = [];
  /** MUTEX_FLAG_HANDOFF: the first waiter asked for the next unlock to hand the mutex to it. */
  handoff = false;
  /** The waiter the last __mutex_handoff gave the mutex to, until it picks it up. */
  handedTo: MutexWaiter | null = null;
  constructor(m: Machine, name: string) {
    super('mutex', name, m.sim.object(name));
  }
  /** The sleeping tasks, first waiter first. */
  get waiters(): Task[] {
    return this.wait_list.map((w) => w.task);
  }
}

/** DEFINE_MUTEX(name) / mutex_init(&lock) with the lockdep class `name`. */
export function DEFINE_MUTEX(m: Machine, name: string): mutex {
  return new mutex(m, name);
}
export const mutex_init = DEFINE_MUTEX;

/** __mutex_remove_waiter: off the list; the last waiter to leave clears the flags. */
function removeWaiter(lock: mutex, w: MutexWaiter): void {
  const i = lock.wait_list.indexOf(w);
  if (i >= 0) lock.wait_list.splice(i, 1);
  if (lock.handedTo === w) lock.handedTo = null;
  if (lock.wait_list.length === 0) lock.handoff = false;
}

export function* mutex_lock(cur: Task, lock: mutex, how = 'mutex_lock'): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'mutex_lock');
  const m = cur.cpu.machine;
  m.emit('lockAcquire', cur, lock, how, false);
  // __mutex_lock_common: __mutex_trylock, then again under wait_lock (one step here). It takes a
  // free mutex even with sleeping waiters: this is how an arrival overtakes them.
  yield cur.thread.write(lock.obj);
  if (lock.owner === null) {
    recordAcquired(cur, lock, how);
    return;
  }
  // Queue at the tail (FIFO list, but the list only orders who is woken and who may ask for a
  // hand-over) and set the sleeping state before the trylock at the loop's top.
  const w: MutexWaiter = { task: cur, depth: cur.depth, how };
  lock.wait_list.push(w);
  set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
  const why = { kind: 'mutex' as const, lock, what: lock.name };
  for (;;) {
    // The trylock at the loop's top: picks up a hand-over to us (the unlocker recorded it).
    // (A recursive mutex_lock by the owner is never handed the mutex: it sleeps for good.)
    if (lock.handedTo === w) break;
    yield* sleep(cur, why, 'mutex_lock'); // schedule_preempt_disabled
    // Woken: first = __mutex_waiter_is_first; set_current_state; __mutex_trylock_or_handoff(first).
    yield cur.thread.write(lock.obj);
    const first = lock.wait_list[0] === w;
    set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
    if (lock.handedTo === w) break;
    if (lock.owner === null) {
      recordAcquired(cur, lock, how, w.depth);
      break;
    }
    // Still owned (someone overtook us): the first waiter asks for a direct hand-over.
    if (first) lock.handoff = true;
  }
  removeWaiter(lock, w);
  set_task_state(cur, 'TASK_RUNNING');
}

/** mutex_trylock: __mutex_trylock; never sleeps, and takes a free mutex ahead of any waiter. */
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
  const next = lock.wait_list[0];
  if (lock.handoff && next !== undefined) {
    // __mutex_unlock_slowpath with HANDOFF: the owner field goes straight to the first waiter
    // (__mutex_handoff, which also clears HANDOFF); it holds the mutex from this step.
    lock.handoff = false;
    lock.handedTo = next;
    recordAcquired(next.task, lock, next.how, next.depth);
  } else {
    // Without HANDOFF the owner is cleared first: whoever tries next takes it.
    lock.owner = null;
    lock.handoff = false;
  }
  // wake_q: the first waiter (if any) is woken to try again.
  if (next !== undefined) try_to_wake_up(next.task);
}

/** mutex_unlock: lockdep's release, the owner's release (or hand-over) and the wakeup, one step. */
export function* mutex_unlock(cur: Task, lock: mutex): Generator<unknown, void, unknown> {
  yield cur.thread.write(lock.obj, unlockFx, lock);
}

export function mutex_is_locked(lock: mutex): boolean {
  return lock.owner !== null;
}
