/**
 * Mempools (mm/mempool.c): a reserve of pre-allocated elements that guarantees forward
 * progress to an I/O path. mempool_alloc first tries the allocator without direct reclaim or
 * I/O (and without reserves or warnings), then takes a reserved element, then retries with the
 * caller's full GFP, and finally - if it may sleep - waits for an element to come back
 * (io_schedule_timeout(5*HZ)) and starts over. mempool_free refills the reserve first.
 */
import { __GFP_DIRECT_RECLAIM, __GFP_IO, __GFP_NOMEMALLOC, __GFP_NORETRY, __GFP_NOWARN, __GFP_ZERO } from '../kernel/gfp';
import { might_alloc } from '../kernel/fs-reclaim';
import { WARN_ON_ONCE } from '../kernel/bug';
import type { KernelBody, Machine } from '../kernel/machine';
import { armTimeout, set_task_state, sleep, try_to_wake_up } from '../kernel/sched';
import { DEFINE_SPINLOCK, spin_lock_irqsave, spin_unlock_irqrestore, type spinlock_t } from '../kernel/spinlock';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { alloc_pages, __free_pages } from './page-alloc';
import { kfree, kmalloc } from './slab';

export type MempoolAlloc<T> = (cur: Task, gfp: number) => KernelBody<T | null>;
/** Gives an element back to its allocator; may be a generator (kfree), which runs to its end. */
export type MempoolFree<T> = (cur: Task, element: T) => void | KernelBody<void>;

export class mempool_t<T> {
  readonly elements: T[] = [];
  readonly lock: spinlock_t;
  /** Tasks sleeping for an element to come back. */
  readonly waiters: Task[] = [];
  constructor(
    m: Machine,
    readonly name: string,
    readonly min_nr: number,
    readonly alloc: MempoolAlloc<T>,
    readonly free: MempoolFree<T>,
  ) {
    this.lock = DEFINE_SPINLOCK(m, `&${name}->lock`);
  }
  get curr_nr(): number {
    return this.elements.length;
  }
}

/** mempool_create: fill the reserve with `min_nr` elements (GFP_KERNEL upstream: a caller's gfp here). Null if that fails. */
export function* mempool_create<T>(cur: Task, name: string, min_nr: number, alloc: MempoolAlloc<T>, free: MempoolFree<T>, gfp: number): KernelBody<mempool_t<T> | null> {
  if (!(Number.isInteger(min_nr) && min_nr >= 1)) throw new Error(`mempool_create(${name}): min_nr must be a positive integer, got ${min_nr}`);
  const pool = new mempool_t(cur.cpu.machine, name, min_nr, alloc, free);
  while (pool.elements.length < min_nr) {
    const e = yield* alloc(cur, gfp);
    if (e === null) {
      for (const x of pool.elements) yield* freeElement(cur, pool, x);
      return null;
    }
    pool.elements.push(e);
  }
  return pool;
}

/** mempool_create_page_pool: elements are blocks of 2^order pages (their first pfn). */
export function mempool_create_page_pool(cur: Task, min_nr: number, order: number, gfp: number): KernelBody<mempool_t<number> | null> {
  const alloc: MempoolAlloc<number> = function* (c, g) {
    const pfn = yield* alloc_pages(c, g, order);
    return pfn < 0 ? null : pfn;
  };
  return mempool_create(cur, `page_pool-o${order}`, min_nr, alloc, (c, pfn) => __free_pages(c, pfn, order), gfp);
}

/** mempool_alloc: an element, or null only when the caller cannot sleep. */
export function* mempool_alloc<T>(cur: Task, pool: mempool_t<T>, gfp: number): KernelBody<T | null> {
  return yield* fn(cur, 'mempool_alloc', poolAlloc(cur, pool, gfp));
}

/** io_schedule_timeout(5*HZ) in mempool_alloc. */
const MEMPOOL_WAIT_NS = 5_000_000_000;

function* poolAlloc<T>(cur: Task, pool: mempool_t<T>, gfpIn: number): KernelBody<T | null> {
  WARN_ON_ONCE(cur, (gfpIn & __GFP_ZERO) !== 0, 'mempool_alloc with __GFP_ZERO');
  yield* might_alloc(cur, gfpIn, 'mempool_alloc');
  const gfp = gfpIn | __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN;
  let gfpTemp = gfp & ~(__GFP_DIRECT_RECLAIM | __GFP_IO);
  for (;;) {
    const e = yield* pool.alloc(cur, gfpTemp);
    if (e !== null) return e;
    const flags = yield* spin_lock_irqsave(cur, pool.lock);
    if (pool.elements.length > 0) {
      const r = pool.elements.pop() as T;
      yield* spin_unlock_irqrestore(cur, pool.lock, flags);
      cur.cpu.machine.sim.count('mm.mempool_reserve_used');
      return r;
    }
    // The reserve is empty: try once more with the caller's full GFP before waiting.
    if (gfpTemp !== gfp) {
      yield* spin_unlock_irqrestore(cur, pool.lock, flags);
      gfpTemp = gfp;
      continue;
    }
    if ((gfp & __GFP_DIRECT_RECLAIM) === 0) {
      yield* spin_unlock_irqrestore(cur, pool.lock, flags);
      return null;
    }
    // prepare_to_wait under the pool lock, so a mempool_free after the unlock wakes us.
    pool.waiters.push(cur);
    set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
    yield* spin_unlock_irqrestore(cur, pool.lock, flags);
    armTimeout(cur, MEMPOOL_WAIT_NS, 'mempool_alloc');
    yield* sleep(cur, { kind: 'wait_queue', what: `${pool.name}->wait` }, 'io_schedule_timeout');
    const i = pool.waiters.indexOf(cur);
    if (i >= 0) pool.waiters.splice(i, 1);
  }
}

/** mempool_free: refill the reserve if it is short, else give the element back to its allocator. */
export function* mempool_free<T>(cur: Task, element: T, pool: mempool_t<T>): KernelBody<void> {
  if (pool.elements.length < pool.min_nr) {
    const flags = yield* spin_lock_irqsave(cur, pool.lock);
    if (pool.elements.length < pool.min_nr) {
      pool.elements.push(element);
      yield* spin_unlock_irqrestore(cur, pool.lock, flags);
      for (const t of pool.waiters) try_to_wake_up(t);
      return;
    }
    yield* spin_unlock_irqrestore(cur, pool.lock, flags);
  }
  yield* freeElement(cur, pool, element);
}

function* freeElement<T>(cur: Task, pool: mempool_t<T>, element: T): KernelBody<void> {
  const r = pool.free(cur, element);
  if (r !== undefined) yield* r;
}

/** mempool_create_kmalloc_pool: elements are kmalloc'ed objects of `size` bytes (their addresses). */
export function mempool_create_kmalloc_pool(cur: Task, min_nr: number, size: number, gfp: number): KernelBody<mempool_t<number> | null> {
  const alloc: MempoolAlloc<number> = function* (c, g) {
    const p = yield* kmalloc(c, size, g);
    return p === 0 ? null : p;
  };
  return mempool_create(cur, `kmalloc_pool-${size}`, min_nr, alloc, (c, p) => kfree(c, p), gfp);
}
