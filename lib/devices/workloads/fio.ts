/**
 * fio-like workloads over an NVMe device (lib/devices/nvme.ts): `fio` runs per-CPU submitter
 * tasks with a size pattern and an I/O depth, and nvme_write_job is one write job on the calling
 * task. They are the scenarios' load, not a kernel part.
 */
import { ProgramError } from '../../../scheduler';
import { GFP_KERNEL } from '../../kernel/gfp';
import type { KernelBody, Machine } from '../../kernel/machine';
import { schedule_timeout, try_to_wake_up } from '../../kernel/sched';
import type { Task } from '../../kernel/task';
import { DECLARE_WAIT_QUEUE_HEAD, wait_event, type wait_queue_head_t } from '../../kernel/wait';
import { mm } from '../../mm/mm';
import { alloc_pages, __free_pages } from '../../mm/page-alloc';
import { get_order } from '../../kernel/sizes';
import { REQ_OP_READ, REQ_OP_WRITE, request } from '../block';
import { nonNeg, type NvmeDevice } from '../nvme';

export type FioRw = 'read' | 'write' | 'randrw';

export interface FioOptions {
  /** CPUs to run jobs on (default: every CPU). */
  cpus?: number[];
  /** Jobs per CPU (default 1). */
  jobs?: number;
  /** Requests in flight per job (default 32). */
  iodepth?: number;
  /** Requests per job (default 64). */
  requests?: number;
  rw?: FioRw;
  /** Request sizes: bytes, or [bytes, weight] pairs (default 4 KiB). */
  sizes?: (number | [number, number])[];
  /** CPU time between submissions (default 500 ns). */
  thinkNs?: number;
}

/**
 * A deterministic weighted request-size sequence (smooth weighted round robin): over every
 * `total weight` requests each size appears exactly its weight's times, spread out. A pure
 * function of the request index, so schedules stay what the strategy chose.
 */
/** fio's size mix from a scenario parameter: "4096*4,65536*2,131072" (bytes, optional integer weight). */
export function parseSizes(s: string): [number, number][] {
  return s.split(',').map((part) => {
    const [size, w] = part.trim().split('*');
    const out: [number, number] = [Number(size), w === undefined ? 1 : Number(w)];
    if (!Number.isSafeInteger(out[0]) || out[0] <= 0 || !Number.isInteger(out[1]) || out[1] < 1) throw new ProgramError(`sizes: bad entry '${part}' (want bytes or bytes*weight)`);
    return out;
  });
}

export function sizePattern(sizes: (number | [number, number])[]): number[] {
  if (!Array.isArray(sizes) || sizes.length === 0) throw new ProgramError('fio sizes must be a non-empty list');
  const entries = sizes.map((s) => (Array.isArray(s) ? s : ([s, 1] as [number, number])));
  let total = 0;
  for (const [size, w] of entries) {
    if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`fio: request size must be a positive integer, got ${size}`);
    if (!Number.isInteger(w) || w < 1) throw new ProgramError(`fio: a size weight must be a positive integer, got ${w}`);
    total += w;
  }
  if (total > 4096) throw new ProgramError(`fio: size weights add up to ${total}, more than 4096`);
  const current = entries.map(() => 0);
  const out: number[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let i = 0; i < entries.length; i++) {
      current[i] += entries[i][1];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    out.push(entries[best][0]);
  }
  return out;
}

export class FioJob {
  inflight = 0;
  submitted = 0;
  completed = 0;
  requeued = 0;
  /** Virtual time the job finished, or -1. */
  finishedAt = -1;
  readonly wq: wait_queue_head_t;
  task: Task | null = null;
  constructor(
    m: Machine,
    readonly comm: string,
    readonly cpu: number,
  ) {
    this.wq = DECLARE_WAIT_QUEUE_HEAD(m, `${comm}:iodepth`);
  }
}

/**
 * fio --ioengine=libaio --direct=1: one submitter task per job, keeping `iodepth` requests in
 * flight from buffers it allocated up front, until `requests` have completed.
 */
export function fio(m: Machine, nvme: NvmeDevice, o: FioOptions = {}): FioJob[] {
  const known = ['cpus', 'jobs', 'iodepth', 'requests', 'rw', 'sizes', 'thinkNs'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new ProgramError(`unknown fio option '${k}' (known: ${known.join(', ')})`);
  const cpus = o.cpus ?? m.cpus.map((c) => c.id);
  const jobs = o.jobs ?? 1;
  const iodepth = o.iodepth ?? 32;
  const requests = o.requests ?? 64;
  const rw = o.rw ?? 'write';
  const thinkNs = nonNeg('fio', 'thinkNs', o.thinkNs ?? 500);
  for (const [what, v] of [['jobs', jobs], ['iodepth', iodepth], ['requests', requests]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ProgramError(`fio: ${what} must be a positive integer, got ${v}`);
  }
  if (rw !== 'read' && rw !== 'write' && rw !== 'randrw') throw new ProgramError(`fio: rw must be read, write or randrw, got ${String(rw)}`);
  const pattern = sizePattern(o.sizes ?? [4096]);
  const maxSize = Math.max(...pattern);
  const out: FioJob[] = [];
  for (const c of cpus) {
    m.cpu(c);
    for (let j = 0; j < jobs; j++) {
      const job = new FioJob(m, jobs === 1 ? `fio/${c}` : `fio/${c}.${j}`, c);
      out.push(job);
      job.task = m.process(job.comm, c, (cur) => fioJob(cur, nvme, job, { iodepth, requests, rw, pattern, maxSize, thinkNs, seq: out.length - 1 }));
    }
  }
  return out;
}

function* fioJob(cur: Task, nvme: NvmeDevice, job: FioJob, o: { iodepth: number; requests: number; rw: FioRw; pattern: number[]; maxSize: number; thinkNs: number; seq: number }): KernelBody<void> {
  const pageSize = mm(cur.cpu.machine).phys.pageSize;
  const order = get_order(o.maxSize, pageSize);
  const bufs: number[] = [];
  for (let i = 0; i < o.iodepth; i++) {
    const pfn = yield* alloc_pages(cur, GFP_KERNEL, order);
    if (pfn < 0) break;
    bufs.push(pfn);
  }
  if (bufs.length === 0) return;
  const free = bufs.map((_, i) => i);
  const sectorsPerJob = Math.ceil((o.requests * o.maxSize) / 512);
  let sector = o.seq * sectorsPerJob;
  for (let i = 0; i < o.requests; i++) {
    yield* wait_event(cur, job.wq, () => free.length > 0);
    const size = o.pattern[i % o.pattern.length];
    const op = o.rw === 'write' || (o.rw === 'randrw' && i % 2 === 0) ? REQ_OP_WRITE : REQ_OP_READ;
    const b = free.pop()!;
    const rq = new request(op, bufs[b], 0, size, sector);
    sector += Math.ceil(size / 512);
    rq.end_io = (_c, r) => {
      job.inflight--;
      job.completed++;
      job.requeued += r.requeues;
      free.push(b);
      for (const t of job.wq.waiters) try_to_wake_up(t);
    };
    job.inflight++;
    job.submitted++;
    yield cur.thread.work(o.thinkNs);
    yield* nvme.submit(cur, rq);
  }
  yield* wait_event(cur, job.wq, () => job.inflight === 0);
  job.finishedAt = cur.thread.sim.now();
  for (const pfn of bufs) __free_pages(cur, pfn, order);
}

export interface WriteJobOptions {
  /** Buffers allocated up front and kept in flight (fio's iodepth). */
  iodepth: number;
  /** Requests to complete. */
  requests: number;
  /** Bytes per request. */
  size: number;
  /** This job's index among the jobs: its buffers and its disk region. */
  first: number;
  /** GFP of buffer k (default GFP_KERNEL): a zone choice decides which ones bounce. */
  gfpOf?: (k: number) => number;
  /** CPU time to build each request before submitting it. */
  thinkNs?: number;
  /** fio --rate_iops: sleep this long after each submission. */
  gapNs?: number;
}

/**
 * A fio-like write job on the calling task: `iodepth` buffers from the page allocator, each
 * resubmitted when its request completes, until `requests` have completed; then the buffers go back.
 */
export function* nvme_write_job(cur: Task, nvme: NvmeDevice, o: WriteJobOptions): KernelBody<void> {
  const m = cur.cpu.machine;
  const order = get_order(o.size, 4096);
  const bufs: number[] = [];
  for (let k = 0; k < o.iodepth; k++) {
    const pfn = yield* alloc_pages(cur, o.gfpOf ? o.gfpOf(o.first + k) : GFP_KERNEL, order);
    if (pfn < 0) throw new ProgramError(`${cur.comm}: no memory for I/O buffer ${k} (order ${order}): raise the memory size`);
    bufs.push(pfn);
  }
  const wq = DECLARE_WAIT_QUEUE_HEAD(m, `${cur.comm}:iodepth`);
  const free = bufs.map((_, i) => i);
  let inflight = 0;
  let sector = o.first * (o.size / 512) * o.requests;
  for (let i = 0; i < o.requests; i++) {
    yield* wait_event(cur, wq, () => free.length > 0);
    const b = free.shift()!;
    const rq = new request(REQ_OP_WRITE, bufs[b], 0, o.size, sector);
    sector += o.size / 512;
    rq.end_io = () => {
      inflight--;
      free.push(b);
      for (const t of wq.waiters) try_to_wake_up(t);
    };
    inflight++;
    if (o.thinkNs) yield cur.thread.work(o.thinkNs);
    yield* nvme.submit(cur, rq);
    if (o.gapNs) yield* schedule_timeout(cur, o.gapNs, { kind: 'wait_queue', what: 'rate_iops gap' });
  }
  yield* wait_event(cur, wq, () => inflight === 0);
  for (const pfn of bufs) __free_pages(cur, pfn, order);
}
