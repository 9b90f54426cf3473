/**
 * A swap device with a driver's limits, for tests and scenarios of reclaim recursion: a fixed
 * number of tags (blk-mq's per-queue tag set; a submitter sleeps until one is free) and,
 * optionally, a submission mutex the driver holds across submission. A scenario's own I/O path
 * uses the same tags (blk_mq_get_tag, then its allocations, then dispatch), so "the submitter
 * holds the last tag and allocates with GFP_KERNEL" is transcribed as it happens in a driver.
 *
 * The tags' owners are known: a task owns a tag from blk_mq_get_tag until dispatch, the request
 * owns it while in flight. A task waiting for a tag names the owning tasks, so a cycle through
 * the allocator is a wait-for cycle the deadlock detector sees.
 */
import type { KernelBody, Machine } from '../kernel/machine';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock, type mutex } from '../kernel/mutex';
import { try_to_wake_up } from '../kernel/sched';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { DECLARE_WAIT_QUEUE_HEAD, wait_event, type wait_queue_head_t } from '../kernel/wait';
import type { IoBackend } from './swap';

export interface TaggedSwapOptions {
  name?: string;
  /** Tags of the queue (default 4). */
  tags?: number;
  /** Swap slots (default: unlimited). */
  capacity?: number;
  /** Completion latency (default 100 us). */
  latencyNs?: number;
  /** The driver holds a submission mutex across submission (default false). */
  submitLock?: boolean;
}

const INFLIGHT = 'inflight';

export class TaggedSwapDevice implements IoBackend {
  readonly name: string;
  readonly capacity: number;
  readonly latencyNs: number;
  /** Who holds each tag: a task preparing a request, the request in flight, or nobody. */
  readonly tagOwner: (Task | typeof INFLIGHT | null)[];
  readonly tagWait: wait_queue_head_t;
  readonly submitLock: mutex | null;
  /** Writes completed, a metric for tests. */
  completed = 0;

  constructor(
    private readonly m: Machine,
    opts: TaggedSwapOptions = {},
  ) {
    this.name = opts.name ?? 'swapdev';
    const tags = opts.tags ?? 4;
    if (!(Number.isInteger(tags) && tags >= 1)) throw new Error(`${this.name}: tags must be a positive integer, got ${tags}`);
    this.capacity = opts.capacity ?? Infinity;
    this.latencyNs = opts.latencyNs ?? 100_000;
    this.tagOwner = new Array(tags).fill(null);
    this.tagWait = DECLARE_WAIT_QUEUE_HEAD(m, `${this.name}:tags`);
    this.submitLock = opts.submitLock ? DEFINE_MUTEX(m, `&${this.name}->submit_mutex`) : null;
  }

  get freeTags(): number {
    return this.tagOwner.filter((o) => o === null).length;
  }

  /** blk_mq_get_tag: a free tag, sleeping (uninterruptibly) until one is. */
  *blk_mq_get_tag(cur: Task): KernelBody<number> {
    return yield* fn(cur, 'blk_mq_get_tag', this.getTag(cur));
  }

  private *getTag(cur: Task): KernelBody<number> {
    const owners = () => this.tagOwner.filter((o): o is Task => o !== null && o !== INFLIGHT);
    for (;;) {
      const t = this.tagOwner.indexOf(null);
      if (t >= 0) {
        this.tagOwner[t] = cur;
        return t;
      }
      yield* wait_event(cur, this.tagWait, () => this.tagOwner.includes(null), owners);
    }
  }

  /** The request of `tag` goes to the device; it completes after the latency and frees the tag. */
  dispatch(tag: number, done?: () => void): void {
    this.tagOwner[tag] = INFLIGHT;
    this.m.sim.after(this.latencyNs, () => {
      this.completed++;
      done?.();
      this.blk_mq_put_tag(tag);
    }, `${this.name}:complete`);
  }

  /** blk_mq_put_tag: free a tag and wake its waiters (callable from any context). */
  blk_mq_put_tag(tag: number): void {
    this.tagOwner[tag] = null;
    for (const t of this.tagWait.waiters) try_to_wake_up(t);
  }

  *writepage(cur: Task, _pfn: number, done: () => void): KernelBody<boolean> {
    const lock = this.submitLock;
    if (lock !== null) yield* mutex_lock(cur, lock);
    const tag = yield* this.blk_mq_get_tag(cur);
    this.dispatch(tag, done);
    if (lock !== null) yield* mutex_unlock(cur, lock);
    return true;
  }
}
