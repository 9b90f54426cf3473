/**
 * Reader-writer semaphores (kernel/locking/rwsem.c, v6.12): many readers or one writer, sleeping
 * waiters. down_read/down_write call might_sleep first (the trylocks do not).
 *
 * Writers are not handed the semaphore: up_write/up_read wake the first waiter, and a writer
 * takes the semaphore itself when it runs (rwsem_try_write_lock). Until then an arriving writer
 * may take a free semaphore ahead of it (upstream through the optimistic spin's unqueued trylock
 * or its own first rwsem_try_write_lock; the spinning itself is not modelled), and so may an
 * arriving reader when no other reader holds it (rwsem_down_read_slowpath's reader lock
 * stealing). A writer woken and still shut out after waiting longer than RWSEM_WAIT_TIMEOUT sets
 * RWSEM_FLAG_HANDOFF: from then on nobody but the first waiter may take it, and the next release
 * leaves it free for that waiter. (RT tasks, which set HANDOFF at once, are not modelled.)
 *
 * Readers are handed it: rwsem_mark_wake grants every reader in the queue (up to
 * MAX_READERS_WAKEUP, passing over queued writers) before waking them, so a woken reader already
 * holds it. An arriving reader queues behind any waiter while readers hold it, so readers cannot
 * starve a waiting writer. The readers' own HANDOFF (set in rwsem_mark_wake when a writer took
 * the semaphore between the release and the wakeup) cannot arise here: the release and the
 * wakeup are one step. downgrade_write lets the queued readers in beside the downgrading task.
 */
import type { Thread } from '../../scheduler';
import { Lock, recordAcquired, recordReleased, type Owner } from './lock';
import type { Machine } from './machine';
import { dropReader, recordReadAcquired } from './rwlock';
import { might_sleep, set_task_state, sleep, sleep_until, try_to_wake_up } from './sched';
import type { Task } from './task';
import { jiffies } from './timer';

/** struct rwsem_waiter: a sleeping down_read/down_write; it becomes the holder entry when it gets the semaphore. */
interface RwsemWaiter extends Owner {
  write: boolean;
  /** The acquiring function (down_read, down_write_nested/1...): recorded when it gets the semaphore. */
  how: string;
  /** Set when a reader is granted the semaphore, so a stray wakeup does not end the wait early. */
  granted: boolean;
  /** jiffies + RWSEM_WAIT_TIMEOUT at queueing: after it, a shut-out writer sets HANDOFF. */
  timeout: number;
  /** handoff_set: this (first) waiter has RWSEM_FLAG_HANDOFF set for it. */
  handoff_set: boolean;
}

/** RWSEM_WAIT_TIMEOUT: DIV_ROUND_UP(HZ, 250) jiffies (about 4 ms). */
export function RWSEM_WAIT_TIMEOUT(hz: number): number {
  return Math.ceil(hz / 250);
}

/** MAX_READERS_WAKEUP: at most this many readers are granted by one wakeup. */
const MAX_READERS_WAKEUP = 0x100;

export class rw_semaphore extends Lock {
  // `owner` (from Lock) is the writer holding it, or null.
  /** The contexts holding it for reading. */
  readonly readers: Owner[] = [];
  readonly waiters: RwsemWaiter[] = [];
  /** RWSEM_FLAG_HANDOFF: reserved for the first waiter; nobody else may take it. */
  handoff = false;

  constructor(m: Machine, name: string) {
    super('rw_semaphore', name, m.sim.object(name));
  }

  override holders(): Owner[] {
    return this.owner === null ? this.readers.slice() : [this.owner, ...this.readers];
  }
}

/** DECLARE_RWSEM(name) / init_rwsem(&sem) with the lockdep class `name`. */
export function DECLARE_RWSEM(m: Machine, name: string): rw_semaphore {
  return new rw_semaphore(m, name);
}
export const init_rwsem = DECLARE_RWSEM;

/** The count has no writer and no WAITERS/HANDOFF flag (RWSEM_READ_FAILED_MASK clear). */
const readFree = (sem: rw_semaphore): boolean => sem.owner === null && sem.waiters.length === 0;
/** The count is 0 (RWSEM_UNLOCKED_VALUE): what down_write_trylock's cmpxchg needs. */
const writeFree = (sem: rw_semaphore): boolean => readFree(sem) && sem.readers.length === 0;
/** Nobody holds it (no RWSEM_LOCK_MASK bits). */
const unheld = (sem: rw_semaphore): boolean => sem.owner === null && sem.readers.length === 0;

/** rwsem_del_waiter: off the list; the last one to leave clears WAITERS and HANDOFF. */
function delWaiter(sem: rw_semaphore, w: RwsemWaiter): void {
  const i = sem.waiters.indexOf(w);
  if (i >= 0) sem.waiters.splice(i, 1);
  if (sem.waiters.length === 0) sem.handoff = false;
}

/**
 * rwsem_mark_wake: a writer at the head is only woken (RWSEM_WAKE_ANY; it takes the semaphore
 * itself); otherwise every queued reader is granted it, then woken. With `readOwned` (a reader
 * already holds it: stealing, downgrade) a writer at the head is left asleep.
 */
function markWake(sem: rw_semaphore, readOwned: boolean): void {
  const q = sem.waiters;
  if (q.length === 0 || sem.owner !== null) return;
  const first = q[0];
  if (first.write) {
    if (!readOwned) try_to_wake_up(first.task);
    return;
  }
  let woken = 0;
  for (let i = 0; i < q.length && woken < MAX_READERS_WAKEUP; ) {
    const w = q[i];
    if (w.write) {
      i++;
      continue;
    }
    q.splice(i, 1);
    sem.readers.push(w);
    recordReadAcquired(w.task, sem, w.how, true, w.depth); // held from this step (lockdep agrees)
    w.granted = true;
    try_to_wake_up(w.task);
    woken++;
  }
  if (q.length === 0) sem.handoff = false;
}

function newWaiter(cur: Task, sem: rw_semaphore, write: boolean, how: string): RwsemWaiter {
  const m = cur.cpu.machine;
  const w: RwsemWaiter = { task: cur, depth: cur.depth, write, how, granted: false, timeout: jiffies(m) + RWSEM_WAIT_TIMEOUT(m.hz), handoff_set: false };
  sem.waiters.push(w);
  return w;
}

/**
 * rwsem_try_write_lock (v6.12), in the waiter's step: take it when nobody holds it, unless the
 * first waiter has HANDOFF set for it and we are not that waiter; shut out, set HANDOFF once we
 * have waited past our timeout.
 */
function rwsem_try_write_lock(cur: Task, sem: rw_semaphore, w: RwsemWaiter): boolean {
  const first = sem.waiters[0];
  if (sem.handoff && first.handoff_set && w !== first) return false;
  if (!unheld(sem)) {
    if (sem.handoff || !(jiffies(cur.cpu.machine) > w.timeout)) return false; // time_after(jiffies, timeout)
    sem.handoff = true;
    first.handoff_set = true;
    return false;
  }
  sem.handoff = false;
  delWaiter(sem, w);
  recordAcquired(cur, sem, w.how, w.depth);
  return true;
}

export function* down_read(cur: Task, sem: rw_semaphore, how = 'down_read'): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'down_read');
  cur.cpu.machine.emit('lockAcquire', cur, sem, how, false);
  yield cur.thread.write(sem.obj);
  if (readFree(sem)) {
    recordReadAcquired(cur, sem, how, false);
    return;
  }
  // rwsem_down_read_slowpath: reader lock stealing when no writer holds it, HANDOFF is not set
  // and no other reader holds it (readers already in: queue, so a waiting writer is not starved).
  if (sem.owner === null && !sem.handoff && sem.readers.length === 0) {
    recordReadAcquired(cur, sem, how, false);
    markWake(sem, true); // the first reader in lets the queued readers in too
    return;
  }
  const w = newWaiter(cur, sem, false, how);
  // The waker grants it (rwsem_mark_wake): wait for that, not for any wakeup.
  yield* sleep_until(cur, () => w.granted, { kind: 'rwsem', lock: sem, what: sem.name }, 'down_read');
}

export function* down_write(cur: Task, sem: rw_semaphore, how = 'down_write'): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'down_write');
  cur.cpu.machine.emit('lockAcquire', cur, sem, how, false);
  yield cur.thread.write(sem.obj);
  // rwsem_write_trylock, or (waiters queued) the optimistic spin's unqueued trylock: a free
  // semaphore is taken ahead of the waiters unless HANDOFF reserves it for the first.
  if (unheld(sem) && !sem.handoff) {
    recordAcquired(cur, sem, how);
    return;
  }
  // rwsem_down_write_slowpath: queue, then rwsem_try_write_lock after each wakeup.
  const w = newWaiter(cur, sem, true, how);
  const why = { kind: 'rwsem' as const, lock: sem, what: sem.name };
  set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
  for (;;) {
    if (rwsem_try_write_lock(cur, sem, w)) break;
    yield* sleep(cur, why, 'down_write');
    yield cur.thread.write(sem.obj); // raw_spin_lock_irq(&sem->wait_lock) again
    set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
  }
  set_task_state(cur, 'TASK_RUNNING');
}

/** down_read_trylock: never sleeps; fails while a writer holds it or anyone waits. */
export function* down_read_trylock(cur: Task, sem: rw_semaphore): Generator<unknown, boolean, unknown> {
  cur.cpu.machine.emit('lockAcquire', cur, sem, 'down_read_trylock', true);
  yield cur.thread.write(sem.obj);
  if (!readFree(sem)) return false;
  recordReadAcquired(cur, sem, 'down_read_trylock', false);
  return true;
}

/** down_write_trylock: never sleeps; succeeds only when nobody holds or waits for it. */
export function* down_write_trylock(cur: Task, sem: rw_semaphore): Generator<unknown, boolean, unknown> {
  cur.cpu.machine.emit('lockAcquire', cur, sem, 'down_write_trylock', true);
  yield cur.thread.write(sem.obj);
  if (!writeFree(sem)) return false;
  recordAcquired(cur, sem, 'down_write_trylock');
  return true;
}

function upReadFx(t: Thread, sem: rw_semaphore): void {
  const cur = t.local as Task;
  cur.cpu.machine.emit('lockRelease', cur, sem, 'up_read');
  // Not a reader: an unbalanced up_read changes nothing (DEBUG_RWSEMS / lockdep report it).
  if (dropReader(cur, sem) && sem.readers.length === 0) markWake(sem, false);
}

/** up_read: lockdep's release, the drop and the wakeup (rwsem_wake) are one step. */
export function* up_read(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  yield cur.thread.write(sem.obj, upReadFx, sem);
}

function upWriteFx(t: Thread, sem: rw_semaphore): void {
  const cur = t.local as Task;
  cur.cpu.machine.emit('lockRelease', cur, sem, 'up_write');
  if (sem.owner === null || sem.owner.task !== cur) return; // not the writer: changes nothing
  sem.owner = null;
  recordReleased(cur, sem);
  markWake(sem, false);
}

/** up_write: lockdep's release, the drop and the wakeup (rwsem_wake) are one step. */
export function* up_write(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  yield cur.thread.write(sem.obj, upWriteFx, sem);
}

/**
 * downgrade_write: the writer becomes a reader without letting a writer in between; the
 * queued readers come in with it. Its held-lock entry now says
 * 'downgrade_write' (a read hold from here on, as lockdep's lock_downgrade records it).
 */
export function* downgrade_write(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  yield cur.thread.write(sem.obj);
  const o = sem.owner;
  if (o === null || o.task !== cur) return; // not the writer: changes nothing
  sem.owner = null;
  sem.readers.push(o);
  for (let i = cur.held.length - 1; i >= 0; i--) {
    if (cur.held[i].lock === sem) {
      cur.held[i].how = 'downgrade_write';
      break;
    }
  }
  cur.cpu.machine.emit('lockDowngrade', cur, sem);
  markWake(sem, true); // rwsem_downgrade_wake: RWSEM_WAKE_READ_OWNED
}

export function rwsem_is_locked(sem: rw_semaphore): boolean {
  return sem.owner !== null || sem.readers.length > 0;
}

export function rwsem_is_contended(sem: rw_semaphore): boolean {
  return sem.waiters.length > 0;
}
