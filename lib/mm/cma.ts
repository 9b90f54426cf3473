/**
 * The Contiguous Memory Allocator (mm/cma.c, docs/kernel-facts.md §7): areas declared at boot whose
 * pageblocks are MIGRATE_CMA (movable allocations may borrow them, ALLOC_CMA), and cma_alloc,
 * which takes a range back by migrating whatever movable pages sit there. cma_alloc sleeps
 * (a mutex, page migration), so it belongs in process context: the cmaAlloc hook lets
 * lib/check/cma.ts report callers that cannot sleep.
 *
 * Declaration (cma_declare_contiguous) works on a PhysMem, or a MemoryImage whose snapshot it
 * retakes, before any run starts; the declarations live in a WeakMap keyed by the PhysMem, so
 * every run (restored from the same snapshot) finds them, and cma_area(m, name) gives that
 * run's struct cma (bitmap, locks), made on first use.
 *
 * Placement: like x86's dma_contiguous_reserve(max DMA32 address), an area without a fixed base
 * goes as high as it fits below the DMA32 limit (4 GiB, or the end of RAM when lower), top-down
 * as memblock allocates, aligned to the larger of a pageblock and a MAX_PAGE_ORDER block (the
 * area's size is rounded up to that), in one zone, not overlapping another area and holding no
 * unmovable allocation.
 *
 * cma_alloc follows the newer trees: the bitmap under cma->lock (spin_lock_irq), a free range
 * aligned to `align` searched first-fit, alloc_contig_range serialised by cma->alloc_mutex, and
 * on -EBUSY the next aligned range; -ENOMEM (no room to migrate to) ends the attempt. A failure
 * prints "cma: cma_alloc: <name>: alloc failed, req-size: N pages, ret: R" unless no_warn.
 *
 * Simplifications:
 * - alloc_contig_range checks the whole range first and reports -EBUSY for an unmovable page
 *   (pinned, slab, another CMA allocation) before migrating anything; upstream migrates until it
 *   meets it. Migration and the final isolation happen in one step, then their cost is charged
 *   while alloc_mutex is held (upstream isolates the pageblocks first so nothing lands in the
 *   range meanwhile: the same outcome);
 * - migration cost: CMA_MIGRATE_PAGE_NS (4 us) per 4 KiB page, scaled with the page size: the
 *   copy (about 1 us at a few GB/s), unmapping with its rmap walk and TLB flush, and remapping;
 *   measured migrate_pages throughput on x86 for base pages is about 1-2 GB/s (2-4 us a page);
 * - no lru_add_drain_all / drain_all_pages (no per-CPU LRU or page lists in the model), no
 *   retry with a 100 ms sleep after -EBUSY, no CMA sysfs/debugfs.
 */
import { ProgramError } from '../../scheduler';
import type { KernelBody, Machine } from '../kernel/machine';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock, type mutex } from '../kernel/mutex';
import { DEFINE_SPINLOCK, spin_lock_irq, spin_lock_irqsave, spin_unlock_irq, spin_unlock_irqrestore, type spinlock_t } from '../kernel/spinlock';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { GIB, MIGRATE_CMA } from './config';
import { MemoryImage } from './image';
import { mm } from './mm';
import type { PhysMem } from './buddy';
import { ENOMEM, EBUSY } from '../kernel/errno';

/** Migration cost per 4 KiB page (see the header). */
export const CMA_MIGRATE_PAGE_NS = 4_000;
/** The default area's name (dma_contiguous_reserve). */
export const CMA_DEFAULT_NAME = 'reserved';

export interface CmaDeclareOptions {
  /** Fixed physical base (must be aligned as the area is); default: placed top-down below `limit`. */
  base?: number;
  /** Highest physical address (exclusive) the area may reach; default the DMA32 limit, 4 GiB. */
  limit?: number;
  /** Pages per bitmap bit as an order (cma->order_per_bit); default 0. */
  orderPerBit?: number;
}

/** A declared area (boot state, shared by every run on the same PhysMem). */
export interface CmaDecl {
  readonly name: string;
  readonly basePfn: number;
  /** Pages. */
  readonly count: number;
  readonly orderPerBit: number;
}

const decls = new WeakMap<PhysMem, CmaDecl[]>();

/** The areas declared on `phys`. */
export function cma_declarations(phys: PhysMem): readonly CmaDecl[] {
  return decls.get(phys) ?? [];
}

/** Whether [s, s+n) holds an allocated block that is not movable. */
function holdsUnmovable(phys: PhysMem, s: number, n: number): boolean {
  for (let p = s; p < s + n;) {
    const h = coveringBlock(phys, p);
    if (h < 0) {
      p++;
      continue;
    }
    if (!phys.isMovable(h)) return true;
    p = h + 2 ** phys.allocatedOrder(h);
  }
  return false;
}

/**
 * cma_declare_contiguous(size, name): reserve an area at boot and mark its pageblocks
 * MIGRATE_CMA. On a MemoryImage the snapshot is retaken so every run starts with the area.
 */
export function cma_declare_contiguous(target: PhysMem | MemoryImage, size: number, name: string, opts: CmaDeclareOptions = {}): CmaDecl {
  const phys = target instanceof MemoryImage ? target.phys : target;
  if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`cma_declare_contiguous(${name}): size must be a positive integer, got ${size}`);
  const list = decls.get(phys) ?? [];
  if (list.some((d) => d.name === name)) throw new ProgramError(`cma_declare_contiguous: area ${name} already declared`);
  const orderPerBit = opts.orderPerBit ?? 0;
  if (!Number.isInteger(orderPerBit) || orderPerBit < 0 || orderPerBit > phys.maxOrder) throw new ProgramError(`cma_declare_contiguous(${name}): bad orderPerBit ${orderPerBit}`);
  const align = 2 ** Math.max(phys.pageblockOrder, phys.maxOrder, orderPerBit);
  const count = Math.ceil(size / phys.pageSize / align) * align;
  const fits = (base: number): string | null => {
    if (base < 0 || base + count > phys.nrPages) return 'outside physical memory';
    if (base % align !== 0) return `base not aligned to ${align} pages`;
    const z = phys.zoneOf(base);
    if (base + count > z.endPfn) return `spans zones (${z.name} ends at pfn ${z.endPfn})`;
    for (const d of list) if (base < d.basePfn + d.count && d.basePfn < base + count) return `overlaps area ${d.name}`;
    if (holdsUnmovable(phys, base, count)) return 'holds unmovable allocations';
    return null;
  };
  let basePfn: number;
  if (opts.base !== undefined) {
    if ((opts.base - phys.base) % phys.pageSize !== 0) throw new ProgramError(`cma_declare_contiguous(${name}): base 0x${opts.base.toString(16)} not page aligned`);
    basePfn = phys.physToPfn(opts.base);
    const why = fits(basePfn);
    if (why !== null) throw new ProgramError(`cma_declare_contiguous(${name}): ${count} pages at 0x${opts.base.toString(16)}: ${why}`);
  } else {
    const limit = opts.limit ?? 4 * GIB;
    const limitPfn = Math.min(phys.nrPages, Math.max(0, phys.physToPfn(limit)));
    basePfn = Math.floor((limitPfn - count) / align) * align;
    while (basePfn >= 0 && fits(basePfn) !== null) basePfn -= align;
    if (basePfn < 0) throw new ProgramError(`cma_declare_contiguous(${name}): no room for ${count} pages below 0x${limit.toString(16)}`);
  }
  for (let p = basePfn; p < basePfn + count; p += 2 ** phys.pageblockOrder) phys.setPageblockMigratetype(p, MIGRATE_CMA);
  const d: CmaDecl = { name, basePfn, count, orderPerBit };
  list.push(d);
  decls.set(phys, list);
  if (target instanceof MemoryImage) target.snapshot();
  return d;
}

/** struct cma: one area as a run sees it. */
export class cma {
  readonly name: string;
  readonly base_pfn: number;
  readonly count: number;
  readonly order_per_bit: number;
  /** One byte per bit: 1 = allocated. */
  readonly bitmap: Uint8Array;
  /** cma->lock (bitmap) and cma->alloc_mutex (alloc_contig_range). */
  readonly lock: spinlock_t;
  readonly alloc_mutex: mutex;
  /** Pages handed out now. */
  allocated = 0;

  constructor(m: Machine, d: CmaDecl) {
    this.name = d.name;
    this.base_pfn = d.basePfn;
    this.count = d.count;
    this.order_per_bit = d.orderPerBit;
    this.bitmap = new Uint8Array(d.count >> d.orderPerBit);
    this.lock = DEFINE_SPINLOCK(m, '&cma->lock');
    this.alloc_mutex = DEFINE_MUTEX(m, '&cma->alloc_mutex');
  }

  toString(): string {
    return `cma ${this.name}`;
  }
}

const runtime = new WeakMap<Machine, Map<string, cma>>();

/** The run's struct cma of the area declared as `name` on this machine's memory. */
export function cma_area(m: Machine, name: string = CMA_DEFAULT_NAME): cma {
  let areas = runtime.get(m);
  if (areas === undefined) runtime.set(m, (areas = new Map()));
  let c = areas.get(name);
  if (c === undefined) {
    const d = cma_declarations(mm(m).phys).find((x) => x.name === name);
    if (d === undefined) throw new ProgramError(`no CMA area ${name}: declare it with cma_declare_contiguous on the machine's memory image`);
    c = new cma(m, d);
    areas.set(name, c);
  }
  return c;
}

/** Every declared area of the machine, as struct cma. */
export function cma_areas(m: Machine): cma[] {
  return cma_declarations(mm(m).phys).map((d) => cma_area(m, d.name));
}

/** What the cmaAlloc hook carries (lib/check/cma.ts narrows it). */
export interface CmaAllocInfo {
  cma: string;
  count: number;
  align: number;
}

export function isCmaAllocInfo(x: unknown): x is CmaAllocInfo {
  return typeof x === 'object' && x !== null && typeof (x as CmaAllocInfo).cma === 'string' && typeof (x as CmaAllocInfo).count === 'number';
}

/** Head of the allocated block covering pfn (blocks are naturally aligned), or -1. */
function coveringBlock(phys: PhysMem, pfn: number): number {
  for (let o = 0; o <= phys.maxOrder; o++) {
    const h = pfn - (pfn % 2 ** o);
    if (phys.allocatedOrder(h) === o) return h;
  }
  return -1;
}

/**
 * alloc_contig_range(start, end, MIGRATE_CMA, GFP_KERNEL): migrate every movable block
 * overlapping the range elsewhere, then take the range off the free lists. 0, -EBUSY (an
 * unmovable page, or the range could not be isolated) or -ENOMEM (nowhere to migrate to).
 */
export function* alloc_contig_range(cur: Task, start: number, end: number): KernelBody<number> {
  const m = cur.cpu.machine;
  const phys = mm(m).phys;
  return yield* fn(cur, 'alloc_contig_range', (function* () {
    const blocks: number[] = [];
    for (let p = start; p < end;) {
      const h = coveringBlock(phys, p);
      if (h < 0) {
        p++;
        continue;
      }
      if (!phys.isMovable(h)) return -EBUSY;
      blocks.push(h);
      p = h + 2 ** phys.allocatedOrder(h);
    }
    let migrated = 0;
    let ret = 0;
    for (const h of blocks) {
      const pages = 2 ** phys.allocatedOrder(h);
      if (phys.migrateBlock(h, start, end) < 0) {
        ret = -ENOMEM;
        break;
      }
      migrated += pages;
    }
    if (ret === 0 && !phys.isolateFreeRange(start, end - start)) ret = -EBUSY;
    if (migrated > 0) {
      mm(m).count('cma_migrated_pages', migrated);
      yield cur.thread.work(Math.round((migrated * CMA_MIGRATE_PAGE_NS * phys.pageSize) / 4096));
    }
    return ret;
  })());
}

/** bitmap_find_next_zero_area_off: first index >= start with (index + offset) & mask == 0 and nr clear bits. */
function findZeroArea(bitmap: Uint8Array, size: number, start: number, nr: number, mask: number, offset: number): number {
  let i = start;
  for (;;) {
    i = ((i + offset + mask) & ~mask) - offset; // align up
    if (i + nr > size) return size;
    let k = 0;
    while (k < nr && bitmap[i + k] === 0) k++;
    if (k === nr) return i;
    i = i + k + 1;
  }
}

/** cma_clear_bitmap: under cma->lock with IRQs saved. */
function* clearBitmap(cur: Task, c: cma, pfn: number, count: number): KernelBody<void> {
  const first = (pfn - c.base_pfn) >> c.order_per_bit;
  const bits = Math.ceil(count / 2 ** c.order_per_bit);
  const flags = yield* spin_lock_irqsave(cur, c.lock);
  c.bitmap.fill(0, first, first + bits);
  yield* spin_unlock_irqrestore(cur, c.lock, flags);
}

/**
 * cma_alloc(cma, count, align, no_warn): `count` contiguous pages aligned to 2^align pages from
 * the area; the first pfn, or -1. Sleeps: process context only.
 */
export function* cma_alloc(cur: Task, c: cma, count: number, align: number, no_warn = false): KernelBody<number> {
  const m = cur.cpu.machine;
  if (!Number.isSafeInteger(count) || count < 0) throw new ProgramError(`cma_alloc(${c.name}): count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(align) || align < 0) throw new ProgramError(`cma_alloc(${c.name}): align must be a non-negative order, got ${align}`);
  const info: CmaAllocInfo = { cma: c.name, count, align };
  m.emit('cmaAlloc', cur, info); // before the frame: the check fingerprints the caller
  return yield* fn(cur, 'cma_alloc', (function* () {
    // No might_sleep of its own (mm/cma.c, v6.12): the DEBUG_ATOMIC_SLEEP splat of a caller in
    // atomic context comes from mutex_lock() below, at kernel/locking/mutex.c.
    if (count === 0) return -1;
    const model = mm(m);
    const opb = c.order_per_bit;
    // cma_bitmap_aligned_mask / _offset / _pages_to_bits.
    const mask = align <= opb ? 0 : 2 ** (align - opb) - 1;
    const offset = (c.base_pfn % 2 ** align) >> opb;
    const maxno = c.bitmap.length;
    const nbits = Math.ceil(count / 2 ** opb);
    let ret = -ENOMEM;
    let page = -1;
    let start = 0;
    while (nbits <= maxno) {
      yield* spin_lock_irq(cur, c.lock);
      const bitno = findZeroArea(c.bitmap, maxno, start, nbits, mask, offset);
      if (bitno >= maxno) {
        yield* spin_unlock_irq(cur, c.lock);
        break;
      }
      c.bitmap.fill(1, bitno, bitno + nbits);
      yield* spin_unlock_irq(cur, c.lock);
      const pfn = c.base_pfn + bitno * 2 ** opb;
      yield* mutex_lock(cur, c.alloc_mutex);
      ret = yield* alloc_contig_range(cur, pfn, pfn + count);
      yield* mutex_unlock(cur, c.alloc_mutex);
      if (ret === 0) {
        page = pfn;
        break;
      }
      yield* clearBitmap(cur, c, pfn, count);
      if (ret !== -EBUSY) break;
      model.count('cma_busy_retry');
      start = bitno + mask + 1; // another aligned range
    }
    if (page >= 0) {
      c.allocated += count;
      model.count('cma_alloc');
      model.count('cma_alloc_pages', count);
      m.emit('alloc', cur, 'cma', count * model.phys.pageSize, 0);
      m.sim.peak(`mm.cma_used_pages.${c.name}`, c.allocated);
    } else {
      model.count('cma_fail');
      if (!no_warn && m.log.ratelimit('cma_alloc_fail', 5_000_000_000, 10)) {
        m.log.printk(cur.cpu.id, `cma: cma_alloc: ${c.name}: alloc failed, req-size: ${count} pages, ret: ${ret}`);
      }
    }
    return page;
  })());
}

/**
 * cma_release(cma, pages, count): false when the pages are not in the area; otherwise they go
 * back to the page allocator and their bits are cleared. Never sleeps.
 */
export function* cma_release(cur: Task, c: cma, pfn: number, count: number): KernelBody<boolean> {
  return yield* fn(cur, 'cma_release', (function* () {
    if (pfn < c.base_pfn || pfn >= c.base_pfn + c.count) return false;
    if (!Number.isSafeInteger(count) || count <= 0 || pfn + count > c.base_pfn + c.count) {
      throw new ProgramError(`cma_release(${c.name}, pfn ${pfn}, ${count}): range leaves the area (VM_BUG_ON)`);
    }
    const first = (pfn - c.base_pfn) >> c.order_per_bit;
    const bits = Math.ceil(count / 2 ** c.order_per_bit);
    for (let i = first; i < first + bits; i++) {
      if (c.bitmap[i] === 0) throw new ProgramError(`cma_release(${c.name}, pfn ${pfn}, ${count}): pages not allocated from the area (double release?)`);
    }
    const model = mm(cur.cpu.machine);
    model.phys.freeContigRange(pfn, count); // free_contig_range
    yield* clearBitmap(cur, c, pfn, count);
    c.allocated -= count;
    model.count('cma_release');
    return true;
  })());
}

declare module '../kernel/hooks' {
  interface HookPayloads {
    cmaAlloc: CmaAllocInfo;
  }
}
