/**
 * An asynchronous event that interrupts a target thread: the engine-level shape of an IRQ.
 * It is raised (by a thread, a timer or the program), stays pending (further raises coalesce,
 * like a level in a pending register) and is delivered at a point the exploration picks:
 * its handler then runs as a nested frame on the target thread, on the target's clock.
 */
import type { Thread } from './thread';

export interface InterruptSpec {
  /** Name for reports ("nvme0q1", "timer", "IPI"). */
  name: string;
  /** The thread it lands on; may be changed later with Engine.retarget. */
  target: Thread;
  /** The handler body, run nested on the target thread. */
  handler: (t: Thread, src: InterruptSource) => Generator<unknown, unknown, unknown>;
  /** Extra delivery condition on top of the target being interruptible. */
  canDeliver?: (t: Thread) => boolean;
  /**
   * The shared objects canDeliver reads (DPOR footprint). Without it a canDeliver condition
   * makes every step of the target, and every raise, depend on every other step.
   */
  reads?: readonly number[];
  /**
   * Hardware masks further interrupts on entry and restores the interrupted state on return.
   * Default true: the handler starts with t.interruptible = false.
   */
  masks?: boolean;
}

export class InterruptSource {
  pending = false;
  raiseTime = 0;
  /** Raises while already pending (coalesced). */
  coalesced = 0;
  delivered = 0;
  readonly masks: boolean;
  readonly canDeliver: ((t: Thread) => boolean) | undefined;
  readonly reads: readonly number[] | null;
  readonly handler: InterruptSpec['handler'];
  readonly name: string;
  target: Thread;

  constructor(
    readonly id: number,
    spec: InterruptSpec,
  ) {
    this.name = spec.name;
    this.target = spec.target;
    this.handler = spec.handler;
    this.canDeliver = spec.canDeliver;
    this.reads = spec.reads ?? null;
    this.masks = spec.masks !== false;
  }
}
