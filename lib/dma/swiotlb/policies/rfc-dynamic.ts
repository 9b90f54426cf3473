/**
 * HISTORICAL: a posted RFC that was never merged in this form, kept to transcribe its thread
 * (lib/dma/historical/ holds the other historical designs; this one stays beside the policies it
 * is compared with, and its index-lock flavour is a parameter of it, not a separate design).
 *
 * `rfc-dynamic`: Tesarik's RFC v1 (2023-03-20, docs/kernel-facts.md §1.12). A mapping swiotlb_dyn_map
 * accepts gets its own buffer before the pool is tried (dyn-buffer.ts), on every device but a
 * restricted pool's, recorded in ONE maple tree in struct io_tlb_mem (dyn_slots) under an
 * external lock in io_tlb_mem (dyn_lock): every device's lookup of an address outside the pool
 * takes that one lock (v2's changelog: "Track dynamic buffers per device instead of per swiotlb"). Blocking allocations use GFP_KERNEL with DMA_ATTR_MAY_SLEEP (maySleepGfp, the
 * RFC's choice; Hellwig: "Without GFP_NOIO allocations this will deadlock eventually").
 *
 * The index lock's flavour is a parameter: spin_lock_irqsave (default, what the RFC did, since
 * unmap runs from hardirq completion) or spin_lock, the bug in which a completion interrupt
 * landing on the CPU that holds the lock in process context spins forever (lockdep reports the
 * inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage first).
 *
 * Cost model of the maple tree: a lookup walks ceil(log16 n) levels (at least one) of fanout-16
 * nodes at MAPLE_LEVEL_NS each; every store allocates a node (kmalloc of MAPLE_NODE_BYTES with
 * GFP_NOWAIT under the lock, as mtree_store_range was called) and may fail, failing the mapping;
 * an erase frees one. Every lookup of an address outside the pool takes the lock, even on a
 * device without dynamic buffers (the overhead Hellwig objected to).
 *
 * `reserve` (not in the RFC; the fixed variant of the deadlock claim, docs/kernel-facts.md §3.3): min_nr
 * elements per mempool for the descriptor, the maple node and the buffer pages (of order
 * `reserveOrder`; larger buffers bypass it), created once in process context by
 * swiotlb_dyn_reserve_init (a driver's probe) - the upstream pattern that lets an I/O path make
 * progress with GFP_NOIO when the allocator has nothing: mempool_alloc tries the allocator
 * without reclaim or I/O, then takes a reserved element, then waits for one to come back.
 *
 * Simplified: the node bookkeeping is one node per entry instead of the maple tree's real splits and RCU frees;
 * one reserve per swiotlb (not per device).
 */
import { ProgramError } from '../../../../scheduler';
import { GFP_NOWAIT, __GFP_NOWARN } from '../../../kernel/gfp';
import type { KernelBody, Machine } from '../../../kernel/machine';
import type { Task } from '../../../kernel/task';
import { mempool_alloc, mempool_create_kmalloc_pool, mempool_create_page_pool, mempool_free, type mempool_t } from '../../../mm/mempool';
import { get_order } from '../../../kernel/sizes';
import { kfree, kmalloc } from '../../../mm/slab';
import type { device } from '../../device';
import { swiotlb_state } from '../state';
import { registerSwiotlbPolicy, type PolicySpec } from '../policy';
import { RbTree, type RbNode } from '../rbtree';
import { DEFINE_SPINLOCK } from '../../../kernel/spinlock';
import { lockdep_set_class } from '../../../kernel/lock';
import { DYN_SLOT_BYTES, DynBufferPolicy, dynParams, type DynDeviceIndex, type DynIndex, type DynParams, type io_tlb_dyn_slot } from './dyn-buffer';

/** sizeof(struct maple_node). */
export const MAPLE_NODE_BYTES = 256;
/** Model cost of searching one fanout-16 node (pivot scan). */
export const MAPLE_LEVEL_NS = 12;
export const M_MAPLE_NODES = 'swiotlb.maple_node_allocs';
export const M_RESERVE_INIT_FAILED = 'swiotlb.dyn_reserve_init_failed';

/** ceil(log16 n), at least 1: the levels a lookup walks. */
export function mapleLevels(n: number): number {
  let levels = 1;
  for (let cap = 16; cap < n; cap *= 16) levels++;
  return levels;
}

/** The mempools of `reserve` (one per swiotlb). */
export interface DynReserve {
  slots: mempool_t<number>;
  nodes: mempool_t<number>;
  pages: mempool_t<number>;
  order: number;
}

class MapleIndex implements DynIndex {
  private readonly tree = new RbTree<io_tlb_dyn_slot>();
  private readonly nodes: number[] = [];
  lastSteps = 0;

  constructor(private readonly reserve: () => DynReserve | null) {}

  get count(): number {
    return this.tree.size;
  }

  lookup(addr: number): io_tlb_dyn_slot | null {
    this.lastSteps = mapleLevels(this.tree.size);
    const n = this.tree.floor(addr);
    return n !== null && n.value.contains(addr) ? n.value : null;
  }

  *insert(cur: Task, b: io_tlb_dyn_slot): KernelBody<boolean> {
    const r = this.reserve();
    const node = r !== null ? ((yield* mempool_alloc(cur, r.nodes, GFP_NOWAIT | __GFP_NOWARN)) ?? 0) : yield* kmalloc(cur, MAPLE_NODE_BYTES, GFP_NOWAIT | __GFP_NOWARN);
    if (node === 0) return false;
    cur.thread.sim.count(M_MAPLE_NODES, 1);
    this.nodes.push(node);
    b.node = this.tree.insert(b.base, b);
    return true;
  }

  *remove(cur: Task, b: io_tlb_dyn_slot): KernelBody<void> {
    this.tree.erase(b.node as RbNode<io_tlb_dyn_slot>);
    b.node = null;
    const node = this.nodes.pop();
    if (node === undefined) return;
    const r = this.reserve();
    if (r !== null) yield* mempool_free(cur, node, r.nodes);
    else yield* kfree(cur, node);
  }
}

export interface RfcReserveParams {
  /** min_nr of each reserve mempool (0: none, the RFC as posted). */
  reserve: number;
  /** Order of the reserve's page elements. */
  reserveOrder: number;
}

export class RfcDynamicPolicy extends DynBufferPolicy {
  protected readonly skipWhenEmpty = false;
  protected readonly stepNs = MAPLE_LEVEL_NS;
  /** This run's reserve, once swiotlb_dyn_reserve_init made it. */
  reservePools: DynReserve | null = null;

  constructor(
    p: DynParams,
    readonly r: RfcReserveParams = { reserve: 0, reserveOrder: 0 },
  ) {
    super('rfc-dynamic', p);
    (this.params as Record<string, unknown>).reserve = r.reserve;
    (this.params as Record<string, unknown>).reserveOrder = r.reserveOrder;
  }

  override attach(m: Machine, st: Parameters<DynBufferPolicy['attach']>[1]): void {
    super.attach(m, st);
    this.reservePools = null;
    this.shared = null;
  }

  /** io_tlb_mem's dyn_slots tree and dyn_lock (one per swiotlb, made on first use in a run). */
  private shared: DynDeviceIndex | null = null;

  protected newIndex(m: Machine): DynDeviceIndex {
    if (this.shared === null) {
      const lock = DEFINE_SPINLOCK(m, 'io_tlb_default_mem.dyn_lock');
      lockdep_set_class(lock, '&mem->dyn_lock');
      this.shared = { lock, index: new MapleIndex(() => this.pools()), lockedAt: 0 };
    }
    return this.shared;
  }

  protected override existingIndex(): DynDeviceIndex | undefined {
    return this.shared ?? undefined;
  }

  /** The reserve, once created (before that, and without one, the allocator directly). */
  private pools(): DynReserve | null {
    return this.reservePools;
  }

  protected override *allocSlot(cur: Task, gfp: number): KernelBody<number> {
    const r = this.pools();
    if (r === null) return yield* super.allocSlot(cur, gfp);
    return (yield* mempool_alloc(cur, r.slots, gfp)) ?? 0;
  }

  protected override *freeSlot(cur: Task, meta: number): KernelBody<void> {
    const r = this.pools();
    if (r === null) return yield* super.freeSlot(cur, meta);
    yield* mempool_free(cur, meta, r.slots);
  }

  protected override *allocPages(cur: Task, dev: device, bytes: number, gfp: number): KernelBody<number> {
    const r = this.pools();
    if (r === null || get_order(bytes, dev.dma_io_tlb_mem!.pageSize) > r.order) return yield* super.allocPages(cur, dev, bytes, gfp);
    return (yield* mempool_alloc(cur, r.pages, gfp)) ?? -1;
  }

  protected override *freePages(cur: Task, dev: device, pfn: number, bytes: number): KernelBody<void> {
    const r = this.pools();
    if (r === null || get_order(bytes, dev.dma_io_tlb_mem!.pageSize) > r.order) return yield* super.freePages(cur, dev, pfn, bytes);
    yield* mempool_free(cur, pfn, r.pages);
  }
}

/**
 * Create rfc-dynamic's reserve (its `reserve` parameter) in process context, as a driver creates
 * its mempools at probe: mempool_create_kmalloc_pool for descriptors and maple nodes and
 * mempool_create_page_pool for buffers, with `gfp` (GFP_KERNEL upstream). False if it could not
 * be filled; nothing to do for another design or reserve 0.
 */
export function* swiotlb_dyn_reserve_init(cur: Task, gfp: number): KernelBody<boolean> {
  const policy = swiotlb_state(cur.cpu.machine).policy;
  if (!(policy instanceof RfcDynamicPolicy) || policy.r.reserve === 0 || policy.reservePools !== null) return true;
  const n = policy.r.reserve;
  const slots = yield* mempool_create_kmalloc_pool(cur, n, DYN_SLOT_BYTES, gfp);
  const nodes = yield* mempool_create_kmalloc_pool(cur, n, MAPLE_NODE_BYTES, gfp);
  const pages = yield* mempool_create_page_pool(cur, n, policy.r.reserveOrder, gfp);
  if (slots === null || nodes === null || pages === null) {
    cur.thread.sim.count(M_RESERVE_INIT_FAILED, 1);
    return false;
  }
  policy.reservePools = { slots, nodes, pages, order: policy.r.reserveOrder };
  return true;
}

registerSwiotlbPolicy('rfc-dynamic', (spec: PolicySpec) => {
  if (spec.dynamic !== undefined && spec.dynamic !== true) throw new ProgramError('swiotlb policy rfc-dynamic: RFC v1 has no swiotlb=dynamic switch (dynamic buffers are always on); use v2-list for the opt-in');
  const p = dynParams(spec, { maySleepGfp: 'GFP_KERNEL', indexLock: 'spin_lock_irqsave', dynamicFirst: true, dynamic: true }, ['reserve', 'reserveOrder']);
  const r: RfcReserveParams = { reserve: 0, reserveOrder: 0 };
  for (const k of ['reserve', 'reserveOrder'] as const) {
    const v = spec[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || (k === 'reserveOrder' && v > 10)) throw new ProgramError(`swiotlb policy rfc-dynamic: ${k} must be ${k === 'reserve' ? 'a non-negative integer' : 'an integer from 0 to 10'}, got ${String(v)}`);
    r[k] = v;
  }
  return new RfcDynamicPolicy(p, r);
});
