/**
 * `chunked-growth`: Christoph Hellwig's suggestion in the v2 review (2023-05-16, seeds/002):
 * "add more large chunks that are used just like the main swiotlb buffers ... allocate another
 * chunk of the same size in the background, similar to what we do with the pool in dma-pool.c",
 * with Catalin Marinas's refinement: kick the worker when usage passes a reserve limit.
 *
 *  map      the pools in mem.searchOrder, as upstream, but no transient pools: a miss fails the
 *           mapping (counted) and kicks growth. After a successful map, when free slots drop
 *           below `reserve` of the total and no growth is pending, schedule_work(chunk_alloc).
 *  growth   the worker (system_wq, process context) adds one chunk of `chunkBytes`: up to one
 *           MAX_PAGE_ORDER block (4 MiB with 4 KiB pages) from alloc_pages(GFP_KERNEL), larger
 *           from CMA (cma_alloc on the machine's default area: it sleeps, which the worker may),
 *           decrypted once in a CoCo guest, added at the head of mem->pools under mem->lock. At
 *           most `maxChunks`; if the new chunk still leaves usage past the reserve, it kicks again.
 *  lookup   the RCU list of chunks, newest first (each range check counted); no per-device list.
 *  release  swiotlb_release_slots. Chunks are never freed or shrunk (as dma-pool.c's pools).
 *
 * Tesarik's objections are what this design runs into: a MAX_ORDER chunk is small and often
 * unavailable on a fragmented machine, CMA only works from process context, and a mapping storm
 * faster than the worker fails maps until the chunk lands.
 *
 * Params: reserve (fraction of slots, 0 < reserve < 1, default 0.25), chunkBytes (default the
 * default pool's size; a multiple of a 256 KiB segment), maxChunks (default 8).
 * Metrics: swiotlb.grow_pools / grow_bytes / grow_cma_bytes / grow_failures, swiotlb.grow_kicks,
 * swiotlb.chunk_misses (maps that found no room), swiotlb.misses_while_growing,
 * swiotlb.grow_capped (a kick refused at maxChunks), swiotlb.lookup_steps, swiotlb.grow_latency_ns /
 * grow_latency_max_ns (kick to chunk added: the window).
 */
import { ProgramError } from '../../../../scheduler';
import { GFP_KERNEL } from '../../../kernel/gfp';
import type { KernelBody, Machine } from '../../../kernel/machine';
import { rcu_read_lock, rcu_read_unlock } from '../../../kernel/rcu';
import { spin_lock, spin_unlock } from '../../../kernel/spinlock';
import type { Task } from '../../../kernel/task';
import { DECLARE_WORK, schedule_work, type work_struct } from '../../../kernel/workqueue';
import { CMA_DEFAULT_NAME, cma_alloc, cma_area, cma_declarations, cma_release, type cma } from '../../../mm/cma';
import { set_memory_decrypted, set_memory_encrypted } from '../../../mm/decrypt';
import { mmIfPresent } from '../../../mm/mm';
import { page_to_phys } from '../../../mm/page-alloc';
import { get_order } from '../../../kernel/sizes';
import { kfree, kzalloc, page_address } from '../../../mm/slab';
import type { device } from '../../device';
import { IO_TLB_SEGSIZE, IO_TLB_SHIFT, IO_TLB_SIZE } from '../constants';
import { pool_assign, swiotlb_find_in_pools, swiotlb_release_slots } from '../find';
import {
  force_dma_unencrypted,
  IO_TLB_AREA_BYTES,
  IO_TLB_POOL_BYTES,
  late_pool_overhead,
  limit_nareas,
  M_GROW_BYTES,
  M_GROW_FAILURES,
  M_GROW_POOLS,
  M_LEAKED_PAGES,
  RATELIMIT_BURST,
  RATELIMIT_NS,
  swiotlb_alloc_tlb,
  swiotlb_free_tlb,
  swiotlb_init_late_pool,
  swiotlb_phys_limit,
  swiotlb_rcu_lookup,
  type TlbBuffer,
} from '../grow';
import type { io_tlb_mem } from '../mem';
import { BounceRef, checkPolicyParams, registerSwiotlbPolicy, type PolicySpec, type SwiotlbPolicy } from '../policy';
import type { io_tlb_pool } from '../pool';
import type { SwiotlbState } from '../state';

export const M_GROW_CMA_BYTES = 'swiotlb.grow_cma_bytes';
export const M_GROW_KICKS = 'swiotlb.grow_kicks';
export const M_GROW_CAPPED = 'swiotlb.grow_capped';
export const M_CHUNK_MISSES = 'swiotlb.chunk_misses';
export const M_MISSES_WHILE_GROWING = 'swiotlb.misses_while_growing';
/** From the kick (schedule_work) to the chunk on mem->pools: the window in which maps can fail. */
export const M_GROW_LATENCY_NS = 'swiotlb.grow_latency_ns';
export const M_GROW_LATENCY_MAX_NS = 'swiotlb.grow_latency_max_ns';

/** CONFIG_CMA_ALIGNMENT: dma_alloc_from_contiguous aligns to at most 2^8 pages. */
const CMA_ALIGNMENT = 8;

export interface ChunkedGrowthParams {
  reserve: number;
  /** null: the default pool's size, resolved at attach. */
  chunkBytes: number | null;
  maxChunks: number;
}

export class ChunkedGrowthPolicy implements SwiotlbPolicy {
  readonly name: string = 'chunked-growth';
  readonly params: Readonly<Record<string, unknown>>;
  /** mem->pools as RCU readers see it (replaced when a chunk is added). */
  pools: readonly io_tlb_pool[] = [];
  /** Chunks added so far. */
  chunks = 0;
  /** A chunk_alloc run is queued or running. */
  growing = false;
  /** When the pending run was kicked. */
  private kickedAt = 0;
  private mem: io_tlb_mem | null = null;
  private work: work_struct | null = null;
  private area: cma | null = null;
  private chunkSlabs = 0;
  private chunkAreas = 1;
  private blockBytes = 0;
  private readonly steps = { n: 0 };

  constructor(readonly p: ChunkedGrowthParams) {
    this.params = { ...p };
  }

  attach(m: Machine, st: SwiotlbState): void {
    const model = mmIfPresent(m);
    if (model === null) throw new ProgramError('swiotlb policy chunked-growth allocates chunks from the page allocator: call mm_init(m, ...) before dma_init');
    const mem = st.mem;
    this.mem = mem;
    mem.phys_limit = swiotlb_phys_limit(m, st.cc);
    this.pools = mem.pools.slice();
    const bytes = this.p.chunkBytes ?? mem.defpool.nslabs * IO_TLB_SIZE;
    this.chunkSlabs = bytes >> IO_TLB_SHIFT;
    let nareas = limit_nareas(mem.default_nareas, this.chunkSlabs);
    while (nareas > 1 && this.chunkSlabs % nareas !== 0) nareas >>= 1;
    this.chunkAreas = nareas;
    const phys = model.phys;
    this.blockBytes = phys.pageSize * 2 ** phys.maxOrder;
    (this.params as Record<string, unknown>).chunkBytes = bytes;
    if (bytes > this.blockBytes) {
      const decls = cma_declarations(phys);
      if (decls.length === 0) throw new ProgramError(`swiotlb policy chunked-growth: a ${bytes >> 20} MiB chunk is larger than a MAX_PAGE_ORDER block (${this.blockBytes >> 20} MiB) and needs CMA: declare an area with cma_declare_contiguous on the memory image`);
      this.area = cma_area(m, decls.some((d) => d.name === CMA_DEFAULT_NAME) ? CMA_DEFAULT_NAME : decls[0].name);
    }
    const self = this;
    this.work = DECLARE_WORK(m, 'swiotlb_chunk_alloc', function* swiotlb_chunk_alloc(cur: Task) {
      yield* self.chunkAlloc(cur);
    });
  }

  /** Queue the worker unless it is pending or the cap is reached. */
  private *kick(cur: Task): KernelBody<void> {
    if (this.growing) return;
    const sim = cur.thread.sim;
    if (this.chunks >= this.p.maxChunks) {
      sim.count(M_GROW_CAPPED, 1);
      return;
    }
    this.growing = true;
    this.kickedAt = sim.now();
    sim.count(M_GROW_KICKS, 1);
    yield* schedule_work(cur, this.work!);
  }

  private belowReserve(mem: io_tlb_mem): boolean {
    return mem.nslabs - mem.total_used < this.p.reserve * mem.nslabs;
  }

  /** The chunk's buffer: buddy up to a MAX_PAGE_ORDER block, CMA above. Sleeps. */
  private *chunkBuffer(cur: Task, bytes: number): KernelBody<TlbBuffer | null> {
    const mem = this.mem!;
    if (this.area === null) return yield* swiotlb_alloc_tlb(cur, null, bytes, mem.phys_limit, GFP_KERNEL);
    const m = cur.cpu.machine;
    const ps = mmIfPresent(m)!.phys.pageSize;
    const count = Math.ceil(bytes / ps);
    const order = get_order(bytes, ps);
    const pfn = yield* cma_alloc(cur, this.area, count, Math.min(order, CMA_ALIGNMENT), false);
    if (pfn < 0) return null;
    const phys = page_to_phys(m, pfn);
    if (phys + bytes - 1 > mem.phys_limit) {
      yield* cma_release(cur, this.area, pfn, count);
      return null;
    }
    const vaddr = page_address(m, pfn);
    if ((yield* set_memory_decrypted(cur, vaddr, count)) !== 0) {
      if ((yield* set_memory_encrypted(cur, vaddr, count)) === 0) yield* cma_release(cur, this.area, pfn, count);
      else cur.thread.sim.count(M_LEAKED_PAGES, count);
      return null;
    }
    cur.thread.sim.count(M_GROW_CMA_BYTES, bytes);
    return { phys, backing: { from: 'cma', pfn, order, pages: count, decrypted: force_dma_unencrypted(m) } };
  }

  /** The worker: one chunk of chunkBytes, then another kick if usage is still past the reserve. */
  private *chunkAlloc(cur: Task): KernelBody<void> {
    const mem = this.mem!;
    const m = cur.cpu.machine;
    const sim = cur.thread.sim;
    const nslabs = this.chunkSlabs;
    const bytes = nslabs * IO_TLB_SIZE;
    let pool: io_tlb_pool | null = null;
    const desc = yield* kzalloc(cur, IO_TLB_POOL_BYTES + IO_TLB_AREA_BYTES * this.chunkAreas, GFP_KERNEL);
    if (desc !== 0) {
      const buf = yield* this.chunkBuffer(cur, bytes);
      if (buf !== null) {
        pool = yield* swiotlb_init_late_pool(cur, null, buf, nslabs, this.chunkAreas, desc, GFP_KERNEL, `swiotlb_chunk${this.chunks + 1}`);
        if (pool === null) yield* swiotlb_free_tlb(cur, null, buf, bytes, this.area);
      }
      if (pool === null) yield* kfree(cur, desc);
    }
    if (pool === null) {
      this.growing = false;
      sim.count(M_GROW_FAILURES, 1);
      if (m.log.ratelimit('swiotlb_chunk_alloc', RATELIMIT_NS, RATELIMIT_BURST)) m.log.printk(cur.cpu.id, `software IO TLB: no memory for a ${bytes >> 10} KiB chunk`);
      return;
    }
    yield* spin_lock(cur, mem.lock!);
    mem.add_pool(pool);
    this.pools = [pool, ...this.pools];
    yield* spin_unlock(cur, mem.lock!);
    this.chunks++;
    sim.count(M_GROW_POOLS, 1);
    sim.count(M_GROW_BYTES, bytes);
    const latency = sim.now() - this.kickedAt;
    sim.count(M_GROW_LATENCY_NS, latency);
    sim.peak(M_GROW_LATENCY_MAX_NS, latency);
    this.growing = false;
    if (this.belowReserve(mem)) yield* this.kick(cur);
  }

  *map(cur: Task, dev: device, orig: number, allocSize: number, offset: number, allocAlignMask: number): KernelBody<number> {
    const mem = dev.dma_io_tlb_mem!;
    const ref = new BounceRef();
    yield* rcu_read_lock(cur);
    const slot = yield* swiotlb_find_in_pools(cur, dev, mem, this.pools, orig, allocSize, allocAlignMask, ref);
    yield* rcu_read_unlock(cur);
    if (slot < 0) {
      const sim = cur.thread.sim;
      sim.count(M_CHUNK_MISSES, 1);
      if (this.growing) sim.count(M_MISSES_WHILE_GROWING, 1);
      // no room: the mapping fails now; the chunk (if one can be had) helps later mappings
      yield* this.kick(cur);
      return -1;
    }
    const tlb = pool_assign(ref.pool!, slot, orig, allocSize, offset);
    if (this.belowReserve(mem)) yield* this.kick(cur);
    return tlb;
  }

  *find(cur: Task, dev: device, tlbAddr: number, out: BounceRef): KernelBody<boolean> {
    if (dev.dma_io_tlb_mem === null) return false;
    return yield* swiotlb_rcu_lookup(cur, [this.pools], tlbAddr, out, this.steps);
  }

  *release(cur: Task, dev: device, tlbAddr: number, ref: BounceRef): KernelBody<void> {
    yield* swiotlb_release_slots(cur, dev, dev.dma_io_tlb_mem!, ref.pool!, tlbAddr);
  }

  /** Every pool's slots plus the chunks' slot arrays and descriptors. */
  footprint(st: SwiotlbState): number {
    let overhead = 0;
    for (const p of this.pools) overhead += late_pool_overhead(p);
    return st.mem.nslabs * IO_TLB_SIZE + overhead;
  }
}

const SEGMENT_BYTES = IO_TLB_SEGSIZE * IO_TLB_SIZE;

registerSwiotlbPolicy('chunked-growth', (spec: PolicySpec) => {
  checkPolicyParams(spec, ['reserve', 'chunkBytes', 'maxChunks']);
  const reserve = spec.reserve ?? 0.25;
  if (typeof reserve !== 'number' || !(reserve > 0 && reserve < 1)) throw new ProgramError(`swiotlb policy chunked-growth: reserve must be a fraction between 0 and 1, got ${String(spec.reserve)}`);
  const chunkBytes = spec.chunkBytes ?? null;
  if (chunkBytes !== null && (typeof chunkBytes !== 'number' || !Number.isSafeInteger(chunkBytes) || chunkBytes <= 0 || chunkBytes % SEGMENT_BYTES !== 0)) {
    throw new ProgramError(`swiotlb policy chunked-growth: chunkBytes must be a positive multiple of 256 KiB (one 128-slot segment), got ${String(spec.chunkBytes)}`);
  }
  const maxChunks = spec.maxChunks ?? 8;
  if (typeof maxChunks !== 'number' || !Number.isInteger(maxChunks) || maxChunks < 1) throw new ProgramError(`swiotlb policy chunked-growth: maxChunks must be a positive integer, got ${String(spec.maxChunks)}`);
  return new ChunkedGrowthPolicy({ reserve, chunkBytes, maxChunks });
});
