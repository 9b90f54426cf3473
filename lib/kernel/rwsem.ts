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
import { Lock, recordAcquired, recordReleased, type Owner } from './lock';
import type { Machine } from './machine';
import { dropReader, recordReadAcquired } from './rwlock';
import { might_sleep, sleep, wake_up_process } from './sched';
import type { Task } from './task';

/** A sleeping down_read/down_write; it becomes the holder entry when the semaphore is handed over. */
interface RwsemWaiter extends Owner {
  write: boolean;
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
      sem.owner = w;
    } else {
      q.shift();
      sem.readers.push(w);
    }
    w.granted = true;
    wake_up_process(w.task);
  }
}

function* waitFor(cur: Task, sem: rw_semaphore, write: boolean, where: string): Generator<unknown, void, unknown> {
  const w: RwsemWaiter = { task: cur, depth: cur.depth, write, granted: false };
  sem.waiters.push(w);
  const why = { kind: 'rwsem' as const, lock: sem, what: sem.name };
  while (!w.granted) yield* sleep(cur, why, where);
}

export function* down_read(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'down_read');
  cur.cpu.machine.emit('lockAcquire', cur, sem, 'down_read', false);
  yield cur.thread.write(sem.obj);
  if (readFree(sem)) {
    recordReadAcquired(cur, sem, 'down_read', false);
    return;
  }
  yield* waitFor(cur, sem, false, 'down_read');
  recordReadAcquired(cur, sem, 'down_read', true); // listed by the hand-over
}

export function* down_write(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  yield* might_sleep(cur, 'down_write');
  cur.cpu.machine.emit('lockAcquire', cur, sem, 'down_write', false);
  yield cur.thread.write(sem.obj);
  if (!writeFree(sem)) yield* waitFor(cur, sem, true, 'down_write');
  recordAcquired(cur, sem, 'down_write'); // after a hand-over: the same owner, recorded again
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

export function* up_read(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  cur.cpu.machine.emit('lockRelease', cur, sem, 'up_read');
  yield cur.thread.write(sem.obj);
  // Not a reader: an unbalanced up_read changes nothing (DEBUG_RWSEMS / lockdep report it).
  if (dropReader(cur, sem) && sem.readers.length === 0) handOver(sem);
}

export function* up_write(cur: Task, sem: rw_semaphore): Generator<unknown, void, unknown> {
  cur.cpu.machine.emit('lockRelease', cur, sem, 'up_write');
  yield cur.thread.write(sem.obj);
  if (sem.owner === null || sem.owner.task !== cur) return; // not the writer: changes nothing
  sem.owner = null;
  recordReleased(cur, sem);
  handOver(sem);
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
