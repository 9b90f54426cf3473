/**
 * GFP flags by their kernel names (include/linux/gfp_types.h bit order, docs/kernel-facts.md §3.1), the
 * composites, and the scoped constraints (memalloc_noio/nofs/noreclaim_save/restore) that
 * current_gfp_context() applies. The allocator itself is the memory model's (lib/mm).
 */
import { PF_MEMALLOC, PF_MEMALLOC_NOFS, PF_MEMALLOC_NOIO, type Task } from './task';

export const __GFP_DMA = 1 << 0;
export const __GFP_HIGHMEM = 1 << 1;
export const __GFP_DMA32 = 1 << 2;
export const __GFP_MOVABLE = 1 << 3;
export const __GFP_RECLAIMABLE = 1 << 4;
export const __GFP_HIGH = 1 << 5;
export const __GFP_IO = 1 << 6;
export const __GFP_FS = 1 << 7;
export const __GFP_ZERO = 1 << 8;
export const __GFP_DIRECT_RECLAIM = 1 << 10;
export const __GFP_KSWAPD_RECLAIM = 1 << 11;
export const __GFP_WRITE = 1 << 12;
export const __GFP_NOWARN = 1 << 13;
export const __GFP_RETRY_MAYFAIL = 1 << 14;
export const __GFP_NOFAIL = 1 << 15;
export const __GFP_NORETRY = 1 << 16;
export const __GFP_MEMALLOC = 1 << 17;
export const __GFP_COMP = 1 << 18;
export const __GFP_NOMEMALLOC = 1 << 19;
export const __GFP_HARDWALL = 1 << 20;
export const __GFP_THISNODE = 1 << 21;
export const __GFP_NOLOCKDEP = 1 << 26;

export const __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
export const GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM;
export const GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
/** The newest tree's GFP_NOWAIT (older trees: __GFP_KSWAPD_RECLAIM only). */
export const GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN;
export const GFP_NOIO = __GFP_RECLAIM;
export const GFP_NOFS = __GFP_RECLAIM | __GFP_IO;
/** User-space pages: may reclaim with I/O and FS, confined to the cpuset (hardwall). */
export const GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;
export const GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM;
/** Anonymous and page-cache pages: movable, so compaction and CMA can migrate them. */
export const GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE;
export const GFP_DMA = __GFP_DMA;
export const GFP_DMA32 = __GFP_DMA32;

/** gfpflags_allow_blocking: the one test of "may sleep". */
export function gfpflags_allow_blocking(gfp: number): boolean {
  return (gfp & __GFP_DIRECT_RECLAIM) !== 0;
}

/** The names of the set bits, for reports: "GFP_KERNEL", or "__GFP_IO|__GFP_FS|...". */
export function gfpName(gfp: number): string {
  const composites: [string, number][] = [
    ['GFP_KERNEL', GFP_KERNEL],
    ['GFP_NOFS', GFP_NOFS],
    ['GFP_NOIO', GFP_NOIO],
    ['GFP_ATOMIC', GFP_ATOMIC],
    ['GFP_NOWAIT', GFP_NOWAIT],
    ['GFP_USER', GFP_USER],
    ['GFP_HIGHUSER_MOVABLE', GFP_HIGHUSER_MOVABLE],
  ];
  for (const [n, v] of composites) if (gfp === v) return n;
  const bits: [string, number][] = Object.entries({
    __GFP_DMA, __GFP_HIGHMEM, __GFP_DMA32, __GFP_MOVABLE, __GFP_RECLAIMABLE, __GFP_HIGH, __GFP_IO, __GFP_FS, __GFP_ZERO,
    __GFP_DIRECT_RECLAIM, __GFP_KSWAPD_RECLAIM, __GFP_WRITE, __GFP_NOWARN, __GFP_RETRY_MAYFAIL, __GFP_NOFAIL, __GFP_NORETRY,
    __GFP_MEMALLOC, __GFP_COMP, __GFP_NOMEMALLOC, __GFP_HARDWALL, __GFP_THISNODE, __GFP_NOLOCKDEP,
  });
  const set = bits.filter(([, v]) => (gfp & v) !== 0).map(([n]) => n);
  return set.length ? set.join('|') : '0';
}

/** current_gfp_context: the task's NOIO / NOFS scope narrows what an allocation may do. */
export function current_gfp_context(cur: Task, gfp: number): number {
  if (cur.flags & PF_MEMALLOC_NOIO) return gfp & ~(__GFP_IO | __GFP_FS);
  if (cur.flags & PF_MEMALLOC_NOFS) return gfp & ~__GFP_FS;
  return gfp;
}

function save(cur: Task, flag: number): number {
  const old = cur.flags & flag;
  cur.flags |= flag;
  return old;
}

function restore(cur: Task, flag: number, old: number): void {
  cur.flags = (cur.flags & ~flag) | old;
}

/** memalloc_noio_save/restore: no I/O (and so no FS) in reclaim within the scope. */
export const memalloc_noio_save = (cur: Task): number => save(cur, PF_MEMALLOC_NOIO);
export const memalloc_noio_restore = (cur: Task, old: number): void => restore(cur, PF_MEMALLOC_NOIO, old);
/** memalloc_nofs_save/restore: no FS callbacks in reclaim within the scope. */
export const memalloc_nofs_save = (cur: Task): number => save(cur, PF_MEMALLOC_NOFS);
export const memalloc_nofs_restore = (cur: Task, old: number): void => restore(cur, PF_MEMALLOC_NOFS, old);
/** memalloc_noreclaim_save/restore: PF_MEMALLOC, reclaim never recurses. */
export const memalloc_noreclaim_save = (cur: Task): number => save(cur, PF_MEMALLOC);
export const memalloc_noreclaim_restore = (cur: Task, old: number): void => restore(cur, PF_MEMALLOC, old);
