/**
 * What every kernel lock shares: an explicit lockdep class name (never derived from JavaScript
 * stacks), an optional subclass (`_nested`), the shared object id its operations touch, and
 * the context holding it.
 */
import type { Task } from './task';

export type LockKind = 'spinlock' | 'raw_spinlock' | 'mutex' | 'rwlock' | 'rw_semaphore' | 'lockdep_map';

export interface Owner {
  task: Task;
  /** Nesting depth of the owning context (0 = task body, 1 = hardirq on top of it, ...). */
  depth: number;
}

export abstract class Lock {
  owner: Owner | null = null;
  /** Lockdep class: DEFINE_SPINLOCK(name) / spin_lock_init(lock, "name") / lockdep_set_class. */
  lockClass: string;

  constructor(
    readonly kind: LockKind,
    readonly name: string,
    readonly obj: number,
  ) {
    this.lockClass = name;
  }

  /**
   * Every context holding the lock: the owner, or for reader-writer locks each reader. The
   * wait-for graph has an edge to each.
   */
  holders(): Owner[] {
    return this.owner === null ? [] : [this.owner];
  }

  /**
   * Whom a context waiting for this lock waits on: the holders, and for queued locks also the
   * waiters ahead of it (they get in first).
   */
  waitsFor(_task: Task, _depth: number): Owner[] {
    return this.holders();
  }

  toString(): string {
    return this.name;
  }
}

/**
 * Record that `cur`'s context at nesting `depth` (default: the running one) now holds `lock`
 * (owner, held-locks list, hook). Runs inside the step that takes the lock: the acquiring op's
 * effect, or the releaser's step at a hand-over (then `depth` is the waiter's frame).
 */
export function recordAcquired(cur: Task, lock: Lock, how: string, depth: number = cur.depth): void {
  lock.owner = { task: cur, depth };
  const st = cur.stacks[depth];
  const at = st !== undefined && st.length > 0 ? st[st.length - 1] : (cur.contexts[depth] ?? 'task');
  cur.held.push({ lock, depth, how, at, since: cur.thread.sim.now() });
  cur.cpu.machine.emit('lockAcquired', cur, lock, how);
}

/** Drop `lock` from `cur`'s held-locks list (the innermost entry). */
export function recordReleased(cur: Task, lock: Lock): void {
  const i = cur.held.map((h) => h.lock).lastIndexOf(lock);
  if (i >= 0) cur.held.splice(i, 1);
}

/** lockdep_set_class(lock, key): give the lock another class name. */
export function lockdep_set_class(lock: Lock, className: string): void {
  lock.lockClass = className;
}

/**
 * A lockdep map: a pseudo-lock nobody waits on, acquired and released around an operation so
 * lockdep sees the dependency (a work item's and a workqueue's completion maps; fs_reclaim).
 */
export class lockdep_map extends Lock {
  constructor(obj: number, name: string) {
    super('lockdep_map', name, obj);
  }
}

/** lock_map_acquire / lock_map_acquire_read (a recursive read): annotate only, never wait. */
export function lock_map_acquire(cur: Task, map: lockdep_map, read = false): void {
  const how = read ? 'lock_map_acquire_read' : 'lock_map_acquire';
  cur.cpu.machine.emit('lockAcquire', cur, map, how, false);
  cur.held.push({ lock: map, depth: cur.depth, how, at: cur.site });
}

/** lock_map_release. */
export function lock_map_release(cur: Task, map: lockdep_map): void {
  cur.cpu.machine.emit('lockRelease', cur, map, 'lock_map_release');
  recordReleased(cur, map);
}

/**
 * debug_check_no_locks_freed: memory holding `locks` is being freed or re-initialised; lockdep
 * complains if the running task holds any of them ("held lock freed!"). Then the locks start
 * over unlocked, as a re-initialised lock does.
 */
export function debug_check_no_locks_freed(cur: Task, locks: Lock[], why: string): void {
  cur.cpu.machine.emit('locksFreed', cur, locks, why);
}

/** spin_lock_init / mutex_init / init_rwsem on a lock that already exists (re-initialisation). */
export function lock_reinit(cur: Task, lock: Lock): void {
  debug_check_no_locks_freed(cur, [lock], `${lock.kind}_init`);
}
