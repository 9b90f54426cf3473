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
 * `fio` (workloads/fio.ts) drives it with per-CPU submitter tasks.
 *
 * Simplified: no PRP lists or SGLs in memory (the scatterlist is the command), no admin queue,
 * no polling queues, no timeouts or aborts; a request larger than what one bounce buffer holds
 * is cut into segments of at most swiotlb_max_mapping_size instead of being split into requests
 * by max_hw_sectors. The device moves bytes only when the run tracks memory contents.
 */
import { ProgramError } from '../../scheduler';
import { request_irq, type IrqLine, raise_irq } from '../kernel/irq';
import type { KernelBody, Machine } from '../kernel/machine';
import { fn } from '../kernel/stack';
import { lockdep_set_class } from '../kernel/lock';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore, type spinlock_t } from '../kernel/spinlock';
import type { Task } from '../kernel/task';
import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from '../dma/attrs';
import type { device } from '../dma/device';
import type { iommu_domain } from '../dma/iommu';
import { dma_device_read, dma_device_write, dma_map_sg, dma_unmap_sg } from '../dma/mapping';
import { sg_init_table, sg_set_page, type scatterlist } from '../dma/scatterlist';
import { device_register } from '../dma/state';
import { is_swiotlb_active, swiotlb_max_mapping_size } from '../dma/swiotlb/map';
import { PhysContents, phys_contents } from '../mm/contents';
import { mm } from '../mm/mm';
import { __free_pages } from '../mm/page-alloc';
import type { IoBackend } from '../mm/swap';
import {
  BLK_STS_OK,
  BLK_STS_RESOURCE,
  blk_mq_complete_request,
  M_REQUEUES,
  blk_mq_submit_request,
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

/** A non-negative option value, or a ProgramError naming it (also used by workloads/fio.ts). */
export function nonNeg(name: string, what: string, v: number): number {
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

// The fio-like workloads moved to workloads/fio.ts; re-exported for the scenarios that import them from here.
export { fio, FioJob, nvme_write_job, parseSizes, sizePattern, type FioOptions, type FioRw, type WriteJobOptions } from './workloads/fio';
