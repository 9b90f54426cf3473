/**
 * The pool-based allocator steps every pool design shares (docs/kernel-facts.md §1.4, 1.5, 1.7): search
 * one area under its irqsave lock, walk the pools and areas in the kernel's order starting at
 * the CPU's area, release a run under its area lock, and resolve a bounce address to its slot.
 */
import type { KernelBody } from '../../kernel/machine';
import { spin_lock_irqsave, spin_unlock_irqrestore } from '../../kernel/spinlock';
import type { Task } from '../../kernel/task';
import { dma_get_seg_boundary, type device } from '../device';
import { INVALID_PHYS_ADDR, IO_TLB_SIZE, SLOT_CHECK_NS } from './constants';
import type { io_tlb_mem } from './mem';
import type { BounceRef } from './policy';
import type { io_tlb_pool } from './pool';

export const M_SEARCH_STEPS = 'swiotlb.search_steps';
export const M_SEARCH_NS = 'swiotlb.search_ns';

/** swiotlb_search_pool_area with its locking: the first slot of a taken run, or -1. */
export function* swiotlb_search_pool_area(cur: Task, dev: device, mem: io_tlb_mem, pool: io_tlb_pool, area: number, orig: number, allocSize: number, allocAlignMask: number): KernelBody<number> {
  const lock = pool.locks[area];
  const flags = yield* spin_lock_irqsave(cur, lock);
  const slot = pool.search(area, orig, allocSize, allocAlignMask, dev.min_align_mask, dma_get_seg_boundary(dev), mem.pageSize, mem.profile.areaRules);
  const steps = pool.lastChecked;
  if (steps > 0) {
    const ns = steps * SLOT_CHECK_NS;
    yield cur.thread.work(ns);
    const sim = cur.thread.sim;
    sim.count(M_SEARCH_STEPS, steps);
    sim.count(M_SEARCH_NS, ns);
  }
  yield* spin_unlock_irqrestore(cur, lock, flags);
  if (slot >= 0) mem.inc_used(Math.ceil(allocSize / IO_TLB_SIZE));
  return slot;
}

/**
 * swiotlb_find_slots over `pools` (non-transient, newest first). Area-major (v6.8+): for each
 * area offset i from the CPU's area, every pool with more than i areas; pool-major (v6.6, and the
 * single pool of v6.3): each pool's areas in turn. Sets out.pool; returns the slot or -1.
 */
export function* swiotlb_find_in_pools(cur: Task, dev: device, mem: io_tlb_mem, pools: readonly io_tlb_pool[], orig: number, allocSize: number, allocAlignMask: number, out: BounceRef): KernelBody<number> {
  const cpu = cur.cpu.id;
  if (mem.searchOrder === 'area-major') {
    const n = mem.default_nareas;
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < pools.length; p++) {
        const pool = pools[p];
        if (i >= pool.nareas || pool.transient) continue;
        const slot = yield* swiotlb_search_pool_area(cur, dev, mem, pool, (cpu + i) & (pool.nareas - 1), orig, allocSize, allocAlignMask);
        if (slot >= 0) {
          out.pool = pool;
          return slot;
        }
      }
    }
    return -1;
  }
  for (let p = 0; p < pools.length; p++) {
    const pool = pools[p];
    if (pool.transient) continue;
    const start = cpu & (pool.nareas - 1);
    let a = start;
    do {
      const slot = yield* swiotlb_search_pool_area(cur, dev, mem, pool, a, orig, allocSize, allocAlignMask);
      if (slot >= 0) {
        out.pool = pool;
        return slot;
      }
      a = a + 1 >= pool.nareas ? 0 : a + 1;
    } while (a !== start);
  }
  return -1;
}

/**
 * swiotlb_align_offset(dev, align_mask, addr): the low bits of addr a mapping keeps. v6.9+ keeps
 * the alloc_align bits too (an offset of 2 KiB or more becomes pad slots); before v6.9 the
 * function had no align_mask argument and kept only the bits below 2 KiB (pass `pad` false).
 */
export function swiotlb_align_offset(dev: device, allocAlignMask: number, addr: number, pad = true): number {
  return addr & dev.min_align_mask & ((pad ? allocAlignMask : 0) | (IO_TLB_SIZE - 1));
}

/** Fill `out` from the slot arrays for a bounce address inside `pool`. */
export function pool_lookup(pool: io_tlb_pool, tlbAddr: number, out: BounceRef): void {
  const i = pool.slotOf(tlbAddr);
  out.pool = pool;
  out.orig = pool.orig_addr[i];
  out.remaining = pool.alloc_size[i];
  out.rec = null;
}

/** The pool in `pools` containing addr (a range check per pool, as the RCU walk does). */
export function pool_containing(pools: readonly io_tlb_pool[], addr: number): io_tlb_pool | null {
  for (let p = 0; p < pools.length; p++) if (pools[p].contains(addr)) return pools[p];
  return null;
}

/** swiotlb_release_slots: free the run holding tlbAddr under its area lock; slots freed. */
export function* swiotlb_release_slots(cur: Task, dev: device, mem: io_tlb_mem, pool: io_tlb_pool, tlbAddr: number): KernelBody<number> {
  const offset = swiotlb_align_offset(dev, 0, tlbAddr);
  const lock = pool.locks[pool.areaOf(pool.runStart(tlbAddr, offset))];
  const flags = yield* spin_lock_irqsave(cur, lock);
  const n = pool.release(tlbAddr, offset);
  yield* spin_unlock_irqrestore(cur, lock, flags);
  mem.dec_used(n);
  return n;
}

/** Record orig for a run just taken and return tlb_addr (swiotlb_tbl_map_single, step 5-6). */
export function pool_assign(pool: io_tlb_pool, slot: number, orig: number, allocSize: number, offset: number): number {
  const first = pool.assign(slot, orig, allocSize, offset);
  return pool.start + first * IO_TLB_SIZE + (offset & (IO_TLB_SIZE - 1));
}

export { INVALID_PHYS_ADDR };
