/**
 * lockdep's fs_reclaim annotation (mm/page_alloc.c, docs/kernel-facts.md §3.4): a pseudo-lock held across
 * direct reclaim (and by kswapd) and touched by might_alloc() on every allocation that could
 * reclaim with filesystem callbacks. A lock taken inside reclaim gets fs_reclaim -> L; a
 * GFP_KERNEL allocation under L gets L -> fs_reclaim; together, lockdep reports the cycle.
 */
import { __GFP_DIRECT_RECLAIM, __GFP_FS, __GFP_NOLOCKDEP, current_gfp_context, gfpflags_allow_blocking } from './gfp';
import { lock_map_acquire, lock_map_release, lockdep_map } from './lock';
import type { KernelBody, Machine } from './machine';
import { might_sleep } from './sched';
import { PF_MEMALLOC, type Task } from './task';

const maps = new WeakMap<Machine, lockdep_map>();

/** The machine's __fs_reclaim_map ("fs_reclaim"). */
export function fs_reclaim_map(m: Machine): lockdep_map {
  let map = maps.get(m);
  if (map === undefined) {
    map = new lockdep_map(m.sim.object('fs_reclaim'), 'fs_reclaim');
    maps.set(m, map);
  }
  return map;
}

/** __need_reclaim: direct reclaim with FS allowed, not already in reclaim, lockdep not told off. */
function needReclaim(cur: Task, gfp: number): boolean {
  const g = current_gfp_context(cur, gfp);
  return (g & __GFP_DIRECT_RECLAIM) !== 0 && (g & __GFP_FS) !== 0 && (cur.flags & PF_MEMALLOC) === 0 && (g & __GFP_NOLOCKDEP) === 0;
}

export function fs_reclaim_acquire(cur: Task, gfp: number): void {
  if (needReclaim(cur, gfp)) lock_map_acquire(cur, fs_reclaim_map(cur.cpu.machine));
}

export function fs_reclaim_release(cur: Task, gfp: number): void {
  if (needReclaim(cur, gfp)) lock_map_release(cur, fs_reclaim_map(cur.cpu.machine));
}

/** might_alloc(gfp): touch fs_reclaim, and might_sleep when the allocation may block. */
export function* might_alloc(cur: Task, gfp: number, where = 'might_alloc'): KernelBody<void> {
  fs_reclaim_acquire(cur, gfp);
  fs_reclaim_release(cur, gfp);
  if (gfpflags_allow_blocking(gfp)) yield* might_sleep(cur, where);
}
