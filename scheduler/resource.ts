/**
 * A counting resource (semaphore) with FIFO hand-over: the generic building block for "N
 * slots" (request tags, a capacity-limited pool). Release hands the unit straight to the first
 * waiter, which continues no earlier than the releaser's clock. Both ends are visible steps.
 */
import type { Engine } from './engine';
import type { Thread } from './thread';
import type { Waitable } from './waitable';

export class Resource {
  free: number;
  readonly obj: number;
  private readonly queue: Waitable;

  constructor(
    sim: Engine,
    readonly name: string,
    readonly capacity: number,
  ) {
    this.free = capacity;
    this.obj = sim.object(name);
    this.queue = sim.waitable(name);
  }

  get waiting(): number {
    return this.queue.length;
  }

  *acquire(t: Thread): Generator<unknown, void, unknown> {
    yield t.write(this.obj);
    if (this.free > 0) {
      this.free--;
      return;
    }
    yield t.block(this.queue); // woken by release with the unit handed over
  }

  *release(t: Thread): Generator<unknown, void, unknown> {
    yield t.write(this.obj);
    if (t.wake(this.queue) === null) this.free++;
  }
}
