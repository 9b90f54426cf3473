/**
 * swiotlb pools made after boot (CONFIG_SWIOTLB_DYNAMIC, docs/kernel-facts.md §1.9): the allocation and
 * freeing steps the growing designs share.
 *
 *  swiotlb_alloc_tlb    the buffer: from the coherent atomic pool when the caller cannot block and
 *                       DMA memory must be shared (CoCo: decrypting may sleep), else alloc_pages in
 *                       the zone phys_limit asks for, retried in lower zones when the block lands
 *                       above the limit, then set_memory_decrypted (a no-op without CoCo);
 *  swiotlb_alloc_pool   descriptor (kzalloc), buffer (halving down to `minslabs` on failure), the
 *                       slot array (__get_free_pages), area locks; capped at one MAX_PAGE_ORDER block;
 *  swiotlb_dyn_free     the RCU callback freeing a pool: slot array, buffer (re-encrypted first, or
 *                       back to the atomic pool; leaked if re-encryption fails), descriptor.
 *  swiotlb_walk_pools   the RCU list walk behind is_swiotlb_buffer, counting range checks.
 *
 * Simplified: the slot array is charged as pages but its contents live in the pool's typed
 * arrays; a pool's init cost is POOL_INIT_SLOT_NS per slot (the loop filling list/orig_addr).
 */
import type { KernelBody, Machine } from '../../kernel/machine';
import { __GFP_DMA, __GFP_DMA32, __GFP_HIGHMEM, __GFP_MOVABLE, gfpflags_allow_blocking } from '../../kernel/gfp';
import type { Task } from '../../kernel/task';
import { ZONE_DMA, ZONE_DMA32 } from '../../mm/config';
import { mm } from '../../mm/mm';
import { __free_pages, alloc_pages, page_to_phys } from '../../mm/page-alloc';
import { get_order } from '../../kernel/sizes';
import { kfree, kzalloc, page_address } from '../../mm/slab';
import { set_memory_decrypted, set_memory_encrypted } from '../../mm/decrypt';
import { cma_release, type cma } from '../../mm/cma';
import { DMA_BIT_MASK } from '../attrs';
import type { device } from '../device';
import { dma_coherent_ok } from '../direct';
import { dma_alloc_from_pool, dma_free_from_pool } from '../pool';
import { dmaIfPresent } from '../state';
import { IO_TLB_SEGSIZE, IO_TLB_SHIFT, IO_TLB_SIZE } from './constants';
import { io_tlb_pool, type PoolBacking } from './pool';
import { swiotlbIfPresent } from './state';
import { rcu_read_lock, rcu_read_unlock } from '../../kernel/rcu';
import { pool_lookup } from './find';
import type { BounceRef } from './policy';
import { M_LOOKUP_STEPS } from './policies/static';

/** sizeof(struct io_tlb_pool) with the DYNAMIC fields, and of one io_tlb_area / io_tlb_slot (64-bit). */
export const IO_TLB_POOL_BYTES = 112;
export const IO_TLB_AREA_BYTES = 16;
export const IO_TLB_SLOT_BYTES = 24;
/** Model cost: swiotlb_init_io_tlb_pool's per-slot loop. */
export const POOL_INIT_SLOT_NS = 2;
/** Model cost: one list_for_each_entry_rcu step with its start/end compare (a dependent load). */
export const POOL_CHECK_NS = 3;

export const M_LEAKED_PAGES = 'swiotlb.leaked_pages';
/** Growth (upstream's worker pools, chunked-growth's chunks). */
export const M_GROW_POOLS = 'swiotlb.grow_pools';
export const M_GROW_BYTES = 'swiotlb.grow_bytes';
export const M_GROW_FAILURES = 'swiotlb.grow_failures';
/** upstream's per-mapping fallback. */
export const M_TRANSIENT_POOLS = 'swiotlb.transient_pools';
export const M_TRANSIENT_FAILURES = 'swiotlb.transient_failures';
export const M_TRANSIENT_PEAK = 'swiotlb.transient_peak';
/** A lookup returned a pool already freed (an RCU bug: must stay 0). */
export const M_LOOKUP_FREED = 'swiotlb.lookup_freed';

/** pr_warn_ratelimited's default state: 10 messages per 5 s. */
export const RATELIMIT_NS = 5_000_000_000;
export const RATELIMIT_BURST = 10;

/** ARCH_LOW_ADDRESS_LIMIT on x86: where a pool may live without SWIOTLB_ANY. */
export const ARCH_LOW_ADDRESS_LIMIT = 0xffffffff;

/** The mem->phys_limit swiotlb_init_remap sets: all of RAM with SWIOTLB_ANY (CoCo), else low memory. */
export function swiotlb_phys_limit(m: Machine, cc: boolean): number {
  const phys = mm(m).phys;
  const top = phys.pfnToPhys(phys.nrPages) - 1;
  return cc ? top : Math.min(top, ARCH_LOW_ADDRESS_LIMIT);
}

/** SLABS_PER_PAGE: 2 KiB slots in a CPU page. */
export function slabs_per_page(pageSize: number): number {
  return pageSize >> IO_TLB_SHIFT;
}

/** SLABS_PER_PAGE << MAX_PAGE_ORDER: the most slots one buddy block holds (2048 with 4 KiB pages). */
export function swiotlb_max_pool_slabs(m: Machine): number {
  const phys = mm(m).phys;
  return slabs_per_page(phys.pageSize) * 2 ** phys.maxOrder;
}

/**
 * limit_nareas: every area must hold a whole segment. Upstream divides without rounding; the
 * area index is masked with nareas - 1, so the count is kept a power of two here.
 */
export function limit_nareas(nareas: number, nslots: number): number {
  if (nslots >= nareas * IO_TLB_SEGSIZE) return nareas;
  let n = Math.max(1, Math.floor(nslots / IO_TLB_SEGSIZE));
  while ((n & (n - 1)) !== 0) n &= n - 1;
  return n;
}

/** Per-pool bookkeeping of a late pool (what swiotlb_dyn_free gives back). */
interface DynPoolMeta {
  desc: number;
  slotsPfn: number;
  slotsOrder: number;
  dev: device | null;
  /** Bytes of bookkeeping: the slot array's pages and the descriptor with its areas. */
  overhead: number;
}

/**
 * Bookkeeping bytes a late pool holds besides its buffer: the io_tlb_slot array
 * (__get_free_pages of nslabs * 24 bytes, a power-of-two block) and the kzalloc'ed io_tlb_pool
 * with its areas. 0 for a pool not made by swiotlb_init_late_pool (the boot pool).
 */
export function late_pool_overhead(pool: io_tlb_pool): number {
  return meta.get(pool)?.overhead ?? 0;
}

const meta = new WeakMap<io_tlb_pool, DynPoolMeta>();

/** force_dma_unencrypted(dev): the guest's memory is encrypted (CoCo). */
export function force_dma_unencrypted(m: Machine): boolean {
  const d = dmaIfPresent(m);
  if (d !== null) return d.cc;
  return swiotlbIfPresent(m)?.cc ?? false;
}

/** Highest address of a zone (its DMA_BIT_MASK), or -1 when the machine has no such zone. */
function zoneMask(m: Machine, idx: number): number {
  const phys = mm(m).phys;
  const z = phys.zoneByIdx(idx);
  if (z === null) return -1;
  return idx === ZONE_DMA32 ? DMA_BIT_MASK(32) : phys.pfnToPhys(z.endPfn) - 1;
}

const AGAIN = -2;

/** alloc_dma_pages: a block, -1 (no memory or decryption failed) or AGAIN (above phys_limit). */
function* alloc_dma_pages(cur: Task, gfp: number, bytes: number, physLimit: number): KernelBody<number> {
  const m = cur.cpu.machine;
  const ps = mm(m).phys.pageSize;
  const order = get_order(bytes, ps);
  const pfn = yield* alloc_pages(cur, gfp, order);
  if (pfn < 0) return -1;
  const paddr = page_to_phys(m, pfn);
  if (paddr + bytes - 1 > physLimit) {
    __free_pages(cur, pfn, order);
    return AGAIN;
  }
  const vaddr = page_address(m, pfn);
  const pages = Math.ceil(bytes / ps);
  if ((yield* set_memory_decrypted(cur, vaddr, pages)) !== 0) {
    // Pages that cannot be made private again are leaked on purpose.
    if ((yield* set_memory_encrypted(cur, vaddr, pages)) === 0) __free_pages(cur, pfn, order);
    else cur.thread.sim.count(M_LEAKED_PAGES, 1 << order);
    return -1;
  }
  return pfn;
}

/** A pool buffer: its physical start and where it came from. */
export interface TlbBuffer {
  phys: number;
  backing: PoolBacking;
}

/**
 * swiotlb_alloc_tlb(dev, bytes, phys_limit, gfp). `dev` is null for the growth worker (which
 * never takes the atomic pool).
 */
export function* swiotlb_alloc_tlb(cur: Task, dev: device | null, bytes: number, physLimit: number, gfpIn: number): KernelBody<TlbBuffer | null> {
  const m = cur.cpu.machine;
  const ps = mm(m).phys.pageSize;
  const order = get_order(bytes, ps);
  const pages = 2 ** order;
  if (!gfpflags_allow_blocking(gfpIn) && dev !== null && force_dma_unencrypted(m)) {
    // Decrypting may block: take already shared memory from the coherent atomic pool.
    const got = yield* dma_alloc_from_pool(cur, dev, bytes, gfpIn, dma_coherent_ok);
    if (got === null) return null;
    return { phys: got.phys, backing: { from: 'atomic_pool', pfn: mm(m).phys.physToPfn(got.phys), order, pages, decrypted: true } };
  }
  const dmaMask = zoneMask(m, ZONE_DMA);
  const dma32Mask = zoneMask(m, ZONE_DMA32);
  let gfp = gfpIn & ~(__GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM | __GFP_MOVABLE);
  if (dmaMask >= 0 && physLimit <= dmaMask) gfp |= __GFP_DMA;
  else if (dma32Mask >= 0 && physLimit <= dma32Mask) gfp |= __GFP_DMA32;
  for (;;) {
    const pfn = yield* alloc_dma_pages(cur, gfp, bytes, physLimit);
    if (pfn >= 0) return { phys: page_to_phys(m, pfn), backing: { from: 'buddy', pfn, order, pages, decrypted: force_dma_unencrypted(m) } };
    if (pfn !== AGAIN) return null;
    // The block landed above the limit: try again one zone lower.
    if (dma32Mask >= 0 && physLimit < DMA_BIT_MASK(64) && (gfp & (__GFP_DMA32 | __GFP_DMA)) === 0) gfp |= __GFP_DMA32;
    else if (dmaMask >= 0 && (gfp & __GFP_DMA) === 0) gfp = (gfp & ~__GFP_DMA32) | __GFP_DMA;
    else return null;
  }
}

/**
 * swiotlb_free_tlb: back to the atomic pool, or re-encrypt and free (a CMA chunk goes back to its
 * area). Pages that fail re-encryption are leaked, as upstream.
 */
export function* swiotlb_free_tlb(cur: Task, dev: device | null, buf: TlbBuffer, bytes: number, area: cma | null = null): KernelBody<void> {
  const m = cur.cpu.machine;
  const b = buf.backing;
  if (b.from === 'atomic_pool') {
    if (dev !== null && (yield* dma_free_from_pool(cur, dev, buf.phys, bytes))) return;
  }
  if (b.from !== 'buddy' && b.from !== 'cma') return;
  const ps = mm(m).phys.pageSize;
  if ((yield* set_memory_encrypted(cur, page_address(m, b.pfn), Math.ceil(bytes / ps))) !== 0) {
    cur.thread.sim.count(M_LEAKED_PAGES, b.pages);
    return;
  }
  if (b.from === 'buddy') __free_pages(cur, b.pfn, b.order);
  else if (area !== null) yield* cma_release(cur, area, b.pfn, b.pages);
}

/**
 * Make the io_tlb_pool for a buffer already obtained: the slot array (__get_free_pages with the
 * caller's gfp), the per-slot init, and the area locks. Frees nothing on failure (returns null).
 */
export function* swiotlb_init_late_pool(cur: Task, dev: device | null, buf: TlbBuffer, nslabs: number, nareas: number, desc: number, gfp: number, name: string): KernelBody<io_tlb_pool | null> {
  const m = cur.cpu.machine;
  const slotsOrder = get_order(nslabs * IO_TLB_SLOT_BYTES, mm(m).phys.pageSize);
  const slotsPfn = yield* alloc_pages(cur, gfp, slotsOrder);
  if (slotsPfn < 0) return null;
  yield cur.thread.work(nslabs * POOL_INIT_SLOT_NS);
  const pool = new io_tlb_pool(buf.phys, nslabs, nareas);
  pool.late_alloc = true;
  pool.backing = buf.backing;
  pool.attach(m, name);
  meta.set(pool, { desc, slotsPfn, slotsOrder, dev, overhead: 2 ** slotsOrder * mm(m).phys.pageSize + IO_TLB_POOL_BYTES + IO_TLB_AREA_BYTES * nareas });
  return pool;
}

/**
 * swiotlb_alloc_pool(dev, minslabs, nslabs, nareas, phys_limit, gfp): a pool of at most one
 * MAX_PAGE_ORDER block, halving (segment-aligned) down to `minslabs` while the buffer cannot be
 * had. Null when nothing could be allocated.
 */
export function* swiotlb_alloc_pool(cur: Task, dev: device | null, minslabs: number, nslabsIn: number, nareasIn: number, physLimit: number, gfp: number, name: string): KernelBody<io_tlb_pool | null> {
  const m = cur.cpu.machine;
  let nslabs = nslabsIn;
  let nareas = nareasIn;
  const max = swiotlb_max_pool_slabs(m);
  if (nslabs > max) {
    nslabs = max;
    nareas = limit_nareas(nareas, nslabs);
  }
  const desc = yield* kzalloc(cur, IO_TLB_POOL_BYTES + IO_TLB_AREA_BYTES * nareas, gfp);
  if (desc === 0) return null;
  let buf: TlbBuffer | null;
  while ((buf = yield* swiotlb_alloc_tlb(cur, dev, nslabs << IO_TLB_SHIFT, physLimit, gfp)) === null) {
    if (nslabs <= minslabs) {
      yield* kfree(cur, desc);
      return null;
    }
    nslabs = Math.ceil((nslabs >> 1) / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE;
    nareas = limit_nareas(nareas, nslabs);
  }
  const pool = yield* swiotlb_init_late_pool(cur, dev, buf, nslabs, nareas, desc, gfp, name);
  if (pool === null) {
    yield* swiotlb_free_tlb(cur, dev, buf, nslabs << IO_TLB_SHIFT);
    yield* kfree(cur, desc);
  }
  return pool;
}

/**
 * swiotlb_dyn_free: free a late pool (the RCU callback after a transient pool's unmap, or
 * directly when a fresh transient pool had no room). Marks the pool freed: no lookup may
 * return it from then on.
 */
export function* swiotlb_dyn_free(cur: Task, pool: io_tlb_pool, area: cma | null = null): KernelBody<void> {
  const md = meta.get(pool);
  if (md !== undefined) __free_pages(cur, md.slotsPfn, md.slotsOrder);
  yield* swiotlb_free_tlb(cur, md?.dev ?? null, { phys: pool.start, backing: pool.backing }, pool.nslabs * IO_TLB_SIZE, area);
  if (md !== undefined) yield* kfree(cur, md.desc);
  pool.freed = true;
}

/**
 * The walk behind is_swiotlb_buffer over one RCU list (newest first): the pool holding addr or
 * null. Range checks made are added to `steps.n`.
 */
export function swiotlb_walk_pools(pools: readonly io_tlb_pool[], addr: number, steps: { n: number }): io_tlb_pool | null {
  for (let i = 0; i < pools.length; i++) {
    steps.n++;
    if (pools[i].contains(addr)) return pools[i];
  }
  return null;
}

/**
 * is_swiotlb_buffer + the pool lookup of a growth design: under rcu_read_lock, walk each RCU list
 * in turn (global pools, then a device's transient pools), charging the range checks inside the
 * read-side section (a grace period waits for them), and fill `out` from the pool found.
 */
export function* swiotlb_rcu_lookup(cur: Task, lists: readonly (readonly io_tlb_pool[])[], tlbAddr: number, out: BounceRef, steps: { n: number }): KernelBody<boolean> {
  yield* rcu_read_lock(cur);
  steps.n = 0;
  let pool: io_tlb_pool | null = null;
  for (let i = 0; i < lists.length && pool === null; i++) pool = swiotlb_walk_pools(lists[i], tlbAddr, steps);
  const sim = cur.thread.sim;
  const n = steps.n;
  sim.count(M_LOOKUP_STEPS, n);
  if (pool !== null) {
    if (pool.freed) sim.count(M_LOOKUP_FREED, 1);
    pool_lookup(pool, tlbAddr, out);
  }
  if (n > 0) yield cur.thread.work(n * POOL_CHECK_NS);
  yield* rcu_read_unlock(cur);
  return pool !== null;
}
