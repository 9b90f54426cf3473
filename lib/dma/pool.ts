/**
 * The coherent atomic pools (kernel/dma/pool.c, docs/kernel-facts.md §2): memory set aside (and, in a
 * CoCo guest, already decrypted) for coherent allocations that cannot sleep, since remapping and
 * decrypting both sleep. Three gen_pools: atomic_pool_kernel, atomic_pool_dma32 (when the
 * machine has ZONE_DMA32) and atomic_pool_dma (when it has ZONE_DMA), each filled at boot with
 * coherent_pool= bytes (default 128 KiB per GiB of RAM, at least 128 KiB, at most one
 * MAX_PAGE_ORDER block). An allocation that leaves a pool with less free space than that size
 * schedules atomic_pool_work, which grows every short pool by its current size (GFP_KERNEL plus
 * the pool's zone, CMA first when the CMA area lies in that zone, falling back to lower orders),
 * remaps it when CONFIG_DMA_DIRECT_REMAP, and decrypts it: the sleeping steps run in the worker,
 * never in the atomic caller. Pools never shrink.
 *
 * The allocator is gen_pool_first_fit_order_align with one bitmap bit per page
 * (gen_pool_create(PAGE_SHIFT)): the first free run, aligned (from its chunk's start) to the
 * request's page count rounded up to a power of two; chunks are searched newest first, as
 * gen_pool_add_virt puts them at the head of the list.
 *
 * Simplified: the boot fill takes its blocks straight from the run's PhysMem free lists (no task,
 * no virtual time: it happens before the run's clock starts, as a postcore_initcall does), uses
 * direct-map addresses even with CONFIG_DMA_DIRECT_REMAP and counts its decryption as done; the
 * worker's expansions pay for everything (allocation, CMA migration, vmap, set_memory_decrypted).
 * gen_pool's lockless bitmap updates are one engine step each. No debugfs.
 */
import { ProgramError } from '../../scheduler';
import { __GFP_DMA, __GFP_DMA32, __GFP_NOWARN, GFP_KERNEL } from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';
import { DECLARE_WORK, schedule_work, type work_struct } from '../kernel/workqueue';
import { gfp_zone, GIB, MIGRATE_UNMOVABLE, ZONE_DMA, ZONE_DMA32 } from '../mm/config';
import { phys_contents } from '../mm/contents';
import { set_memory_decrypted, set_memory_encrypted } from '../mm/decrypt';
import { mm, mmIfPresent } from '../mm/mm';
import { alloc_pages, __free_pages } from '../mm/page-alloc';
import { get_order } from '../kernel/sizes';
import { page_address } from '../mm/slab';
import { vmap, vunmap } from '../mm/vmalloc';
import { WARN_ON_ONCE } from '../kernel/bug';
import { dev_get_cma_area, dma_alloc_from_contiguous, dma_release_from_contiguous } from './contiguous';
import type { device } from './device';
import { arch_sync_cost, ZERO_BYTES_PER_NS } from './costs';
import { arm_consistent_init } from './historical/arm32-consistent';
import { dma_state, dmaIfPresent } from './state';
import type { DmaWarnInfo } from './swiotlb/map';
import { ENOMEM } from '../kernel/errno';

export const M_POOL_EXPANSIONS = 'dma.atomic_pool.expansions';
export const M_POOL_SIZE = 'dma.atomic_pool.size_bytes';
export const M_POOL_EXHAUSTED = 'dma.atomic_pool.exhausted';
export const M_POOL_ALLOCS = 'dma.atomic_pool.allocs';
export const M_POOL_EXPAND_FAIL = 'dma.atomic_pool.expand_failures';
/** gen_pool_alloc / gen_pool_free: the chunk walk and the bitmap update. */
export const GENPOOL_OP_NS = 150;
const KIB = 1024;

/** One physically contiguous range added to a pool (struct gen_pool_chunk). */
export class gen_pool_chunk {
  /** One byte per page: 1 = allocated. */
  readonly bits: Uint8Array;
  avail: number;

  constructor(
    readonly phys_addr: number,
    readonly start_addr: number,
    readonly size: number,
    readonly pageSize: number,
    /** Where the pages came from, to give them back on an error path. */
    readonly pfn: number,
    readonly order: number,
    readonly from: 'boot' | 'cma' | 'buddy',
    /** Who added it (the boot fill or the worker's comm): tests check decryption ran there. */
    readonly addedBy: string,
  ) {
    this.bits = new Uint8Array(size / pageSize);
    this.avail = size;
  }
}

/** struct gen_pool of one atomic pool. */
export class gen_pool {
  /** Newest chunk first. */
  readonly chunks: gen_pool_chunk[] = [];

  constructor(
    readonly name: 'atomic_pool_kernel' | 'atomic_pool_dma32' | 'atomic_pool_dma',
    /** The zone modifier its memory is allocated with (0, GFP_DMA32, GFP_DMA). */
    readonly zoneGfp: number,
  ) {}

  /** gen_pool_size. */
  get size(): number {
    let n = 0;
    for (const c of this.chunks) n += c.size;
    return n;
  }

  /** gen_pool_avail. */
  get avail(): number {
    let n = 0;
    for (const c of this.chunks) n += c.avail;
    return n;
  }

  toString(): string {
    return this.name;
  }
}

/** The machine's atomic pools (DmaState.atomicPools). */
export class AtomicPools {
  /** Null when ZONE_NORMAL has no managed pages (all memory in ZONE_DMA/DMA32). */
  readonly atomic_pool_kernel: gen_pool | null;
  readonly atomic_pool_dma32: gen_pool | null;
  readonly atomic_pool_dma: gen_pool | null;
  readonly atomic_pool_work: work_struct;

  constructor(
    readonly m: Machine,
    /** atomic_pool_size: the boot size of each pool and the free-space threshold for expansion. */
    readonly atomic_pool_size: number,
    hasDma32: boolean,
    hasDma: boolean,
    hasNormal = true,
  ) {
    this.atomic_pool_kernel = hasNormal ? new gen_pool('atomic_pool_kernel', 0) : null;
    this.atomic_pool_dma32 = hasDma32 ? new gen_pool('atomic_pool_dma32', __GFP_DMA32) : null;
    this.atomic_pool_dma = hasDma ? new gen_pool('atomic_pool_dma', __GFP_DMA) : null;
    this.atomic_pool_work = DECLARE_WORK(m, 'atomic_pool_work', atomic_pool_work_fn);
  }

  /** Every pool that exists, in the worker's order (dma, dma32, kernel). */
  get all(): gen_pool[] {
    const out: gen_pool[] = [];
    for (const p of [this.atomic_pool_dma, this.atomic_pool_dma32, this.atomic_pool_kernel]) if (p !== null) out.push(p);
    return out;
  }

  /** Bytes in every pool. */
  get totalSize(): number {
    let n = 0;
    for (const p of this.all) n += p.size;
    return n;
  }
}

/** The machine's atomic pools, or null before dma_atomic_pool_init (or without a memory model). */
export function atomic_pools(m: Machine): AtomicPools | null {
  const st = dmaIfPresent(m);
  return st === null ? null : ((st.atomicPools as AtomicPools | undefined) ?? null);
}

/**
 * The default atomic_pool_size: 128 KiB per GiB of RAM, at most MAX_ORDER_NR_PAGES pages, at
 * least 128 KiB.
 */
export function atomic_pool_default_size(totalPages: number, pageSize: number, maxOrder: number): number {
  const pages = Math.min(Math.floor(totalPages / (GIB / (128 * KIB))), 2 ** maxOrder);
  return Math.max(pages * pageSize, 128 * KIB);
}

function gfpPoolName(zoneGfp: number): string {
  if (zoneGfp & __GFP_DMA) return 'GFP_KERNEL|GFP_DMA';
  if (zoneGfp & __GFP_DMA32) return 'GFP_KERNEL|GFP_DMA32';
  return 'GFP_KERNEL';
}

/** gen_pool_add_virt: a new chunk goes to the head of the list. */
function gen_pool_add_virt(pool: gen_pool, chunk: gen_pool_chunk): void {
  pool.chunks.unshift(chunk);
}

/**
 * The boot fill of one pool: a block of min(get_order(size), MAX_PAGE_ORDER) pages from the
 * pool's zones (highest allowed first), lower orders when none is free. 0 or -ENOMEM.
 */
function boot_pool_fill(m: Machine, pool: gen_pool, size: number): number {
  const phys = mm(m).phys;
  const highest = gfp_zone(GFP_KERNEL | pool.zoneGfp);
  let order = Math.min(get_order(size, phys.pageSize), phys.maxOrder);
  for (;;) {
    for (let i = phys.zones.length - 1; i >= 0; i--) {
      const z = phys.zones[i];
      if (z.idx > highest) continue;
      const pfn = phys.rmqueue(z, order, MIGRATE_UNMOVABLE, 0);
      if (pfn < 0) continue;
      const bytes = phys.pageSize * 2 ** order;
      gen_pool_add_virt(pool, new gen_pool_chunk(phys.pfnToPhys(pfn), page_address(m, pfn), bytes, phys.pageSize, pfn, order, 'boot', 'boot'));
      return 0;
    }
    if (order === 0) return -ENOMEM;
    order--;
  }
}

/**
 * dma_atomic_pool_init (postcore_initcall): size the pools and fill them from the run's memory.
 * Does nothing on a machine without a memory model. Called by dma_init.
 */
export function dma_atomic_pool_init(m: Machine): AtomicPools | null {
  const model = mmIfPresent(m);
  if (model === null) return null;
  const st = dma_state(m);
  const phys = model.phys;
  let size = st.opts.coherentPool;
  if (size !== undefined) {
    if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`coherentPool must be a positive number of bytes, got ${size}`);
  } else {
    size = atomic_pool_default_size(phys.nrPages, phys.pageSize, phys.maxOrder);
  }
  // Every profile this model has (v6.3 to v6.12) makes atomic_pool_kernel unconditionally (the
  // v6.8+ dma_atomic_pool_init with MAX_PAGE_ORDER has no zone test). Later kernels make it only
  // if has_managed_zone(ZONE_NORMAL) and let dma_guess_pool fall back kernel -> dma32 -> dma (the
  // torvalds/linux pool.c the search index holds, newer than v6.12); not modelled.
  const pools = new AtomicPools(m, size, phys.zoneByIdx(ZONE_DMA32) !== null, phys.zoneByIdx(ZONE_DMA) !== null, true);
  st.atomicPools = pools;
  for (const pool of [pools.atomic_pool_kernel, pools.atomic_pool_dma, pools.atomic_pool_dma32]) {
    if (pool === null) continue;
    const gfpName = gfpPoolName(pool.zoneGfp);
    if (boot_pool_fill(m, pool, size) !== 0) {
      m.log.printk(0, `DMA: failed to allocate ${Math.floor(size / KIB)} KiB ${gfpName} pool for atomic allocation`);
      continue;
    }
    m.log.printk(0, `DMA: preallocated ${Math.floor(pool.size / KIB)} KiB ${gfpName} pool for atomic allocations`);
  }
  m.sim.peak(M_POOL_SIZE, pools.totalSize);
  // ARM32 before v3.6: consistent_init (core_initcall) preallocates the region's page tables.
  if (st.opts.arm32 && st.opts.arm32Consistent) arm_consistent_init(m, st.opts.arm32Consistent);
  return pools;
}

/** bitmap_find_next_zero_area_off with offset 0: `nr` clear bits at an index aligned to mask + 1. */
function findZeroArea(bits: Uint8Array, nr: number, mask: number): number {
  let i = 0;
  for (;;) {
    i = (i + mask) & ~mask;
    if (i + nr > bits.length) return -1;
    let k = 0;
    while (k < nr && bits[i + k] === 0) k++;
    if (k === nr) return i;
    i = i + k + 1;
  }
}

/** gen_pool_alloc with gen_pool_first_fit_order_align: the chunk and byte offset, or null. */
function gen_pool_alloc(pool: gen_pool, size: number): { chunk: gen_pool_chunk; offset: number } | null {
  for (const chunk of pool.chunks) {
    if (chunk.avail < size) continue;
    const nr = Math.ceil(size / chunk.pageSize);
    const mask = 2 ** Math.ceil(Math.log2(nr)) - 1;
    const bit = findZeroArea(chunk.bits, nr, mask);
    if (bit < 0) continue;
    chunk.bits.fill(1, bit, bit + nr);
    chunk.avail -= nr * chunk.pageSize;
    return { chunk, offset: bit * chunk.pageSize };
  }
  return null;
}

function gen_pool_free(chunk: gen_pool_chunk, offset: number, size: number): void {
  const first = offset / chunk.pageSize;
  const nr = Math.ceil(size / chunk.pageSize);
  for (let i = first; i < first + nr; i++) {
    if (chunk.bits[i] === 0) throw new ProgramError(`gen_pool_free: page ${i} of the chunk at 0x${chunk.phys_addr.toString(16)} is not allocated (double free?)`);
  }
  chunk.bits.fill(0, first, first + nr);
  chunk.avail += nr * chunk.pageSize;
}

/** dma_guess_pool(prev, gfp): the next pool to try. */
function dma_guess_pool(pools: AtomicPools, prev: gen_pool | null, gfp: number): gen_pool | null {
  if (prev === null) {
    if (pools.atomic_pool_dma32 !== null && (gfp & __GFP_DMA32)) return pools.atomic_pool_dma32;
    if (pools.atomic_pool_dma !== null && (gfp & __GFP_DMA)) return pools.atomic_pool_dma;
    return pools.atomic_pool_kernel;
  }
  if (prev === pools.atomic_pool_kernel) return pools.atomic_pool_dma32 ?? pools.atomic_pool_dma;
  if (prev === pools.atomic_pool_dma32) return pools.atomic_pool_dma;
  return null;
}

function poolWarn(cur: Task, dev: device, subkind: string, message: string): void {
  const info: DmaWarnInfo = { subkind, dev: dev.name, message };
  cur.cpu.machine.emit('dmaDebug', cur, info);
}

export type PhysAddrOk = (dev: device, phys: number, size: number) => boolean;

/**
 * dma_alloc_from_pool(dev, size, &vaddr, gfp, phys_addr_ok): `size` bytes (zeroed) from the
 * first pool that has room and whose memory `phys_ok` accepts (null: any), in the order
 * kernel -> dma32 -> dma (GFP_DMA32 starts at dma32, GFP_DMA at dma). Never sleeps. When the
 * pool's free space falls below atomic_pool_size the expansion worker is scheduled. Exhaustion
 * WARNs "DMA pool exhausted for <dev>" unless __GFP_NOWARN.
 */
export function* dma_alloc_from_pool(cur: Task, dev: device, sizeIn: number, gfp: number, phys_ok: PhysAddrOk | null = null): KernelBody<{ phys: number; vaddr: number } | null> {
  const m = cur.cpu.machine;
  if (!Number.isSafeInteger(sizeIn) || sizeIn <= 0) throw new ProgramError(`dma_alloc_from_pool(${dev.name}): size must be a positive integer, got ${sizeIn}`);
  const pools = atomic_pools(m);
  const sim = cur.thread.sim;
  let found = false;
  if (pools !== null) {
    for (let pool = dma_guess_pool(pools, null, gfp); pool !== null; pool = dma_guess_pool(pools, pool, gfp)) {
      found = true;
      yield cur.thread.work(GENPOOL_OP_NS);
      const got = gen_pool_alloc(pool, sizeIn);
      if (got === null) continue;
      const phys = got.chunk.phys_addr + got.offset;
      if (phys_ok !== null && !phys_ok(dev, phys, sizeIn)) {
        gen_pool_free(got.chunk, got.offset, sizeIn);
        continue;
      }
      if (pool.avail < pools.atomic_pool_size) yield* schedule_work(cur, pools.atomic_pool_work);
      // memset(*cpu_addr, 0, size)
      yield cur.thread.work(Math.ceil(sizeIn / ZERO_BYTES_PER_NS));
      phys_contents(m)?.fill(phys, sizeIn, 0);
      sim.count(M_POOL_ALLOCS, 1);
      return { phys, vaddr: got.chunk.start_addr + got.offset };
    }
  }
  if (found) {
    sim.count(M_POOL_EXHAUSTED, 1);
    if (!(gfp & __GFP_NOWARN)) poolWarn(cur, dev, 'pool_exhausted', `DMA pool exhausted for ${dev.name}`);
  } else {
    poolWarn(cur, dev, 'pool_unsuitable', `Failed to get suitable pool for ${dev.name}`);
  }
  return null;
}

/**
 * dma_free_from_pool(dev, start, size): give the range back if it belongs to an atomic pool
 * (by physical address here); false when it does not.
 */
export function* dma_free_from_pool(cur: Task, _dev: device, phys: number, size: number): KernelBody<boolean> {
  const pools = atomic_pools(cur.cpu.machine);
  if (pools === null) return false;
  for (const pool of pools.all) {
    for (const chunk of pool.chunks) {
      if (phys < chunk.phys_addr || phys >= chunk.phys_addr + chunk.size) continue;
      yield cur.thread.work(GENPOOL_OP_NS);
      gen_pool_free(chunk, phys - chunk.phys_addr, size);
      return true;
    }
  }
  return false;
}

/** cma_in_zone(gfp): the default CMA area lies wholly inside what `gfp`'s zone may use. */
function cma_in_zone(m: Machine, gfp: number): boolean {
  const c = dev_get_cma_area(m, null);
  if (c === null || c.count === 0) return false;
  const phys = mm(m).phys;
  const end = phys.pfnToPhys(c.base_pfn + c.count) - 1;
  if (gfp & __GFP_DMA) {
    const z = phys.zoneByIdx(ZONE_DMA);
    return z !== null && end <= phys.pfnToPhys(z.endPfn) - 1;
  }
  if (gfp & __GFP_DMA32) return end <= 2 ** 32 - 1;
  return true;
}

/**
 * atomic_pool_expand(pool, pool_size, gfp): add a chunk of up to pool_size bytes (one block of
 * at most MAX_PAGE_ORDER), CMA first when it lies in the zone, then the buddy allocator, halving
 * down to one page; remap it (CONFIG_DMA_DIRECT_REMAP), decrypt it, add it. Sleeps. 0 or -ENOMEM.
 */
export function* atomic_pool_expand(cur: Task, pool: gen_pool, pool_size: number, gfp: number): KernelBody<number> {
  const m = cur.cpu.machine;
  const model = mm(m);
  const phys = model.phys;
  const st = dma_state(m);
  const sim = cur.thread.sim;
  let order = Math.min(get_order(pool_size, phys.pageSize), phys.maxOrder);
  let pfn = -1;
  let from: 'cma' | 'buddy' = 'buddy';
  for (;;) {
    if (cma_in_zone(m, gfp)) {
      pfn = yield* dma_alloc_from_contiguous(cur, null, 2 ** order, order, false);
      from = 'cma';
    }
    if (pfn < 0) {
      pfn = yield* alloc_pages(cur, gfp | __GFP_NOWARN, order);
      from = 'buddy';
    }
    if (pfn >= 0 || order === 0) break;
    order--;
  }
  if (pfn < 0) {
    sim.count(M_POOL_EXPAND_FAIL, 1);
    return -ENOMEM;
  }
  const count = 2 ** order;
  const bytes = count * phys.pageSize;
  // arch_dma_prep_coherent: clean the kernel alias (cache maintenance only on ARM here).
  if (m.arch !== 'x86') yield cur.thread.work(arch_sync_cost(bytes));
  let addr = page_address(m, pfn);
  if (st.remap) {
    const pfns: number[] = [];
    for (let i = 0; i < count; i++) pfns.push(pfn + i);
    addr = yield* vmap(cur, pfns, count);
    if (addr === 0) {
      yield* free_chunk_pages(cur, pfn, order, from);
      sim.count(M_POOL_EXPAND_FAIL, 1);
      return -ENOMEM;
    }
  }
  const ret = yield* set_memory_decrypted(cur, page_address(m, pfn), count);
  if (ret !== 0) {
    // A partial conversion may have left pages shared: try to take them back, else leak them.
    const back = yield* set_memory_encrypted(cur, page_address(m, pfn), count);
    if (st.remap) yield* vunmap(cur, addr);
    if (!WARN_ON_ONCE(cur, back !== 0, 'atomic_pool_expand: re-encryption failed, leaking the pages')) yield* free_chunk_pages(cur, pfn, order, from);
    sim.count(M_POOL_EXPAND_FAIL, 1);
    return ret;
  }
  gen_pool_add_virt(pool, new gen_pool_chunk(phys.pfnToPhys(pfn), addr, bytes, phys.pageSize, pfn, order, from, cur.comm));
  sim.count(M_POOL_EXPANSIONS, 1);
  const pools = atomic_pools(m);
  if (pools !== null) sim.peak(M_POOL_SIZE, pools.totalSize);
  return 0;
}

function* free_chunk_pages(cur: Task, pfn: number, order: number, from: 'cma' | 'buddy'): KernelBody<void> {
  if (from === 'cma' && (yield* dma_release_from_contiguous(cur, null, pfn, 2 ** order))) return;
  __free_pages(cur, pfn, order);
}

/** atomic_pool_resize: grow a pool by its current size while its free space is short. */
function* atomic_pool_resize(cur: Task, pools: AtomicPools, pool: gen_pool | null, gfp: number): KernelBody<void> {
  if (pool !== null && pool.avail < pools.atomic_pool_size) yield* atomic_pool_expand(cur, pool, pool.size, gfp);
}

/** atomic_pool_work_fn: the expansion worker (process context: it may sleep). */
export function* atomic_pool_work_fn(cur: Task): KernelBody<void> {
  const pools = atomic_pools(cur.cpu.machine);
  if (pools === null) return;
  yield* atomic_pool_resize(cur, pools, pools.atomic_pool_dma, GFP_KERNEL | __GFP_DMA);
  yield* atomic_pool_resize(cur, pools, pools.atomic_pool_dma32, GFP_KERNEL | __GFP_DMA32);
  if (pools.atomic_pool_kernel !== null) yield* atomic_pool_resize(cur, pools, pools.atomic_pool_kernel, GFP_KERNEL);
}
