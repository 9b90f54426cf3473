/**
 * A counting resource (semaphore) with FIFO hand-over: the generic building block for "N
 * slots" (request tags, a capacity-limited pool, a lock). Acquire and release are native engine
 * ops — visible steps on the resource's shared object — so using one costs no helper generator:
 *
 *   yield res.acquire(t);   // or yield t.acquire(res)
 *   ...
 *   yield res.release(t);
 *
 * Release hands the unit straight to the first waiter, which continues no earlier than the
 * releaser's clock; a waiter is blocked (and interruptible as its thread is) meanwhile.
 */
import type { Engine } from './engine';
import { ProgramError } from './errors';
import type { Op } from './ops';
import type { Thread } from './thread';
import type { Waitable } from './waitable';

export class Resource {
  free: number;
  readonly obj: number;
  /** Waiters for the hand-over, FIFO. */
  readonly queue: Waitable;
  /**
   * Told, at the release step itself, which waiter (thread and frame depth) the unit went to:
   * the layer above can record the new owner before the waiter next runs.
   */
  onHandover: ((t: Thread, depth: number) => void) | null = null;

  constructor(
    sim: Engine,
    readonly name: string,
    readonly capacity: number,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new ProgramError(`resource ${name}: capacity must be a positive integer, got ${capacity}`);
    this.free = capacity;
    this.obj = sim.object(name);
    this.queue = sim.waitable(name);
  }

  get waiting(): number {
    return this.queue.length;
  }

  acquire(t: Thread): Op {
    return t.acquire(this);
  }

  release(t: Thread): Op {
    return t.release(this);
  }
}
