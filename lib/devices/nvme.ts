/**
 * An NVMe-like PCIe SSD (drivers/nvme/host/pci.c, as far as DMA sees it): a 64-bit DMA master
 * with NVMe's min_align_mask (0xfff, so bounce buffers keep the low 12 address bits), one
 * submission/completion queue pair per CPU by default (or fewer, shared), a tag per queue slot,
 * and one interrupt vector per queue. nvme_queue_rq builds the request's scatterlist (segments
 * up to max_seg_size), maps it with dma_map_sg and rings the doorbell; a failed mapping returns
 * BLK_STS_RESOURCE and blk-mq requeues the request. The device serves commands after a fixed
 * latency plus the transfer time over a shared link (bytes / bandwidth), then posts the
 * completion and raises the queue's interrupt; the handler hands each request to blk-mq, which
 * completes it in hardirq, BLOCK_SOFTIRQ or by IPI, where nvme_pci_complete_rq unmaps it.
 *
 * It is also a swap device (the memory model's IoBackend), so reclaim swaps out through it, and
 * `fio` drives it with per-CPU submitter tasks.
 *
 * Simplified: no PRP lists or SGLs in memory (the scatterlist is the command), no admin queue,
 * no polling queues, no timeouts or aborts; a request larger than what one bounce buffer holds
 * is cut into segments of at most swiotlb_max_mapping_size instead of being split into requests
 * by max_hw_sectors. The device moves bytes only when the run tracks memory contents.
 */
import { ProgramError } from '../../scheduler';
import { GFP_KERNEL } from '../kernel/gfp';
import { request_irq, type IrqLine, raise_irq } from '../kernel/irq';
import type { KernelBody, Machine } from '../kernel/machine';
import { schedule_timeout, try_to_wake_up } from '../kernel/sched';
import { fn } from '../kernel/stack';
import { lockdep_set_class } from '../kernel/lock';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore, type spinlock_t } from '../kernel/spinlock';
import type { Task } from '../kernel/task';
import { DECLARE_WAIT_QUEUE_HEAD, wait_event, type wait_queue_head_t } from '../kernel/wait';
import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from '../dma/attrs';
import type { device } from '../dma/device';
import type { iommu_domain } from '../dma/iommu';
import { dma_device_read, dma_device_write, dma_map_sg, dma_unmap_sg } from '../dma/mapping';
import { sg_init_table, sg_set_page, type scatterlist } from '../dma/scatterlist';
import { device_register } from '../dma/state';
import { is_swiotlb_active, swiotlb_max_mapping_size } from '../dma/swiotlb/map';
import { PhysContents, phys_contents } from '../mm/contents';
import { mm } from '../mm/mm';
import { alloc_pages, __free_pages } from '../mm/page-alloc';
import { get_order } from '../kernel/sizes';
import type { IoBackend } from '../mm/swap';
import {
  BLK_STS_OK,
  BLK_STS_RESOURCE,
  blk_mq_complete_request,
  M_REQUEUES,
  blk_mq_submit_request,
  REQ_OP_READ,
  REQ_OP_WRITE,
  request,
  request_queue,
  type blk_mq_hw_ctx,
  type CompletionMode,
} from './block';

export const M_NVME_MAP_FAILURES = 'nvme.map_failures';
const M_COMPLETIONS: Record<CompletionMode, string> = {
  hardirq: 'nvme.completions_hardirq',
  softirq: 'nvme.completions_softirq',
  ipi: 'nvme.completions_ipi',
};

export interface NvmeOptions {
  /** dev_name (default nvme0). */
  name?: string;
  /** DMA addressing bits (default 64). */
  dmaBits?: number;
  /** dma_set_max_seg_size (default 64 KiB). */
  maxSegSize?: number;
  /** Behind an IOMMU domain (default: direct). */
  iommu?: iommu_domain | null;
  untrusted?: boolean;
  /** Submission queues (default one per CPU); CPUs are spread over them in order. */
  queues?: number;
  /** Tags per queue (default 64). */
  queueDepth?: number;
  /** Where requests complete (default hardirq). */
  completion?: CompletionMode;
  /** Deliver every queue's interrupt to this CPU (default: the queue's first CPU; 0 in ipi mode). */
  irqCpu?: number;
  /** Command latency in ns (default 20 us). */
  latencyNs?: number;
  /** Link bandwidth in bytes per ns (default 3: 3 GB/s), shared by all queues. */
  bytesPerNs?: number;
  /** CPU time of nvme_queue_rq beyond the mapping (default 1 us). */
  submitNs?: number;
  /** CPU time per completion in the interrupt handler (default 300 ns). */
  completeNs?: number;
  /** Swap slots in pages (default 262144: 1 GiB of 4 KiB pages). */
  capacity?: number;
  /** DMA attributes for the mappings (default 0). */
  attrs?: number;
}

const KNOWN = ['name', 'dmaBits', 'maxSegSize', 'iommu', 'untrusted', 'queues', 'queueDepth', 'completion', 'irqCpu', 'latencyNs', 'bytesPerNs', 'submitNs', 'completeNs', 'capacity', 'attrs'];

/**
 * What differs between the block controllers this driver shape models (NVMe here; AHCI in
 * ahci.ts): the DMA constraints, the queue layout, the lock the submission maps under, and the
 * kernel's function names in backtraces.
 */
export interface StorageHw {
  /** The driver, in option errors. */
  driver: string;
  /** Default dev_name. */
  name: string;
  /** dma_set_min_align_mask (0: none). */
  minAlignMask: number;
  /** Hardware queues when the options name none (NVMe: one per CPU). */
  queues(m: Machine): number;
  /** Tags per queue by default, and the most the hardware has (0: no limit). */
  depth: number;
  maxDepth: number;
  /** Completion contexts the driver allows (libata unmaps in its interrupt handler). */
  completions: readonly CompletionMode[];
  /** A host lock taken irqsave around the mapping and in the interrupt handler (libata's ap->lock). */
  hostLock: string | null;
  fns: { queue: string; map: string; complete: string; irq: string };
}

/** NVMe: min_align_mask NVME_CTRL_PAGE_SIZE - 1, a queue pair per CPU, no host lock on submission. */
export const NVME_HW: StorageHw = {
  driver: 'nvme',
  name: 'nvme0',
  minAlignMask: 0xfff,
  queues: (m) => m.cpus.length,
  depth: 64,
  maxDepth: 0,
  completions: ['hardirq', 'softirq', 'ipi'],
  hostLock: null,
  fns: { queue: 'nvme_queue_rq', map: 'nvme_map_data', complete: 'nvme_pci_complete_rq', irq: 'nvme_irq' },
};

/** The driver's per-request data (struct nvme_iod). */
interface nvme_iod {
  sg: scatterlist[];
  nents: number;
  dir: number;
}

function nonNeg(name: string, what: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0)) throw new ProgramError(`${name}: ${what} must be a non-negative number, got ${v}`);
  return v;
}

export class NvmeDevice implements IoBackend {
  readonly name: string;
  readonly capacity: number;
  readonly dev: device;
  readonly q: request_queue;
  /** One completion queue (posted requests) and interrupt vector per hardware queue. */
  readonly cq: request[][] = [];
  readonly irqs: IrqLine[] = [];
  readonly latencyNs: number;
  readonly bytesPerNs: number;
  readonly submitNs: number;
  readonly completeNs: number;
  readonly attrs: number;
  /** What the device stores, by byte offset (only when contents are tracked). */
  readonly media: PhysContents | null;
  /** The link is busy transferring until this time. */
  private busyUntil = 0;
  private nextSwapSlot = 0;
  private readonly mCompletions: string;
  /** Requests completed (all contexts). */
  completed = 0;
  /** libata's ap->lock (AHCI), or null. */
  readonly hostLock: spinlock_t | null;

  constructor(
    readonly m: Machine,
    o: NvmeOptions = {},
    readonly hw: StorageHw = NVME_HW,
  ) {
    for (const k of Object.keys(o)) if (!KNOWN.includes(k)) throw new ProgramError(`unknown ${hw.driver} option '${k}' (known: ${KNOWN.join(', ')})`);
    this.name = o.name ?? hw.name;
    const completion = o.completion ?? 'hardirq';
    if (!hw.completions.includes(completion)) throw new ProgramError(`${this.name}: completion must be ${hw.completions.join(' or ')} for this controller, got ${completion}`);
    const depth = o.queueDepth ?? hw.depth;
    if (hw.maxDepth > 0 && !(Number.isInteger(depth) && depth >= 1 && depth <= hw.maxDepth)) throw new ProgramError(`${this.name}: queueDepth must be 1..${hw.maxDepth} for this controller, got ${depth}`);
    if (hw.hostLock !== null) {
      this.hostLock = DEFINE_SPINLOCK(m, `${this.name}:${hw.hostLock}`);
      lockdep_set_class(this.hostLock, `&${hw.hostLock}`);
    } else this.hostLock = null;
    this.latencyNs = nonNeg(this.name, 'latencyNs', o.latencyNs ?? 20_000);
    this.bytesPerNs = o.bytesPerNs ?? 3;
    if (!(this.bytesPerNs > 0)) throw new ProgramError(`${this.name}: bytesPerNs must be positive, got ${this.bytesPerNs}`);
    this.submitNs = nonNeg(this.name, 'submitNs', o.submitNs ?? 1_000);
    this.completeNs = nonNeg(this.name, 'completeNs', o.completeNs ?? 300);
    this.capacity = o.capacity ?? 262_144;
    if (!(Number.isInteger(this.capacity) && this.capacity > 0)) throw new ProgramError(`${this.name}: capacity must be a positive integer of pages, got ${this.capacity}`);
    this.attrs = o.attrs ?? 0;
    this.dev = device_register(m, {
      name: this.name,
      dmaBits: o.dmaBits ?? 64,
      minAlignMask: hw.minAlignMask, // NVMe: dma_set_min_align_mask(dev, NVME_CTRL_PAGE_SIZE - 1)
      maxSegSize: o.maxSegSize ?? 65536,
      iommu: o.iommu ?? null,
      untrusted: o.untrusted ?? false,
    });
    const self = this;
    this.q = new request_queue(m, this.name, {
      queue_rq: (cur, hctx, rq) => self.nvme_queue_rq(cur, hctx, rq),
      complete: (cur, rq) => self.nvme_pci_complete_rq(cur, rq),
    }, { nr_hw_queues: o.queues ?? hw.queues(m), queue_depth: depth, completion });
    const irqCpu = o.irqCpu ?? (completion === 'ipi' ? 0 : undefined);
    if (irqCpu !== undefined) m.cpu(irqCpu);
    for (const hctx of this.q.hctxs) {
      const cq: request[] = [];
      this.cq.push(cq);
      const irqName = hw.fns.irq;
      this.irqs.push(request_irq(m, irqCpu ?? hctx.cpu, `${this.name}q${hctx.queue_num + 1}`, function* irq_handler(cur) {
        yield* fn(cur, irqName, (function* () {
          // libata: ahci_handle_port_interrupt -> ata_qc_complete under ap->lock
          if (self.hostLock !== null) yield* spin_lock(cur, self.hostLock);
          // nvme_process_cq: every posted completion, then blk-mq decides where it finishes.
          while (cq.length > 0) {
            const rq = cq.shift()!;
            yield cur.thread.work(self.completeNs);
            yield* blk_mq_complete_request(cur, rq);
          }
          if (self.hostLock !== null) yield* spin_unlock(cur, self.hostLock);
        })());
      }));
    }
    this.mCompletions = M_COMPLETIONS[completion];
    this.media = phys_contents(m) === null ? null : new PhysContents();
  }

  /** Longest segment the scatterlist gets: max_seg_size, and what one bounce buffer holds. */
  get maxSegment(): number {
    const dev = this.dev;
    return is_swiotlb_active(dev) ? Math.min(dev.max_seg_size, swiotlb_max_mapping_size(dev)) : dev.max_seg_size;
  }

  /** blk_rq_map_sg: the request's buffer cut into segments of at most maxSegment bytes. */
  private blk_rq_map_sg(rq: request): scatterlist[] {
    const pageSize = mm(this.m).phys.pageSize;
    const seg = this.maxSegment;
    const n = Math.ceil(rq.bytes / seg);
    const sgl = sg_init_table(n);
    let at = rq.offset;
    for (let i = 0; i < n; i++) {
      const len = Math.min(seg, rq.bytes - i * seg);
      sg_set_page(sgl[i], rq.pfn + Math.floor(at / pageSize), len, at % pageSize);
      at += len;
    }
    return sgl;
  }

  /** ->queue_rq: map the data and start the command. */
  *nvme_queue_rq(cur: Task, hctx: blk_mq_hw_ctx, rq: request): KernelBody<number> {
    return yield* fn(cur, this.hw.fns.queue, this.queueRq(cur, hctx, rq));
  }

  private *queueRq(cur: Task, hctx: blk_mq_hw_ctx, rq: request): KernelBody<number> {
    yield cur.thread.work(this.submitNs);
    const sg = this.blk_rq_map_sg(rq);
    const dir = rq.op === REQ_OP_WRITE ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
    // libata maps in ata_qc_issue under spin_lock_irqsave(ap->lock) (ata_scsi_queuecmd)
    const lock = this.hostLock;
    const flags = lock !== null ? yield* spin_lock_irqsave(cur, lock) : 0;
    const mapped = yield* fn(cur, this.hw.fns.map, dma_map_sg(cur, this.dev, sg, sg.length, dir, this.attrs));
    if (lock !== null) yield* spin_unlock_irqrestore(cur, lock, flags);
    if (mapped === 0) {
      cur.thread.sim.count(M_NVME_MAP_FAILURES, 1);
      return BLK_STS_RESOURCE;
    }
    const iod: nvme_iod = { sg, nents: sg.length, dir };
    rq.pdu = iod;
    this.nvme_submit_cmd(hctx, rq, iod, mapped);
    return BLK_STS_OK;
  }

  /** The doorbell: the device serves the command and posts its completion. */
  private nvme_submit_cmd(hctx: blk_mq_hw_ctx, rq: request, iod: nvme_iod, mapped: number): void {
    const sim = this.m.sim;
    const now = sim.now();
    const start = Math.max(now, this.busyUntil);
    this.busyUntil = start + Math.ceil(rq.bytes / this.bytesPerNs);
    const qn = hctx.queue_num;
    sim.timer(this.busyUntil + this.latencyNs, () => {
      this.moveData(rq, iod, mapped);
      this.cq[qn].push(rq);
      raise_irq(this.m, this.irqs[qn]);
    }, `${this.name}:cqe`);
  }

  /** The device's DMA: reads the mapped buffers for a write, writes them for a read. */
  private moveData(rq: request, iod: nvme_iod, mapped: number): void {
    const media = this.media;
    if (media === null) return;
    let pos = rq.sector * 512;
    for (let i = 0; i < mapped; i++) {
      const s = iod.sg[i];
      if (rq.op === REQ_OP_WRITE) media.write(pos, dma_device_read(this.m, this.dev, s.dma_address, s.dma_length));
      else dma_device_write(this.m, this.dev, s.dma_address, media.read(pos, s.dma_length));
      pos += s.dma_length;
    }
  }

  /** ->complete (nvme_pci_complete_rq): unmap the data. */
  *nvme_pci_complete_rq(cur: Task, rq: request): KernelBody<void> {
    yield* fn(cur, this.hw.fns.complete, (function* (self: NvmeDevice) {
      const iod = rq.pdu as nvme_iod;
      yield* dma_unmap_sg(cur, self.dev, iod.sg, iod.nents, iod.dir, self.attrs);
      rq.pdu = null;
      self.completed++;
      cur.thread.sim.count(self.mCompletions, 1);
    })(this));
  }

  /** Submit one request from the current task (blk_mq_submit_bio); it completes asynchronously. */
  *submit(cur: Task, rq: request): KernelBody<void> {
    yield* blk_mq_submit_request(cur, this.q, rq);
  }

  /** IoBackend: swap_writepage -> submit_bio of one page. */
  *writepage(cur: Task, pfn: number, done: () => void): KernelBody<boolean> {
    const pageSize = mm(this.m).phys.pageSize;
    const slot = this.nextSwapSlot;
    this.nextSwapSlot = (slot + 1) % this.capacity;
    const rq = new request(REQ_OP_WRITE, pfn, 0, pageSize, (slot * pageSize) / 512);
    rq.end_io = () => done();
    yield* this.submit(cur, rq);
    return true;
  }
}

/** nvme_probe: the controller, its queues and interrupt vectors. Needs dma_init first. */
export function nvme_probe(m: Machine, o: NvmeOptions = {}): NvmeDevice {
  const dev = new NvmeDevice(m, o);
  // The device's statistics exist from probe on, so a run without failures reports a zero.
  m.sim.count(M_NVME_MAP_FAILURES, 0);
  m.sim.count(M_REQUEUES, 0);
  return dev;
}

// ---- fio ----

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
