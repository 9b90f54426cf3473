/**
 * A waitable: something threads block on (a lock's wait queue, a completion, a wait queue
 * head). Waiters are kept FIFO; wake-one takes the head unless the caller asks the choice
 * point to pick (Engine.wakeChoice). The queue holds frames, not threads, so a frame
 * interrupted while blocked can still be woken underneath its interrupt handler.
 */
import { Fifo } from './fifo';
import type { Frame } from './thread';

export class Waitable {
  readonly waiters = new Fifo<Frame>();
  constructor(
    readonly id: number,
    readonly name: string,
  ) {}

  get length(): number {
    return this.waiters.length;
  }

  /** Thread ids of the waiters in FIFO order (for reports and wait-for graphs). */
  waiterIds(): number[] {
    return this.waiters.toArray().map((f) => f.thread.id);
  }
}
