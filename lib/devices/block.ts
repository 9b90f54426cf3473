/**
 * A block layer in the blk-mq shape, as far as a DMA driver feels it: requests, a hardware
 * context per submission queue with its tag set (blk_mq_get_tag sleeps while every tag is
 * taken), dispatch through the driver's ->queue_rq, BLK_STS_RESOURCE putting the request on the
 * hctx dispatch list for a later run (when a completion frees resources, SCHED_RESTART, or after
 * BLK_MQ_RESOURCE_DELAY when nothing is in flight to trigger one), and completion in one of the
 * contexts blk_mq_complete_request can pick: inline in the interrupt handler, in BLOCK_SOFTIRQ on
 * the completing CPU, or by IPI on the submitting CPU.
 *
 * Simplified: no I/O scheduler, no plugging, no merging, no timeouts; a request is one
 * physically contiguous buffer (a bio of one bvec run), the queue is re-run from kblockd only;
 * a request gives its driver tag back when it is requeued and takes a fresh one (non-blocking,
 * blk_mq_get_driver_tag) when the dispatch list is run again.
 */
import { ProgramError } from '../../scheduler';
import type { Cpu } from '../kernel/cpu';
import type { KernelBody, Machine } from '../kernel/machine';
import { try_to_wake_up } from '../kernel/sched';
import { BLOCK_SOFTIRQ, open_softirq, raise_softirq } from '../kernel/softirq';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { DECLARE_WAIT_QUEUE_HEAD, wait_event, type wait_queue_head_t } from '../kernel/wait';
import { alloc_workqueue, DECLARE_DELAYED_WORK, mod_delayed_work_on, queue_delayed_work_on, WQ_HIGHPRI, WQ_MEM_RECLAIM, type delayed_work, type workqueue_struct } from '../kernel/workqueue';

/** blk_status_t values (include/linux/blk_types.h). */
export const BLK_STS_OK = 0;
export const BLK_STS_RESOURCE = 9;
export const BLK_STS_IOERR = 10;
export const BLK_STS_DEV_RESOURCE = 13;

export const REQ_OP_READ = 0;
export const REQ_OP_WRITE = 1;

/** BLK_MQ_RESOURCE_DELAY: 3 ms before a resource-starved queue with nothing in flight runs again. */
export const BLK_MQ_RESOURCE_DELAY_NS = 3_000_000;

export type CompletionMode = 'hardirq' | 'softirq' | 'ipi';
export const COMPLETION_MODES: readonly CompletionMode[] = ['hardirq', 'softirq', 'ipi'];

// Metric names (constant strings: no building per request).
export const M_REQUESTS = 'blk.requests';
export const M_REQUEUES = 'blk.requeues';
export const M_STS_RESOURCE = 'blk.sts_resource';
export const M_BYTES = 'blk.bytes';
export const M_LATENCY_MAX = 'blk.latency_ns_max';
export const M_TAG_WAITS = 'blk.tag_waits';
export const M_INFLIGHT_PEAK = 'blk.inflight_peak';

/** Who holds a tag: a task preparing its request, the request in flight, or nobody. */
const INFLIGHT = 'inflight';
type TagOwner = Task | typeof INFLIGHT | null;

export class request {
  /** Driver tag while it holds one, else -1. */
  tag = -1;
  hctx: blk_mq_hw_ctx | null = null;
  /** rq->mq_ctx->cpu: where it was submitted (IPI completion goes back there). */
  cpu = 0;
  /** Virtual time of submission (blk_account_io_start). */
  start = 0;
  /** Times it went back on the dispatch list. */
  requeues = 0;
  /** The driver's per-request data (iod): its scatterlist, mapped count... */
  pdu: unknown = null;
  /** Called once the request ends, from the completion context. */
  end_io: ((cur: Task, rq: request, status: number) => void) | null = null;

  constructor(
    readonly op: number,
    /** First pfn of the data buffer (physically contiguous). */
    readonly pfn: number,
    /** Offset of the data in that page. */
    readonly offset: number,
    readonly bytes: number,
    /** Starting sector, for a device that keeps data. */
    readonly sector = 0,
  ) {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ProgramError(`request size must be a positive integer, got ${bytes}`);
    if (op !== REQ_OP_READ && op !== REQ_OP_WRITE) throw new ProgramError(`request op must be REQ_OP_READ or REQ_OP_WRITE, got ${op}`);
  }
}

/** What a driver supplies (struct blk_mq_ops). */
export interface blk_mq_ops {
  /** Start the request on the hardware: BLK_STS_OK, or BLK_STS_RESOURCE to be retried later. */
  queue_rq(cur: Task, hctx: blk_mq_hw_ctx, rq: request): KernelBody<number>;
  /** ->complete: the driver's completion work (unmapping) before the request ends. */
  complete(cur: Task, rq: request): KernelBody<void>;
}

/** struct blk_mq_tags of one hardware queue. */
export class blk_mq_tags {
  readonly owner: TagOwner[];
  readonly wait: wait_queue_head_t;
  nr_free: number;
  constructor(m: Machine, name: string, depth: number) {
    this.owner = new Array<TagOwner>(depth).fill(null);
    this.nr_free = depth;
    this.wait = DECLARE_WAIT_QUEUE_HEAD(m, `${name}:tags`);
  }
  /** The tasks holding tags while they prepare requests (for wait-for reports). */
  holders(): Task[] {
    const out: Task[] = [];
    for (const o of this.owner) if (o !== null && o !== INFLIGHT) out.push(o);
    return out;
  }
}

/** struct blk_mq_hw_ctx: one submission queue. */
export class blk_mq_hw_ctx {
  readonly tags: blk_mq_tags;
  /** hctx->dispatch: requests that got BLK_STS_RESOURCE, in order. */
  readonly dispatch: request[] = [];
  /** BLK_MQ_S_SCHED_RESTART: rerun the queue when a request completes. */
  restart = false;
  inflight = 0;
  readonly run_work: delayed_work;
  constructor(
    readonly q: request_queue,
    readonly queue_num: number,
    /** The CPU its run work is queued on (the first CPU mapped to it). */
    readonly cpu: number,
    depth: number,
  ) {
    this.tags = new blk_mq_tags(q.m, `${q.name}:hctx${queue_num}`, depth);
    const hctx = this;
    this.run_work = DECLARE_DELAYED_WORK(q.m, `${q.name}:hctx${queue_num}:run_work`, function blk_mq_run_work_fn(cur) {
      return blk_mq_run_dispatch(cur, hctx);
    });
  }
}

export interface QueueOptions {
  nr_hw_queues: number;
  queue_depth: number;
  completion: CompletionMode;
}

/** struct request_queue + its tag set. */
export class request_queue {
  readonly hctxs: blk_mq_hw_ctx[] = [];
  /** blk_mq_map_queue: CPU -> hardware queue. */
  readonly cpuToHctx: blk_mq_hw_ctx[] = [];
  readonly kblockd: workqueue_struct;
  readonly completion: CompletionMode;
  constructor(
    readonly m: Machine,
    readonly name: string,
    readonly ops: blk_mq_ops,
    o: QueueOptions,
  ) {
    const ncpu = m.cpus.length;
    if (!Number.isInteger(o.nr_hw_queues) || o.nr_hw_queues < 1 || o.nr_hw_queues > ncpu) throw new ProgramError(`${name}: queues must be an integer from 1 to ${ncpu} (the CPU count), got ${o.nr_hw_queues}`);
    if (!Number.isInteger(o.queue_depth) || o.queue_depth < 1 || o.queue_depth > 65536) throw new ProgramError(`${name}: queueDepth must be an integer from 1 to 65536, got ${o.queue_depth}`);
    if (!COMPLETION_MODES.includes(o.completion)) throw new ProgramError(`${name}: completion must be one of ${COMPLETION_MODES.join(', ')}, got ${String(o.completion)}`);
    this.completion = o.completion;
    // blk_mq_map_queues: CPUs spread evenly over the queues, in order.
    for (let c = 0; c < ncpu; c++) {
      const qn = Math.floor((c * o.nr_hw_queues) / ncpu);
      if (this.hctxs[qn] === undefined) this.hctxs[qn] = new blk_mq_hw_ctx(this, qn, c, o.queue_depth);
      this.cpuToHctx.push(this.hctxs[qn]);
    }
    this.kblockd = kblockd_workqueue(m);
    if (o.completion === 'softirq') blk_softirq_init(m);
  }

  map(cpu: number): blk_mq_hw_ctx {
    return this.cpuToHctx[cpu];
  }
}

const kblockd = new WeakMap<Machine, workqueue_struct>();

/** kblockd: WQ_MEM_RECLAIM | WQ_HIGHPRI, one per machine. */
export function kblockd_workqueue(m: Machine): workqueue_struct {
  let wq = kblockd.get(m);
  if (wq === undefined) {
    wq = alloc_workqueue(m, 'kblockd', WQ_MEM_RECLAIM | WQ_HIGHPRI);
    kblockd.set(m, wq);
  }
  return wq;
}

// ---- tags ----

function takeTag(tags: blk_mq_tags, owner: TagOwner): number {
  const t = tags.owner.indexOf(null);
  if (t >= 0) {
    tags.owner[t] = owner;
    tags.nr_free--;
  }
  return t;
}

/** blk_mq_get_tag: a free tag of the hctx, sleeping (uninterruptibly) until one is free. */
export function* blk_mq_get_tag(cur: Task, hctx: blk_mq_hw_ctx): KernelBody<number> {
  return yield* fn(cur, 'blk_mq_get_tag', getTag(cur, hctx));
}

function* getTag(cur: Task, hctx: blk_mq_hw_ctx): KernelBody<number> {
  const tags = hctx.tags;
  let waited = false;
  for (;;) {
    const t = takeTag(tags, cur);
    if (t >= 0) return t;
    if (!waited) {
      waited = true;
      cur.thread.sim.count(M_TAG_WAITS, 1);
    }
    yield* wait_event(cur, tags.wait, () => tags.nr_free > 0, () => tags.holders());
  }
}

/** blk_mq_get_driver_tag for a requeued request: never sleeps; -1 when none is free. */
export function blk_mq_get_driver_tag(hctx: blk_mq_hw_ctx): number {
  return takeTag(hctx.tags, INFLIGHT);
}

/** blk_mq_put_tag: free a tag and wake its waiters (any context). */
export function blk_mq_put_tag(hctx: blk_mq_hw_ctx, tag: number): void {
  const tags = hctx.tags;
  if (tags.owner[tag] === null) throw new Error(`${hctx.q.name}: tag ${tag} freed twice`);
  tags.owner[tag] = null;
  tags.nr_free++;
  for (const t of tags.wait.waiters) try_to_wake_up(t);
}

// ---- submission and dispatch ----

/**
 * blk_mq_submit_bio for a prepared request: a tag (may sleep), then ->queue_rq. A request that
 * gets BLK_STS_RESOURCE is requeued and finishes later; the submitter does not wait for it.
 */
export function* blk_mq_submit_request(cur: Task, q: request_queue, rq: request): KernelBody<void> {
  yield* fn(cur, 'blk_mq_submit_bio', (function* () {
    const hctx = q.map(cur.cpu.id);
    rq.cpu = cur.cpu.id;
    rq.hctx = hctx;
    rq.start = cur.thread.sim.now();
    cur.thread.sim.count(M_REQUESTS, 1);
    rq.tag = yield* blk_mq_get_tag(cur, hctx);
    // Requests queued earlier go first (blk_mq_run_hw_queue would find them on the list).
    if (hctx.dispatch.length > 0) {
      blk_mq_release_tag(hctx, rq);
      hctx.dispatch.push(rq);
      yield* blk_mq_run_hw_queue(cur, hctx, 0);
      return;
    }
    yield* blk_mq_dispatch_one(cur, hctx, rq);
  })());
}

function blk_mq_release_tag(hctx: blk_mq_hw_ctx, rq: request): void {
  const tag = rq.tag;
  rq.tag = -1;
  blk_mq_put_tag(hctx, tag);
}

/**
 * blk_mq_dispatch_rq_list for one request that holds a tag. Returns false when the driver said
 * BLK_STS_RESOURCE (the request is back at the head of the dispatch list).
 */
function* blk_mq_dispatch_one(cur: Task, hctx: blk_mq_hw_ctx, rq: request): KernelBody<boolean> {
  const sts = yield* hctx.q.ops.queue_rq(cur, hctx, rq);
  const sim = cur.thread.sim;
  if (sts === BLK_STS_OK) {
    hctx.tags.owner[rq.tag] = INFLIGHT;
    hctx.inflight++;
    sim.peak(M_INFLIGHT_PEAK, hctx.inflight);
    return true;
  }
  if (sts !== BLK_STS_RESOURCE && sts !== BLK_STS_DEV_RESOURCE) throw new ProgramError(`${hctx.q.name}: queue_rq returned status ${sts}, which this model does not handle`);
  // blk_mq_handle_dev_resource: back on the list, driver tag released.
  sim.count(M_STS_RESOURCE, 1);
  sim.count(M_REQUEUES, 1);
  rq.requeues++;
  blk_mq_release_tag(hctx, rq);
  hctx.dispatch.unshift(rq);
  // Nothing in flight will complete and restart the queue: run it again after a delay.
  if (hctx.inflight === 0) yield* blk_mq_run_hw_queue(cur, hctx, BLK_MQ_RESOURCE_DELAY_NS);
  else hctx.restart = true;
  return false;
}

/** blk_mq_run_hw_queue(async) / blk_mq_delay_run_hw_queue: the hctx's run work on kblockd. */
export function* blk_mq_run_hw_queue(cur: Task, hctx: blk_mq_hw_ctx, delayNs: number): KernelBody<void> {
  if (delayNs === 0) yield* mod_delayed_work_on(cur, hctx.cpu, hctx.q.kblockd, hctx.run_work, 0);
  else yield* queue_delayed_work_on(cur, hctx.cpu, hctx.q.kblockd, hctx.run_work, delayNs);
}

/** The run work: dispatch the list while tags and the driver's resources last. */
function* blk_mq_run_dispatch(cur: Task, hctx: blk_mq_hw_ctx): KernelBody<void> {
  while (hctx.dispatch.length > 0) {
    const rq = hctx.dispatch[0];
    const tag = blk_mq_get_driver_tag(hctx);
    if (tag < 0) {
      hctx.restart = true; // a completion frees a tag and reruns us
      return;
    }
    hctx.dispatch.shift();
    rq.tag = tag;
    if (!(yield* blk_mq_dispatch_one(cur, hctx, rq))) return;
  }
}

// ---- completion ----

/**
 * blk_mq_complete_request from the driver's interrupt handler: complete here (hardirq), in
 * BLOCK_SOFTIRQ on this CPU, or on the submitting CPU by IPI (QUEUE_FLAG_SAME_FORCE).
 */
export function* blk_mq_complete_request(cur: Task, rq: request): KernelBody<void> {
  const q = rq.hctx!.q;
  switch (q.completion) {
    case 'hardirq':
      yield* __blk_mq_complete(cur, rq);
      return;
    case 'softirq':
      softirqState(q.m)[cur.cpu.id].push(rq);
      yield* raise_softirq(cur, BLOCK_SOFTIRQ);
      return;
    case 'ipi':
      if (rq.cpu === cur.cpu.id) yield* __blk_mq_complete(cur, rq);
      else blk_mq_complete_send_ipi(q.m.cpu(rq.cpu), rq);
      return;
  }
}

/**
 * blk_mq_complete_send_ipi -> __smp_call_single_queue: an asynchronous call on the submitting
 * CPU. Queued directly on that CPU's call-function list: smp_call_function_single would (rightly)
 * warn when called from the interrupt handler, and the model has no _async form yet.
 */
function blk_mq_complete_send_ipi(target: Cpu, rq: request): void {
  target.csdQueue.push({ fn: (c: Task) => __blk_mq_complete(c, rq), done: false, cpu: target });
  if (target.ipi !== null) target.machine.sim.raise(target.ipi);
}

/** ->complete, then blk_mq_end_request: account, end_io, free the tag, restart the queue. */
function* __blk_mq_complete(cur: Task, rq: request): KernelBody<void> {
  const hctx = rq.hctx!;
  yield* hctx.q.ops.complete(cur, rq);
  const sim = cur.thread.sim;
  sim.count(M_BYTES, rq.bytes);
  sim.peak(M_LATENCY_MAX, sim.now() - rq.start);
  hctx.inflight--;
  blk_mq_release_tag(hctx, rq);
  rq.end_io?.(cur, rq, BLK_STS_OK);
  // blk_mq_sched_restart: the completion freed what a requeued request was waiting for.
  if (hctx.restart || hctx.dispatch.length > 0) {
    hctx.restart = false;
    yield* blk_mq_run_hw_queue(cur, hctx, 0);
  }
}

const softirqLists = new WeakMap<Machine, request[][]>();

function softirqState(m: Machine): request[][] {
  const l = softirqLists.get(m);
  if (l === undefined) throw new Error('BLOCK_SOFTIRQ not opened');
  return l;
}

/** blk_softirq_init: the per-CPU blk_cpu_done lists and the BLOCK_SOFTIRQ action. */
function blk_softirq_init(m: Machine): void {
  if (softirqLists.has(m)) return;
  const lists = m.cpus.map(() => [] as request[]);
  softirqLists.set(m, lists);
  open_softirq(m, BLOCK_SOFTIRQ, function* blk_done_softirq(cur) {
    const list = lists[cur.cpu.id];
    while (list.length > 0) yield* __blk_mq_complete(cur, list.shift()!);
  });
}
