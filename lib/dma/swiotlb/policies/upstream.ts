/**
 * `upstream`: CONFIG_SWIOTLB_DYNAMIC as merged in v6.6 (Tesarik; docs/kernel-facts.md §1.9, 1.13).
 *
 *  map      search mem->pools (newest first) in the order mem.searchOrder names (v6.8+ area-major
 *           or v6.6 pool-major). On a miss: schedule_work(dyn_alloc) on system_wq (a pending item
 *           is not queued twice), then a transient pool of exactly nr_slots(size) slots and one
 *           area with GFP_NOWAIT | __GFP_NOWARN, its buffer from the coherent atomic pool in a CoCo
 *           guest (decrypting may sleep) or from the page allocator; searched, then put on the
 *           device's list under dev->dma_io_tlb_lock. Any success sets dev->dma_uses_io_tlb.
 *  lookup   nothing unless dev->dma_uses_io_tlb; then, inside rcu_read_lock, mem->pools and the
 *           device's transient pools are range-checked in turn (each check counted).
 *  release  a transient pool leaves the device list under its lock and is freed by call_rcu
 *           (re-encrypted and freed, or returned to the atomic pool); otherwise the slots go back.
 *  growth   the dyn_alloc worker allocates default_nslabs slots in default_nareas areas with
 *           GFP_KERNEL (may reclaim and do I/O), at most one MAX_PAGE_ORDER block (2048 slots with
 *           4 KiB pages, areas cut by limit_nareas), halving down to IO_TLB_MIN_SLABS, decrypts it
 *           in CoCo, and adds it at the head of mem->pools under the plain mem->lock. Pools are never
 *           freed or shrunk and nothing bounds the total.
 *
 * RCU lists are arrays replaced on every change (copy on write): a reader walking one keeps the
 * version it started with, as a list_for_each_entry_rcu walk does. The device list
 * (dev.dma_io_tlb_pools) is changed in place under its lock; its readers walk it without yielding.
 *
 * Metrics: swiotlb.grow_pools / grow_bytes / grow_failures (worker), swiotlb.transient_pools
 * (made), swiotlb.transient_failures, swiotlb.transient_peak (slots in transient pools at once),
 * swiotlb.lookup_steps (pool range checks), swiotlb.lookup_freed (must stay 0).
 */
import { ProgramError } from '../../../../scheduler';
import { __GFP_NOWARN, GFP_KERNEL, GFP_NOWAIT } from '../../../kernel/gfp';
import type { KernelBody, Machine } from '../../../kernel/machine';
import { call_rcu, rcu_read_lock, rcu_read_unlock } from '../../../kernel/rcu';
import { spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore } from '../../../kernel/spinlock';
import type { Task } from '../../../kernel/task';
import { DECLARE_WORK, schedule_work, type work_struct } from '../../../kernel/workqueue';
import { mmIfPresent } from '../../../mm/mm';
import { dma_limit, type device } from '../../device';
import { IO_TLB_MIN_SLABS, IO_TLB_SEGSIZE, IO_TLB_SIZE, nr_slots } from '../constants';
import { pool_assign, swiotlb_find_in_pools, swiotlb_release_slots, swiotlb_search_pool_area } from '../find';
import {
  M_GROW_BYTES,
  M_GROW_FAILURES,
  M_GROW_POOLS,
  M_TRANSIENT_FAILURES,
  M_TRANSIENT_PEAK,
  M_TRANSIENT_POOLS,
  RATELIMIT_BURST,
  RATELIMIT_NS,
  swiotlb_alloc_pool,
  late_pool_overhead,
  swiotlb_dyn_free,
  swiotlb_phys_limit,
  swiotlb_rcu_lookup,
} from '../grow';
import type { io_tlb_mem } from '../mem';
import { BounceRef, checkPolicyParams, registerSwiotlbPolicy, type PolicySpec, type SwiotlbPolicy } from '../policy';
import type { io_tlb_pool } from '../pool';
import type { SwiotlbState } from '../state';


export class UpstreamPolicy implements SwiotlbPolicy {
  readonly name: string = 'upstream';
  readonly params: Readonly<Record<string, unknown>> = {};
  /** mem->pools as RCU readers see it (replaced when a pool is added). */
  pools: readonly io_tlb_pool[] = [];
  /** Bytes of memory transient pools hold until their RCU callbacks free them. */
  transientBytes = 0;
  private dyn_alloc: work_struct | null = null;
  private mem: io_tlb_mem | null = null;
  private grown = 0;
  private transients = 0;
  private readonly steps = { n: 0 };

  attach(m: Machine, st: SwiotlbState): void {
    if (!st.mem.profile.dynamic) throw new ProgramError(`swiotlb policy upstream is CONFIG_SWIOTLB_DYNAMIC, first in v6.6: kernel ${st.mem.profile.version} has no growth or transient pools (use static)`);
    if (mmIfPresent(m) === null) throw new ProgramError('swiotlb policy upstream grows pools from the page allocator: call mm_init(m, ...) before dma_init');
    const mem = st.mem;
    this.mem = mem;
    mem.can_grow = true;
    mem.phys_limit = swiotlb_phys_limit(m, st.cc);
    this.pools = mem.pools.slice();
    const self = this;
    this.dyn_alloc = DECLARE_WORK(m, 'swiotlb_dyn_alloc', function* swiotlb_dyn_alloc(cur: Task) {
      yield* self.dynAlloc(cur);
    });
  }

  /** swiotlb_dyn_alloc: one growth pool per run of the work item. */
  private *dynAlloc(cur: Task): KernelBody<void> {
    const mem = this.mem!;
    const sim = cur.thread.sim;
    const pool = yield* swiotlb_alloc_pool(cur, null, IO_TLB_MIN_SLABS, mem.default_nslabs, mem.default_nareas, mem.phys_limit, GFP_KERNEL, `swiotlb_dyn_pool${++this.grown}`);
    if (pool === null) {
      sim.count(M_GROW_FAILURES, 1);
      const m = cur.cpu.machine;
      if (m.log.ratelimit('swiotlb_dyn_alloc', RATELIMIT_NS, RATELIMIT_BURST)) m.log.printk(cur.cpu.id, 'software IO TLB: Failed to allocate new pool');
      return;
    }
    // add_mem_pool: plain spin_lock (never taken from interrupts), list_add_rcu at the head
    yield* spin_lock(cur, mem.lock!);
    mem.add_pool(pool);
    this.pools = [pool, ...this.pools];
    yield* spin_unlock(cur, mem.lock!);
    sim.count(M_GROW_POOLS, 1);
    sim.count(M_GROW_BYTES, pool.nslabs * IO_TLB_SIZE);
  }

  *map(cur: Task, dev: device, orig: number, allocSize: number, offset: number, allocAlignMask: number): KernelBody<number> {
    const mem = dev.dma_io_tlb_mem!;
    const ref = new BounceRef();
    yield* rcu_read_lock(cur);
    let slot = yield* swiotlb_find_in_pools(cur, dev, mem, this.pools, orig, allocSize, allocAlignMask, ref);
    yield* rcu_read_unlock(cur);
    let pool: io_tlb_pool;
    if (slot >= 0) pool = ref.pool!;
    else {
      if (!mem.can_grow) return -1;
      // After v6.8 a request no pool run can hold (over 128 slots) fails here, before growth; v6.6
      // and v6.8 go on to kick dyn_alloc and allocate (and free) a transient pool for it.
      if (mem.profile.oversizeEarlyExit && nr_slots(allocSize) > IO_TLB_SEGSIZE) return -1;
      yield* schedule_work(cur, this.dyn_alloc!);
      const t = yield* this.transient(cur, dev, mem, orig, allocSize, allocAlignMask);
      if (t === null) return -1;
      pool = t.pool;
      slot = t.slot;
    }
    // WRITE_ONCE(dev->dma_uses_io_tlb, true); smp_mb(): before the address reaches the driver
    dev.dma_uses_io_tlb = true;
    return pool_assign(pool, slot, orig, allocSize, offset);
  }

  /** The transient-pool fallback of swiotlb_find_slots. */
  private *transient(cur: Task, dev: device, mem: io_tlb_mem, orig: number, allocSize: number, allocAlignMask: number): KernelBody<{ pool: io_tlb_pool; slot: number } | null> {
    const sim = cur.thread.sim;
    const nslabs = nr_slots(allocSize);
    const pool = yield* swiotlb_alloc_pool(cur, dev, nslabs, nslabs, 1, dma_limit(dev), GFP_NOWAIT | __GFP_NOWARN, `${dev.name}:transient${++this.transients}`);
    if (pool === null) {
      sim.count(M_TRANSIENT_FAILURES, 1);
      return null;
    }
    const slot = yield* swiotlb_search_pool_area(cur, dev, mem, pool, 0, orig, allocSize, allocAlignMask);
    if (slot < 0) {
      yield* swiotlb_dyn_free(cur, pool);
      sim.count(M_TRANSIENT_FAILURES, 1);
      return null;
    }
    pool.transient = true;
    const flags = yield* spin_lock_irqsave(cur, dev.dma_io_tlb_lock);
    dev.dma_io_tlb_pools.unshift(pool);
    yield* spin_unlock_irqrestore(cur, dev.dma_io_tlb_lock, flags);
    mem.transient_nslabs += pool.nslabs; // inc_transient_used
    this.transientBytes += this.heldBytes(cur, pool);
    sim.count(M_TRANSIENT_POOLS, 1);
    sim.peak(M_TRANSIENT_PEAK, mem.transient_nslabs);
    return { pool, slot };
  }

  /** A transient pool's buffer pages, slot array and descriptor. */
  private heldBytes(cur: Task, pool: io_tlb_pool): number {
    return pool.backing.pages * (mmIfPresent(cur.cpu.machine)?.phys.pageSize ?? 4096) + late_pool_overhead(pool);
  }

  *find(cur: Task, dev: device, tlbAddr: number, out: BounceRef): KernelBody<boolean> {
    const mem = dev.dma_io_tlb_mem;
    // smp_rmb(); READ_ONCE(dev->dma_uses_io_tlb): a device that never bounced has nothing to find
    if (mem === null || !dev.dma_uses_io_tlb) return false;
    return yield* swiotlb_rcu_lookup(cur, [this.pools, dev.dma_io_tlb_pools], tlbAddr, out, this.steps);
  }

  *release(cur: Task, dev: device, tlbAddr: number, ref: BounceRef): KernelBody<void> {
    const mem = dev.dma_io_tlb_mem!;
    const pool = ref.pool!;
    if (!pool.transient) {
      yield* swiotlb_release_slots(cur, dev, mem, pool, tlbAddr);
      return;
    }
    // swiotlb_del_transient
    mem.dec_used(pool.nslabs);
    const flags = yield* spin_lock_irqsave(cur, dev.dma_io_tlb_lock);
    const i = dev.dma_io_tlb_pools.indexOf(pool);
    if (i >= 0) dev.dma_io_tlb_pools.splice(i, 1);
    yield* spin_unlock_irqrestore(cur, dev.dma_io_tlb_lock, flags);
    const self = this;
    yield* call_rcu(cur, pool, function* swiotlb_dyn_free_rcu(c: Task, p: io_tlb_pool) {
      yield* swiotlb_dyn_free(c, p);
      self.transientBytes -= self.heldBytes(c, p);
    }, 'swiotlb_dyn_free');
    mem.transient_nslabs -= pool.nslabs; // dec_transient_used
  }

  /** Every pool's slots, the grown pools' slot arrays and descriptors, and the transient pools. */
  footprint(st: SwiotlbState): number {
    let overhead = 0;
    for (const p of this.pools) overhead += late_pool_overhead(p);
    return st.mem.nslabs * IO_TLB_SIZE + overhead + this.transientBytes;
  }
}

registerSwiotlbPolicy('upstream', (spec: PolicySpec) => {
  checkPolicyParams(spec, []);
  return new UpstreamPolicy();
});
