/**
 * struct io_tlb_mem: the allocator a device bounces through (docs/kernel-facts.md §1.2, 1.8, 1.9): the
 * default pool, the pools list newest first, the growth flags, and the debugfs counters
 * (io_tlb_used, io_tlb_used_hiwater, io_tlb_transient_nslabs).
 */
import type { spinlock_t } from '../../kernel/spinlock';
import type { io_tlb_pool } from './pool';
import { swiotlb_profile, type SwiotlbProfile } from './profile';

/** The order in which swiotlb_find_slots walks pools and areas (docs/kernel-facts.md §1.4). */
export type SearchOrder = 'area-major' | 'pool-major';

/** struct io_tlb_mem: what a device allocates bounce buffers from. */
export class io_tlb_mem {
  readonly defpool: io_tlb_pool;
  /** Pools newest first (list_add_rcu at the head); the default pool is last. */
  readonly pools: io_tlb_pool[];
  /** Slots in non-transient pools (io_tlb_nslabs). */
  nslabs: number;
  /** Every device bounces (swiotlb=force, CoCo, restricted pools). */
  force_bounce = false;
  /** A restricted pool that also serves coherent allocations. */
  for_alloc = false;
  /** CONFIG_SWIOTLB_DYNAMIC and no remap callback: the pool may grow. */
  can_grow = false;
  /** Highest address a grown pool may occupy. */
  phys_limit = Number.MAX_SAFE_INTEGER;
  /** Protects the pools list (plain spin_lock in add_mem_pool). Made per run. */
  lock: spinlock_t | null = null;
  /** Area-major (v6.8+, the default) or pool-major (v6.6 and the single-pool kernels). */
  searchOrder: SearchOrder = 'area-major';
  /** The kernel version's swiotlb behaviours (profile.ts); swiotlb_init sets it. */
  profile: SwiotlbProfile = swiotlb_profile(undefined);
  /** The area count of the default pool (default_nareas: what growth pools get). */
  readonly default_nareas: number;
  readonly default_nslabs: number;
  /** debugfs counters. */
  total_used = 0;
  used_hiwater = 0;
  transient_nslabs = 0;
  /** CPU page size (alignment of large mappings). */
  readonly pageSize: number;

  constructor(defpool: io_tlb_pool, pageSize: number) {
    this.defpool = defpool;
    this.pools = [defpool];
    this.nslabs = defpool.nslabs;
    this.default_nareas = defpool.nareas;
    this.default_nslabs = defpool.nslabs;
    this.pageSize = pageSize;
  }

  /** inc_used_and_hiwater. */
  inc_used(n: number): void {
    this.total_used += n;
    if (this.total_used > this.used_hiwater) this.used_hiwater = this.total_used;
  }

  dec_used(n: number): void {
    this.total_used -= n;
  }

  /** add_mem_pool (the caller holds mem->lock): newest first. */
  add_pool(pool: io_tlb_pool): void {
    this.pools.unshift(pool);
    this.nslabs += pool.nslabs;
  }

  /** Back to a boot state for the next run: only the default pool, counters zeroed. */
  reset(): void {
    this.pools.length = 0;
    this.pools.push(this.defpool);
    this.nslabs = this.defpool.nslabs;
    this.total_used = 0;
    this.used_hiwater = 0;
    this.transient_nslabs = 0;
    this.lock = null;
  }
}
