/**
 * The machine's memory model (one node, pg_data_t): its memory image (zones, buddy allocator,
 * LRU lists), the swap device and the page cache's backing device, kswapd and the flusher, the
 * OOM killer's state, the process accounts, and the counters that become a run's metrics.
 * A scenario calls mm_init(m, ...) (init.ts) in its build, with a prepared image or options.
 */
import { ProgramError } from '../../scheduler';
import type { Machine } from '../kernel/machine';
import { DEFINE_MUTEX, type mutex } from '../kernel/mutex';
import { Task } from '../kernel/task';
import { MemoryImage, type MemoryImageOptions, type MmIdentity } from './image';
import { MAX_MM } from './lru';
import type { IoBackend } from './swap';
import { IdealDisk } from './swap';

export type CocoKind = 'none' | 'sev-snp' | 'tdx';

export interface MmOptions extends MemoryImageOptions {
  /** A prepared image (mm_prepare in a scenario's prepare); restored by the runner before each run. */
  image?: MemoryImage;
  /** Confidential-computing guest type: memory is encrypted, conversions cost hypercalls. */
  coco?: CocoKind;
  /** Cost of one page-state-change hypercall (default 10 us). */
  hypercallNs?: number;
  /** The swap device (default: none, so anonymous memory cannot be reclaimed). */
  swap?: IoBackend | null;
  /** The page cache's backing device (default: an IdealDisk). */
  bdi?: IoBackend;
  /** Run kswapd (default true). */
  kswapd?: boolean;
}

/** A process's memory account (struct mm_struct, as far as the OOM killer looks). */
export type MmStruct = MmIdentity;

export class MemoryModel {
  readonly image: MemoryImage;
  readonly coco: CocoKind;
  readonly hypercallNs: number;
  swap: IoBackend | null;
  bdi: IoBackend;
  /** The OOM killer's serialisation (oom_lock). */
  readonly oom_lock: mutex;
  /** mm_struct accounts by id: background processes, then tasks as they first fault memory. */
  readonly mms: (MmStruct | undefined)[] = [];
  private readonly taskMm = new Map<Task, MmStruct>();
  /** OOM victims by mm id (TIF_MEMDIE): their tasks see fatal_signal_pending. */
  readonly oomVictims = new Set<number>();
  /** Set by vmscan.ts when kswapd runs. */
  kswapd: Task | null = null;
  /** The largest order an allocation woke kswapd for, since it last ran (pgdat->kswapd_order). */
  kswapdOrder = 0;
  kswapdWanted = false;
  /** Consecutive kswapd runs that reclaimed nothing (pgdat->kswapd_failures). */
  kswapdFailures = 0;
  /** Tasks sleeping in reclaim_throttle, woken as writeback completes. */
  readonly throttled: Task[] = [];
  /** Free pages over virtual time, sampled at changes at most every `sampleNs` (for traces). */
  readonly freeSeries: number[] = [];
  private lastSample = -Infinity;
  readonly sampleNs = 1_000_000;

  constructor(
    readonly m: Machine,
    opts: MmOptions,
  ) {
    const { image, coco: _c, hypercallNs: _h, swap: _s, bdi: _b, kswapd: _k, ...imageOpts } = opts;
    this.image = image ?? new MemoryImage(imageOpts);
    this.coco = opts.coco ?? 'none';
    if (!['none', 'sev-snp', 'tdx'].includes(this.coco)) throw new ProgramError(`coco must be none, sev-snp or tdx, got ${String(this.coco)}`);
    this.hypercallNs = opts.hypercallNs ?? 10_000;
    if (!(this.hypercallNs >= 0)) throw new ProgramError(`hypercallNs must be >= 0, got ${this.hypercallNs}`);
    this.swap = opts.swap ?? null;
    this.bdi = opts.bdi ?? new IdealDisk(m);
    this.oom_lock = DEFINE_MUTEX(m, 'oom_lock');
    for (const p of this.image.processes) this.mms[p.id] = p;
    // Pages that compaction or CMA migrate keep their place on the LRU.
    this.image.phys.onMigrate = (from, to) => this.image.lru.migrate(from, to);
    this.sample();
  }

  get phys() {
    return this.image.phys;
  }

  get lru() {
    return this.image.lru;
  }

  /** A counter of this run, as metric `mm.<name>`. */
  count(name: string, delta = 1): void {
    this.m.sim.count(`mm.${name}`, delta);
  }

  /** Free pages in every zone. */
  nrFree(): number {
    let n = 0;
    for (const z of this.phys.zones) n += z.nr_free;
    return n;
  }

  /** Record free memory (a time series for traces, and the low-water mark as a metric). */
  sample(): void {
    const now = this.m.sim.now();
    const free = this.nrFree();
    this.m.sim.peak('mm.used_pages_peak', this.phys.nrPages - free);
    if (now - this.lastSample < this.sampleNs) return;
    this.lastSample = now;
    this.freeSeries.push(now, free);
  }

  /** The task's mm_struct, made on first use (a user task faulting memory in). */
  mmOf(t: Task): MmStruct {
    let mm = this.taskMm.get(t);
    if (mm === undefined) {
      const id = this.mms.length === 0 ? 1 : this.mms.length;
      if (id >= MAX_MM) throw new ProgramError(`more than ${MAX_MM - 1} processes with memory`);
      mm = { id, pid: t.pid, comm: t.comm, oom_score_adj: 0, background: false };
      this.mms[id] = mm;
      this.taskMm.set(t, mm);
    }
    return mm;
  }

  /** tsk_is_oom_victim(). */
  isOomVictim(t: Task): boolean {
    const mm = this.taskMm.get(t);
    return mm !== undefined && this.oomVictims.has(mm.id);
  }
}

const models = new WeakMap<Machine, MemoryModel>();

/** Attach a model to its machine (init.ts's mm_init does, after building it). */
export function attachMm(m: Machine, model: MemoryModel): void {
  if (models.has(m)) throw new ProgramError('mm_init: the machine already has a memory model');
  models.set(m, model);
}

/** The machine's memory model. */
export function mm(m: Machine): MemoryModel {
  const model = models.get(m);
  if (model === undefined) throw new ProgramError('this machine has no memory model: call mm_init(m, ...) in the scenario build');
  return model;
}

export function mmIfPresent(m: Machine): MemoryModel | null {
  return models.get(m) ?? null;
}
