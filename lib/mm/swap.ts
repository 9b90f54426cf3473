/**
 * The block devices reclaim writes through: the swap device (anonymous pages) and the backing
 * device of the page cache (dirty file pages). An interface, so a driver model implements it:
 * the NVMe-like device of lib/devices does, and the tests use TaggedSwapDevice.
 *
 * Reclaim only *submits* (swap_writepage -> submit_bio): global reclaim never waits for the
 * write to finish (docs/kernel-facts.md §3.3). What it can wait on is the submission itself: a driver tag,
 * a driver lock, a mapping resource. That is how an allocation made in the I/O path waits on
 * itself.
 */
import type { KernelBody, Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';

export interface IoBackend {
  readonly name: string;
  /** Pages it can hold (swap slots); Infinity for a filesystem's device. */
  readonly capacity: number;
  /**
   * Submit the write of one page. May sleep (tags, driver locks, allocations of its own).
   * Returns false when submission failed (the page stays where it was); otherwise `done` runs
   * once the write completes, from whatever context completes I/O (an interrupt, a timer).
   */
  writepage(cur: Task, pfn: number, done: () => void): KernelBody<boolean>;
}

/**
 * A device that never blocks submission and completes every write after `latencyNs`: the
 * default backing device of the page cache, and a swap device without driver limits.
 */
export class IdealDisk implements IoBackend {
  constructor(
    private readonly m: Machine,
    readonly name = 'vda',
    readonly capacity = Infinity,
    /** Completion latency (default 100 us: a fast SSD write). */
    private readonly latencyNs = 100_000,
    /** CPU time to build and submit the bio. */
    private readonly submitNs = 2_000,
  ) {}

  *writepage(cur: Task, _pfn: number, done: () => void): KernelBody<boolean> {
    yield cur.thread.work(this.submitNs);
    this.m.sim.after(this.latencyNs, done, `${this.name}:complete`);
    return true;
  }
}
