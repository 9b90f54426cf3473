/**
 * What Tesarik's per-mapping designs share (RFC v1 2023-03-20, v2 2023-04-19 / RESEND 2023-05-09;
 * docs/kernel-facts.md §1.12), in the patches' order: swiotlb_tbl_map_single tries swiotlb_dyn_map FIRST and
 * searches the boot pool only when that gives nothing. swiotlb_dyn_map refuses (leaving the mapping
 * to the pool) a mapping smaller than a page, one with a non-zero per-mapping alloc_align_mask
 * (dma-iommu passes granule - 1), and any device with a min_align_mask ("DMA direct does not deal
 * with physical address constraints"; NVMe sets 0xfff, so NVMe never gets a dynamic buffer). RFC v1
 * applied this to every device whose io_tlb_mem is not a restricted pool; v2 made it opt-in with
 * the boot option swiotlb=dynamic (v2 5/7, off by default: the `dynamic` parameter). A buffer is a
 * kmalloc'ed descriptor (struct io_tlb_dyn_slot) plus pages from dma-direct, put in the design's
 * index (the RFC: one maple tree in io_tlb_mem under dyn_lock; v2: a per-device list), which
 * find() searches and unmap removes from.
 *
 * The allocation is dma_direct_alloc_pages as the patches call it: GFP_NOWAIT, or the design's
 * blocking GFP when the caller passes DMA_ATTR_MAY_SLEEP (GFP_KERNEL in the RFC, GFP_NOIO in v2
 * after Hellwig's deadlock remark). In a CoCo guest a blocking allocation is decrypted with
 * dma_set_decrypted (hypercalls and TLB flushes on every such map) and re-encrypted with
 * dma_set_encrypted on unmap (Kelley's objection); a non-blocking one comes from the atomic pool,
 * which is decrypted once, because decryption sleeps.
 *
 * A dynamic buffer is laid out as the pool would lay the same mapping out: the run starts at an
 * address aligned to max(alloc_align_mask + 1, 2 KiB) whose min_align_mask bits above the in-slot
 * offset match orig's, and tlb_addr = start + offset, so the device sees the same low bits as
 * with a pool slot. find() answers for an address inside the buffer as the pool's slot arrays
 * would (orig and remaining bytes of that 2 KiB step), so map.ts's bounce copies need nothing
 * else. Every locked index walk counts swiotlb.index_lookups: with the v6.3 base the patches were
 * posted against, a bounced unmap takes 3 (DMA_TO_DEVICE) or 4 (FROM_DEVICE: swiotlb_bounce looks
 * the buffer up again) - is_swiotlb_buffer in the CPU sync, swiotlb_bounce, is_swiotlb_buffer in
 * the unmap, swiotlb_dyn_unmap's own walk (map.ts, relookup).
 *
 * Costs: each index step costs the design's stepNs of CPU time and counts swiotlb.lookup_steps;
 * the index lock's wait and hold times are measured around the lock.
 *
 * `dynamicFirst: false` (pool first, a dynamic buffer only when the pool has no room) is not what
 * any posted version did; it is kept only as S7's declared "pool-order" perturbation.
 *
 * Simplified: the descriptor is a kmalloc of DYN_SLOT_BYTES with no contents.
 */
import { ProgramError } from '../../../../scheduler';
import { GFP_KERNEL, GFP_NOFS, GFP_NOIO, GFP_NOWAIT, __GFP_NOWARN, gfpflags_allow_blocking } from '../../../kernel/gfp';
import { lockdep_set_class } from '../../../kernel/lock';
import type { KernelBody, Machine } from '../../../kernel/machine';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore, type spinlock_t } from '../../../kernel/spinlock';
import { fn } from '../../../kernel/stack';
import type { Task } from '../../../kernel/task';
import { page_to_phys } from '../../../mm/page-alloc';
import { kfree, kmalloc, page_address, PAGE_OFFSET } from '../../../mm/slab';
import { DMA_ATTR_MAY_SLEEP } from '../../attrs';
import type { device } from '../../device';
import { __dma_direct_alloc_pages, __dma_direct_free_pages, dma_set_decrypted, dma_set_encrypted } from '../../direct';
import { dma_alloc_from_pool, dma_free_from_pool } from '../../pool';
import { INVALID_PHYS_ADDR, IO_TLB_SIZE } from '../constants';
import { pool_assign, pool_containing, pool_lookup, swiotlb_find_in_pools, swiotlb_release_slots } from '../find';
import { BounceRef, checkPolicyParams, type PolicySpec, type SwiotlbPolicy } from '../policy';
import type { SwiotlbState } from '../state';
import { M_LOOKUP_STEPS } from './static';

export const M_DYN_ALLOCS = 'swiotlb.dyn_allocs';
export const M_DYN_FREES = 'swiotlb.dyn_frees';
export const M_DYN_BYTES_PEAK = 'swiotlb.dyn_bytes_peak';
export const M_DYN_ALLOC_FAILURES = 'swiotlb.dyn_alloc_failures';
/** Mappings swiotlb_dyn_map refused (too small, alloc_align_mask, min_align_mask): left to the pool. */
export const M_DYN_REFUSED = 'swiotlb.dyn_refused';
/** Mappings whose dynamic buffer could not be had, so the pool was searched after all. */
export const M_DYN_FALLBACKS = 'swiotlb.dyn_fallbacks';
export const M_INDEX_LOCK_WAIT_NS = 'swiotlb.index_lock_wait_ns';
export const M_INDEX_LOCK_HOLD_NS = 'swiotlb.index_lock_hold_ns';
export const M_INDEX_LOOKUPS = 'swiotlb.index_lookups';
/** Index lookups that found a buffer / found none (an address the device mapped without bouncing), and their steps. */
export const M_INDEX_HITS = 'swiotlb.index_hits';
export const M_INDEX_HIT_STEPS = 'swiotlb.index_hit_steps';
export const M_INDEX_MISSES = 'swiotlb.index_misses';
export const M_INDEX_MISS_STEPS = 'swiotlb.index_miss_steps';
/** Most dynamic buffers one device's index held at once (the list length of v2). */
export const M_INDEX_LEN_PEAK = 'swiotlb.index_len_peak';

/** sizeof(struct io_tlb_dyn_slot) on 64-bit (list head or tree node + orig, size, page, dma). */
export const DYN_SLOT_BYTES = 48;

export type IndexLockFlavour = 'spin_lock' | 'spin_lock_irqsave';
export type MaySleepGfp = 'GFP_KERNEL' | 'GFP_NOIO' | 'GFP_NOFS';
const GFP_BY_NAME: Record<MaySleepGfp, number> = { GFP_KERNEL, GFP_NOIO, GFP_NOFS };

/** struct io_tlb_dyn_slot: one dynamically allocated bounce buffer. */
export class io_tlb_dyn_slot {
  /** The index's own link (a tree node), if it keeps one. */
  node: unknown = null;
  /** Unmapped and given back: a lookup must never return it again. */
  freed = false;

  constructor(
    readonly dev: device,
    /** Physical address and size of the pages backing it. */
    readonly base: number,
    readonly bytes: number,
    /** Where the pages came from: dma-direct (pfn) or the atomic pool (CoCo, cannot sleep). */
    readonly from: 'direct' | 'atomic_pool',
    readonly pfn: number,
    /** dma_set_decrypted succeeded on it (CoCo): re-encrypt before freeing. */
    readonly decrypted: boolean,
    /** The kmalloc'ed descriptor. */
    readonly meta: number,
    /** Start of the mapping's run (2 KiB aligned), and what the pool would record for it. */
    readonly start: number,
    readonly orig: number,
    readonly allocSize: number,
    /** orig & min_align_mask & (alloc_align_mask | 2047): in-slot offset plus pad slots. */
    readonly offset: number,
  ) {}

  get tlbAddr(): number {
    return this.start + this.offset;
  }

  contains(addr: number): boolean {
    return addr >= this.base && addr < this.base + this.bytes;
  }

  /** Fill `out` as pool_lookup would for the 2 KiB step of the run holding `addr`. */
  lookup(addr: number, out: BounceRef): void {
    const pad = Math.floor(this.offset / IO_TLB_SIZE);
    const k = Math.floor((addr - this.start) / IO_TLB_SIZE) - pad;
    out.pool = null;
    out.rec = this;
    if (k < 0) {
      out.orig = INVALID_PHYS_ADDR;
      out.remaining = 0;
      return;
    }
    out.orig = this.orig + k * IO_TLB_SIZE;
    out.remaining = this.allocSize - ((this.offset & (IO_TLB_SIZE - 1)) + (pad + k) * IO_TLB_SIZE);
  }
}

/** A design's per-device index of dynamic buffers (called with the index lock held). */
export interface DynIndex {
  readonly count: number;
  /** Steps the last lookup took (list position, tree depth, maple levels). */
  lastSteps: number;
  /** The buffer containing addr, or null; `mru` lets a list move the hit to the front. */
  lookup(addr: number, mru: boolean): io_tlb_dyn_slot | null;
  /** Add a buffer; false when the index could not allocate its own nodes. */
  insert(cur: Task, b: io_tlb_dyn_slot): KernelBody<boolean>;
  remove(cur: Task, b: io_tlb_dyn_slot): KernelBody<void>;
}

/** dev->swiotlbIndex for these designs: the index and the lock protecting it. */
export interface DynDeviceIndex {
  lock: spinlock_t;
  index: DynIndex;
  /** When the current holder took the lock (hold-time metric). */
  lockedAt: number;
}

export interface DynParams {
  maySleepGfp: MaySleepGfp;
  indexLock: IndexLockFlavour;
  /** The patches' order (default): the dynamic buffer first, the pool when it is refused or fails. */
  dynamicFirst: boolean;
  /** Dynamic buffers are enabled: always in RFC v1; v2's swiotlb=dynamic boot option (off by default). */
  dynamic: boolean;
}

export const DYN_PARAM_NAMES = ['maySleepGfp', 'indexLock', 'dynamicFirst', 'dynamic'] as const;

/** Validate and default a per-mapping design's parameters. */
export function dynParams(spec: PolicySpec, defaults: DynParams, extra: readonly string[] = []): DynParams {
  checkPolicyParams(spec, [...DYN_PARAM_NAMES, ...extra]);
  const p: DynParams = { ...defaults };
  if (spec.maySleepGfp !== undefined) {
    if (typeof spec.maySleepGfp !== 'string' || !(spec.maySleepGfp in GFP_BY_NAME)) throw new ProgramError(`swiotlb policy ${spec.name}: maySleepGfp must be GFP_KERNEL, GFP_NOIO or GFP_NOFS, got ${String(spec.maySleepGfp)}`);
    p.maySleepGfp = spec.maySleepGfp as MaySleepGfp;
  }
  if (spec.indexLock !== undefined) {
    if (spec.indexLock !== 'spin_lock' && spec.indexLock !== 'spin_lock_irqsave') throw new ProgramError(`swiotlb policy ${spec.name}: indexLock must be spin_lock or spin_lock_irqsave, got ${String(spec.indexLock)}`);
    p.indexLock = spec.indexLock;
  }
  if (spec.dynamic !== undefined) {
    if (typeof spec.dynamic !== 'boolean') throw new ProgramError(`swiotlb policy ${spec.name}: dynamic (swiotlb=dynamic) must be true or false, got ${String(spec.dynamic)}`);
    p.dynamic = spec.dynamic;
  }
  if (spec.dynamicFirst !== undefined) {
    if (typeof spec.dynamicFirst !== 'boolean') throw new ProgramError(`swiotlb policy ${spec.name}: dynamicFirst must be true or false, got ${String(spec.dynamicFirst)}`);
    p.dynamicFirst = spec.dynamicFirst;
  }
  return p;
}

function mod(a: number, m: number): number {
  const r = a % m;
  return r < 0 ? r + m : r;
}

/** The boot pool first, then a buffer per mapping, indexed per device. */
export abstract class DynBufferPolicy implements SwiotlbPolicy {
  readonly params: Readonly<Record<string, unknown>>;
  protected st: SwiotlbState | null = null;
  /** Dynamic buffers and their bytes alive now (over all devices). */
  liveBuffers = 0;
  liveBytes = 0;

  constructor(
    readonly name: string,
    readonly p: DynParams,
  ) {
    this.params = { ...p };
  }

  /** Make the device's index (and its lock, if the design has its own). */
  protected abstract newIndex(m: Machine, dev: device): DynDeviceIndex;
  /** The design skips the lock when the device has no dynamic buffer (v2's per-device flag). */
  protected abstract readonly skipWhenEmpty: boolean;
  /** CPU time of one index step. */
  protected abstract readonly stepNs: number;
  /** A lookup moves the hit to the front (v2's MRU list). */
  protected readonly mru: boolean = false;

  attach(_m: Machine, st: SwiotlbState): void {
    this.st = st;
    this.liveBuffers = 0;
    this.liveBytes = 0;
  }

  footprint(st: SwiotlbState): number {
    return st.mem.nslabs * IO_TLB_SIZE + this.liveBytes;
  }

  /** The index `dev`'s lookups search, if it exists yet (a per-device design: the device's own). */
  protected existingIndex(dev: device): DynDeviceIndex | undefined {
    return dev.swiotlbIndex as DynDeviceIndex | undefined;
  }

  /** The device's index, made on first use. */
  indexOf(dev: device): DynDeviceIndex {
    let ix = dev.swiotlbIndex as DynDeviceIndex | undefined;
    if (ix === undefined) {
      ix = this.newIndex(dev.m, dev);
      dev.swiotlbIndex = ix;
    }
    return ix;
  }

  *map(cur: Task, dev: device, orig: number, allocSize: number, offset: number, allocAlignMask: number, attrs: number): KernelBody<number> {
    const mem = dev.dma_io_tlb_mem!;
    // Restricted pools never get dynamic buffers (they must stay in their region); v2 needs swiotlb=dynamic.
    const dynOk = !mem.for_alloc && this.p.dynamic;
    const allowed = dynOk && this.patchLimitsAllow(dev, allocSize, allocAlignMask, mem.pageSize);
    if (this.p.dynamicFirst && allowed) {
      const tlb = yield* this.dynMap(cur, dev, orig, allocSize, offset, allocAlignMask, attrs);
      if (tlb >= 0) return tlb;
      cur.thread.sim.count(M_DYN_FALLBACKS, 1);
    } else if (dynOk && !allowed) cur.thread.sim.count(M_DYN_REFUSED, 1);
    const ref = new BounceRef();
    const slot = yield* swiotlb_find_in_pools(cur, dev, mem, mem.pools, orig, allocSize, allocAlignMask, ref);
    if (slot >= 0) return pool_assign(ref.pool!, slot, orig, allocSize, offset);
    if (this.p.dynamicFirst || !dynOk) return -1;
    return yield* this.dynMap(cur, dev, orig, allocSize, offset, allocAlignMask, attrs);
  }

  /**
   * swiotlb_dyn_map's refusals (RFC v1 3/4 and v2 4/7): smaller than a page, a per-mapping
   * alignment, or a device min_align_mask.
   */
  patchLimitsAllow(dev: device, allocSize: number, allocAlignMask: number, pageSize: number): boolean {
    return allocSize >= pageSize && allocAlignMask === 0 && dev.min_align_mask === 0;
  }

  /** swiotlb_dyn_map: a buffer of its own for this mapping, added to the device's index. */
  protected dynMap(cur: Task, dev: device, orig: number, allocSize: number, offset: number, allocAlignMask: number, attrs: number): KernelBody<number> {
    return fn(cur, 'swiotlb_dyn_map', this.dynMapBody(cur, dev, orig, allocSize, offset, allocAlignMask, attrs));
  }

  private *dynMapBody(cur: Task, dev: device, orig: number, allocSize: number, offset: number, allocAlignMask: number, attrs: number): KernelBody<number> {
    const st = this.st!;
    const m = cur.cpu.machine;
    const sim = cur.thread.sim;
    const pageSize = dev.dma_io_tlb_mem!.pageSize;
    const gfp = ((attrs & DMA_ATTR_MAY_SLEEP) !== 0 ? GFP_BY_NAME[this.p.maySleepGfp] : GFP_NOWAIT) | __GFP_NOWARN;
    const meta = yield* this.allocSlot(cur, gfp);
    if (meta === 0) {
      sim.count(M_DYN_ALLOC_FAILURES, 1);
      return -1;
    }
    // Room for the run plus the slack that lines its start up with orig's min_align bits.
    const align = Math.max(allocAlignMask, IO_TLB_SIZE - 1) + 1;
    const period = Math.max(align, dev.min_align_mask + 1);
    const slack = period - Math.min(align, pageSize);
    const bytes = Math.ceil((allocSize + slack) / pageSize) * pageSize;
    let base = -1;
    let pfn = -1;
    let from: 'direct' | 'atomic_pool' = 'direct';
    let decrypted = false;
    if (st.cc && !gfpflags_allow_blocking(gfp)) {
      // dma_direct_alloc_pages: decrypting sleeps, so an atomic caller gets pre-decrypted memory
      const r = yield* dma_alloc_from_pool(cur, dev, bytes, gfp);
      if (r !== null) {
        base = r.phys;
        from = 'atomic_pool';
      }
    } else {
      pfn = yield* this.allocPages(cur, dev, bytes, gfp);
      if (pfn >= 0) {
        base = page_to_phys(m, pfn);
        if (st.cc) {
          if ((yield* dma_set_decrypted(cur, dev, page_address(m, pfn), bytes)) !== 0) {
            // dma_direct_alloc_pages leaks pages whose sharing state is unknown
            base = -1;
          } else decrypted = true;
        }
      }
    }
    if (base < 0) {
      yield* this.freeSlot(cur, meta);
      sim.count(M_DYN_ALLOC_FAILURES, 1);
      return -1;
    }
    const hi = mod(orig, period) - mod(orig, align);
    const start = base + mod(hi - base, period);
    const b = new io_tlb_dyn_slot(dev, base, bytes, from, pfn, decrypted, meta, start, orig, allocSize, offset);
    const ix = this.indexOf(dev);
    const flags = yield* this.lock(cur, ix);
    const ok = yield* ix.index.insert(cur, b);
    yield* this.unlock(cur, ix, flags);
    if (!ok) {
      yield* this.freeBuffer(cur, b);
      sim.count(M_DYN_ALLOC_FAILURES, 1);
      return -1;
    }
    this.liveBuffers++;
    this.liveBytes += bytes;
    sim.peak(M_INDEX_LEN_PEAK, ix.index.count);
    sim.count(M_DYN_ALLOCS, 1);
    sim.peak(M_DYN_BYTES_PEAK, this.liveBytes);
    return b.tlbAddr;
  }

  *find(cur: Task, dev: device, tlbAddr: number, out: BounceRef): KernelBody<boolean> {
    const mem = dev.dma_io_tlb_mem;
    if (mem === null) return false;
    const sim = cur.thread.sim;
    sim.count(M_LOOKUP_STEPS, 1);
    const pool = pool_containing(mem.pools, tlbAddr);
    if (pool !== null) {
      pool_lookup(pool, tlbAddr, out);
      return true;
    }
    if (mem.for_alloc) return false;
    let ix = this.existingIndex(dev);
    if (this.skipWhenEmpty && (ix === undefined || ix.index.count === 0)) return false;
    ix ??= this.indexOf(dev);
    const b = yield* fn(cur, 'lookup_dyn_slot', this.lookupLocked(cur, ix, tlbAddr));
    if (b === null) return false;
    b.lookup(tlbAddr, out);
    return true;
  }

  private *lookupLocked(cur: Task, ix: DynDeviceIndex, tlbAddr: number): KernelBody<io_tlb_dyn_slot | null> {
    const flags = yield* this.lock(cur, ix);
    const b = yield* this.walk(cur, ix, tlbAddr, this.mru);
    yield* this.unlock(cur, ix, flags);
    return b;
  }

  *release(cur: Task, dev: device, tlbAddr: number, ref: BounceRef): KernelBody<void> {
    if (ref.pool !== null) {
      yield* swiotlb_release_slots(cur, dev, dev.dma_io_tlb_mem!, ref.pool, tlbAddr);
      return;
    }
    yield* fn(cur, 'swiotlb_dyn_unmap', this.dynUnmap(cur, dev, tlbAddr));
  }

  /** swiotlb_dyn_unmap: unlink the buffer under the index lock, then free it. */
  private *dynUnmap(cur: Task, dev: device, tlbAddr: number): KernelBody<void> {
    const ix = this.indexOf(dev);
    // swiotlb_dyn_unmap: look the buffer up again under the lock and unlink it
    const flags = yield* this.lock(cur, ix);
    const b = yield* this.walk(cur, ix, tlbAddr, false);
    if (b !== null) yield* ix.index.remove(cur, b);
    yield* this.unlock(cur, ix, flags);
    if (b === null) return;
    b.freed = true;
    this.liveBuffers--;
    this.liveBytes -= b.bytes;
    cur.thread.sim.count(M_DYN_FREES, 1);
    yield* this.freeBuffer(cur, b);
  }

  /** dma_direct_free_pages + kfree(slot). Re-encryption sleeps in a CoCo guest. */
  private *freeBuffer(cur: Task, b: io_tlb_dyn_slot): KernelBody<void> {
    if (b.from === 'atomic_pool') yield* dma_free_from_pool(cur, b.dev, b.base, b.bytes);
    else {
      let leak = false;
      if (b.decrypted) leak = (yield* dma_set_encrypted(cur, b.dev, PAGE_OFFSET + b.base, b.bytes)) !== 0;
      if (!leak) yield* this.freePages(cur, b.dev, b.pfn, b.bytes);
    }
    yield* this.freeSlot(cur, b.meta);
  }

  /** kmalloc of the descriptor (a design may take it from a reserve instead). 0 on failure. */
  protected allocSlot(cur: Task, gfp: number): KernelBody<number> {
    return kmalloc(cur, DYN_SLOT_BYTES, gfp);
  }

  protected freeSlot(cur: Task, meta: number): KernelBody<void> {
    return kfree(cur, meta);
  }

  /** dma_direct_alloc_pages of the buffer (a design may take it from a reserve instead). -1 on failure. */
  protected allocPages(cur: Task, dev: device, bytes: number, gfp: number): KernelBody<number> {
    return __dma_direct_alloc_pages(cur, dev, bytes, gfp);
  }

  protected freePages(cur: Task, dev: device, pfn: number, bytes: number): KernelBody<void> {
    return __dma_direct_free_pages(cur, dev, pfn, bytes);
  }

  /** Search the index (lock held), charging its steps. */
  private *walk(cur: Task, ix: DynDeviceIndex, addr: number, mru: boolean): KernelBody<io_tlb_dyn_slot | null> {
    const b = ix.index.lookup(addr, mru);
    const steps = ix.index.lastSteps;
    const sim = cur.thread.sim;
    sim.count(M_INDEX_LOOKUPS, 1);
    sim.count(b === null ? M_INDEX_MISSES : M_INDEX_HITS, 1);
    sim.count(b === null ? M_INDEX_MISS_STEPS : M_INDEX_HIT_STEPS, steps);
    if (steps > 0) {
      sim.count(M_LOOKUP_STEPS, steps);
      yield cur.thread.work(steps * this.stepNs);
    }
    return b;
  }

  protected *lock(cur: Task, ix: DynDeviceIndex): KernelBody<number> {
    const sim = cur.thread.sim;
    const t0 = sim.now();
    let flags = 0;
    if (this.p.indexLock === 'spin_lock_irqsave') flags = yield* spin_lock_irqsave(cur, ix.lock);
    else yield* spin_lock(cur, ix.lock);
    const t1 = sim.now();
    if (t1 > t0) sim.count(M_INDEX_LOCK_WAIT_NS, t1 - t0);
    ix.lockedAt = t1;
    return flags;
  }

  protected *unlock(cur: Task, ix: DynDeviceIndex, flags: number): KernelBody<void> {
    const sim = cur.thread.sim;
    const held = sim.now() - ix.lockedAt;
    if (held > 0) sim.count(M_INDEX_LOCK_HOLD_NS, held);
    if (this.p.indexLock === 'spin_lock_irqsave') yield* spin_unlock_irqrestore(cur, ix.lock, flags);
    else yield* spin_unlock(cur, ix.lock);
  }
}

/** A lock of the device's own for a design's index (one lockdep class for every device). */
export function dynIndexLock(m: Machine, dev: device, lockClass: string): spinlock_t {
  const l = DEFINE_SPINLOCK(m, `${dev.name}:${lockClass.replace(/^&dev->/, '')}`);
  lockdep_set_class(l, lockClass);
  return l;
}
