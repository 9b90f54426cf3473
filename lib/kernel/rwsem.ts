/**
 * Reader-writer semaphores (kernel/locking/rwsem.c): many readers or one writer, sleeping
 * waiters. down_read/down_write call might_sleep first (the trylocks do not). Waiters queue
 * FIFO; a reader arriving while anyone waits queues too, so readers cannot starve a waiting
 * writer (the kernel's optimistic reader lock stealing is not modelled).
 *
 * Release hands the semaphore over before waking, as mutex_unlock does, so the woken task
 * already holds it: to the head waiter, and when the head is a reader, to every consecutive
 * reader at the head of the queue (rwsem_mark_wake wakes the readers at the front; the kernel
 * takes every queued reader, this model stops at the first writer). downgrade_write lets those
 * readers in beside the downgrading task.
 */
import type { Thread } from '../../scheduler';
import { Lock, recordAcquired, recordReleased, type Owner } from './lock';
import type { Machine } from './machine';
import { dropReader, recordReadAcquired } from './rwlock';
import { might_sleep, sleep_until, try_to_wake_up } from './sched';
import type { Task } from './task';

/** A sleeping down_read/down_write; it becomes the holder entry when the semaphore is handed over. */
interface RwsemWaiter extends Owner {
  write: boolean;
  /** The acquiring function (down_read, down_write_nested/1...): recorded at the hand-over. */
  how: string;
  /** Set by the hand-over, so a stray wakeup does not end the wait early. */
  granted: boolean;
}

export class rw_semaphore extends Lock {
  // `owner` (from Lock) is the writer holding it, or null.
  /** The contexts holding it for reading. */
  readonly readers: Owner[] = [];
  readonly waiters: RwsemWaiter[] = [];

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

const readFree = (sem: rw_semaphore): boolean => sem.owner === null && sem.waiters.length === 0;
const writeFree = (sem: rw_semaphore): boolean => readFree(sem) && sem.readers.length === 0;

/** Hand the semaphore to the head waiter (and the readers right behind a reader) and wake them. */
function handOver(sem: rw_semaphore): void {
  const q = sem.waiters;
  while (q.length > 0 && sem.owner === null) {
    const w = q[0];
    if (w.write) {
      if (sem.readers.length > 0) return;
      q.shift();
      // The hand-over is the waiter's acquisition: held from this step (lockdep agrees).
      recordAcquired(w.task, sem, w.how, w.depth);
      sem.owner = w;
    } else {
      q.shift();
      sem.readers.push(w);
      recordReadAcquired(w.task, sem, w.how, true, w.depth);
    }
    w.granted = true;
    try_to_wake_up(w.task);
  }
}

function* waitFor(cur: Task, sem: rw_semaphore, write: boolean, where: string, how: string = where): Generator<unknown, void, unknown> {
  const w: RwsemWaiter = { task: cur, depth: cur.depth, write, how, granted: false };
  sem.waiters.push(w);
  const why = { kind: 'rwsem' as const, lock: sem, what: sem.name };
  yield* sleep_until(cur, () => w.granted, why, where);
}

export function* down_read(cur: Task, sem: rw_semaphore, how = 'down_read'): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'down_read');
  cur.cpu.machine.emit('lockAcquire', cur, sem, how, false);
  yield cur.thread.write(sem.obj);
  if (readFree(sem)) {
    recordReadAcquired(cur, sem, how, false);
    return;
  }
  yield* waitFor(cur, sem, false, 'down_read', how); // the hand-over records the acquisition
}

export function* down_write(cur: Task, sem: rw_semaphore, how = 'down_write'): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'down_write');
  cur.cpu.machine.emit('lockAcquire', cur, sem, how, false);
  yield cur.thread.write(sem.obj);
  if (writeFree(sem)) {
    recordAcquired(cur, sem, how);
    return;
  }
  yield* waitFor(cur, sem, true, 'down_write', how); // the hand-over records the acquisition
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
  if (dropReader(cur, sem) && sem.readers.length === 0) handOver(sem);
}

/** up_read: lockdep's release, the drop and the hand-over are one step. */
export function* up_read(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  yield cur.thread.write(sem.obj, upReadFx, sem);
}

function upWriteFx(t: Thread, sem: rw_semaphore): void {
  const cur = t.local as Task;
  cur.cpu.machine.emit('lockRelease', cur, sem, 'up_write');
  if (sem.owner === null || sem.owner.task !== cur) return; // not the writer: changes nothing
  sem.owner = null;
  recordReleased(cur, sem);
  handOver(sem);
}

/** up_write: lockdep's release, the drop and the hand-over are one step. */
export function* up_write(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  yield cur.thread.write(sem.obj, upWriteFx, sem);
}

/**
 * downgrade_write: the writer becomes a reader without letting a writer in between; the
 * readers at the head of the queue come in with it. Its held-lock entry now says
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
  handOver(sem);
}

export function rwsem_is_locked(sem: rw_semaphore): boolean {
  return sem.owner !== null || sem.readers.length > 0;
}

export function rwsem_is_contended(sem: rw_semaphore): boolean {
  return sem.waiters.length > 0;
}
