/**
 * A booted machine's memory, ready to run from: the physical pages (zones, buddy allocator,
 * CMA pageblocks), the page cache and anonymous memory on the LRU lists, and the background
 * processes owning that anonymous memory. Building one costs time (a fragmented 512 MiB machine
 * is hundreds of thousands of allocator operations), so a scenario builds it once in `prepare`
 * and every run restores it from a snapshot (typed-array copies).
 */
import { ProgramError } from '../../scheduler';
import { MIGRATE_MOVABLE, type PhysMemOptions } from './config';
import { age } from './fragmenter';
import { LRU_ANON, LRU_FILE_CLEAN, LRU_FILE_DIRTY, Lru, MAX_MM } from './lru';
import { PhysMem } from './buddy';

/** A user process that exists only as memory: what the OOM killer may pick besides the scenario's tasks. */
export interface BackgroundProcess {
  comm: string;
  /** Anonymous memory, bytes. */
  anon: number;
  /** oom_score_adj, -1000..1000 (-1000: never killed). */
  oom_score_adj?: number;
}

export interface MemoryImageOptions extends PhysMemOptions {
  /** Page cache at boot, bytes (default 0); `dirty` of it is dirty. */
  pageCache?: number;
  dirty?: number;
  /** Background processes and their anonymous memory. */
  processes?: BackgroundProcess[];
  /** Uptime for the fragmenter: rounds of allocation churn (default 0: a freshly booted machine). */
  uptime?: number;
  /** Seed of the fragmenter's churn (default 1). */
  ageSeed?: number;
}

/** An mm_struct's identity, for OOM reports. */
export interface MmIdentity {
  id: number;
  pid: number;
  comm: string;
  oom_score_adj: number;
  /** A background process (memory only) rather than a simulated task. */
  background: boolean;
}

export class MemoryImage {
  readonly phys: PhysMem;
  readonly lru: Lru;
  /** Background processes, by mm id (1..n). */
  readonly processes: MmIdentity[] = [];

  constructor(readonly opts: MemoryImageOptions = {}) {
    const { pageCache: _c, dirty: _d, processes: _p, uptime: _u, ageSeed: _a, ...physOpts } = opts;
    this.phys = new PhysMem(physOpts);
    this.lru = new Lru(this.phys.nrPages);
    const pageSize = this.phys.pageSize;
    const pages = (bytes: number | undefined, what: string): number => {
      const b = bytes ?? 0;
      if (!(Number.isFinite(b) && b >= 0)) throw new ProgramError(`${what} must be a non-negative number of bytes, got ${b}`);
      return Math.ceil(b / pageSize);
    };
    if ((opts.uptime ?? 0) > 0) {
      // The fragmenter's surviving movable pages are the page cache an aged machine has.
      const aged = age(this.phys, { seed: opts.ageSeed ?? 1, rounds: opts.uptime ?? 0 });
      for (const pfn of aged.movable) this.lru.add(LRU_FILE_CLEAN, pfn);
    }
    const cache = pages(opts.pageCache, 'pageCache');
    const dirty = pages(opts.dirty, 'dirty');
    if (dirty > cache) throw new ProgramError(`dirty (${opts.dirty} bytes) exceeds pageCache (${opts.pageCache ?? 0} bytes)`);
    for (let i = 0; i < cache; i++) this.lru.add(i < dirty ? LRU_FILE_DIRTY : LRU_FILE_CLEAN, this.bootPage('pageCache'));
    const procs = opts.processes ?? [];
    if (procs.length >= MAX_MM / 2) throw new ProgramError(`at most ${MAX_MM / 2 - 1} background processes, got ${procs.length}`);
    procs.forEach((p, i) => {
      const adj = p.oom_score_adj ?? 0;
      if (!(Number.isInteger(adj) && adj >= -1000 && adj <= 1000)) throw new ProgramError(`process ${p.comm}: oom_score_adj must be an integer from -1000 to 1000, got ${adj}`);
      const id = i + 1;
      this.processes.push({ id, pid: 1000 + i, comm: p.comm, oom_score_adj: adj, background: true });
      const n = pages(p.anon, `process ${p.comm}: anon`);
      for (let k = 0; k < n; k++) this.lru.add(LRU_ANON, this.bootPage(`process ${p.comm}`), id);
    });
    this.snapshot();
  }

  /** A movable order-0 page for boot-time memory, highest zone first, below no watermark. */
  private bootPage(what: string): number {
    const zones = this.phys.zones;
    for (let z = zones.length - 1; z >= 0; z--) {
      const pfn = this.phys.rmqueue(zones[z], 0, MIGRATE_MOVABLE, 0);
      if (pfn >= 0) return pfn;
    }
    throw new ProgramError(`boot memory (${what}) does not fit in ${this.phys.nrPages} pages of RAM`);
  }

  snapshot(): void {
    this.phys.snapshot();
    this.lru.snapshot();
  }

  /** Back to the snapshot: what every run starts from. */
  restore(): void {
    this.phys.restore();
    this.lru.restore();
  }
}

/** Build a machine's memory once (a scenario's `prepare`); pass it to mm_init as `image`. */
export function mm_prepare(opts: MemoryImageOptions = {}): MemoryImage {
  return new MemoryImage(opts);
}
