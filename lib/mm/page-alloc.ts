/**
 * The page allocator (mm/page_alloc.c): alloc_pages with the kernel's fast path and slow path,
 * in the kernel's order (docs/kernel-facts.md §3.1, 3.3, 3.3b):
 *
 *  fast path   current_gfp_context, might_alloc (fs_reclaim touch, might_sleep), the free lists at
 *              the low watermark;
 *  slow path   wake kswapd; the free lists at the min watermark with the caller's reserves
 *              (__GFP_HIGH, non-blocking, PF_MEMALLOC, OOM victim); give up here if the caller
 *              cannot block; no direct reclaim from inside reclaim (PF_MEMALLOC); compaction
 *              first for costly orders; direct reclaim (fs_reclaim held, PF_MEMALLOC set); direct
 *              compaction; __GFP_NORETRY and costly orders give up; should_reclaim_retry (16
 *              loops without progress); the OOM killer for order <= 3 with __GFP_FS, which is
 *              "progress" for everything else; __GFP_NOFAIL loops forever; otherwise "page
 *              allocation failure".
 *
 * Simplifications (also in the README): one node; no per-CPU page lists (zone->lock and the pcp
 * lists are one visible engine step per allocation, never a lock in lockdep's graph); the
 * watermark boost, cpusets and memcg limits are not modelled; LRU pages are node-wide, so
 * should_reclaim_retry counts them against the first zone of the zonelist.
 */
import { ProgramError } from '../../scheduler';
import { might_alloc, fs_reclaim_acquire, fs_reclaim_release } from '../kernel/fs-reclaim';
import {
  __GFP_DIRECT_RECLAIM,
  __GFP_FS,
  __GFP_HARDWALL,
  __GFP_HIGH,
  __GFP_IO,
  __GFP_KSWAPD_RECLAIM,
  __GFP_MEMALLOC,
  __GFP_NOFAIL,
  __GFP_NOMEMALLOC,
  __GFP_NORETRY,
  __GFP_NOWARN,
  __GFP_RETRY_MAYFAIL,
  __GFP_THISNODE,
  current_gfp_context,
  GFP_ATOMIC,
  GFP_KERNEL,
  GFP_NOFS,
  GFP_NOIO,
  GFP_NOWAIT,
  memalloc_noreclaim_restore,
  memalloc_noreclaim_save,
} from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import { mutex_trylock, mutex_unlock } from '../kernel/mutex';
import { in_interrupt, in_serving_softirq } from '../kernel/preempt';
import { cond_resched, schedule_timeout } from '../kernel/sched';
import { fn } from '../kernel/stack';
import { PF_MEMALLOC, type Task } from '../kernel/task';
import { nsPerJiffy } from '../kernel/timer';
import { wq_worker } from '../kernel/workqueue';
import { gfp_migratetype, gfp_zone, MIGRATE_MOVABLE, PAGE_ALLOC_COSTLY_ORDER, ZONE_NORMAL } from './config';
import { mm, type MemoryModel } from './mm';
import { out_of_memory } from './oom';
import { try_to_free_pages, wakeup_kswapd } from './vmscan';
import {
  ALLOC_CMA,
  ALLOC_CPUSET,
  ALLOC_HIGHATOMIC,
  ALLOC_KSWAPD,
  ALLOC_MIN_RESERVE,
  ALLOC_NO_WATERMARKS,
  ALLOC_NON_BLOCK,
  ALLOC_OOM,
  ALLOC_WMARK_HIGH,
  ALLOC_WMARK_LOW,
  ALLOC_WMARK_MASK,
  ALLOC_WMARK_MIN,
  wmark_pages,
  zone_watermark_ok,
  type Zone,
} from './zone';

/** MAX_RECLAIM_RETRIES: reclaim rounds without progress before the OOM path. */
export const MAX_RECLAIM_RETRIES = 16;
/** Virtual CPU time of a direct-compaction page migration (copy + remap), per page. */
const MIGRATE_PAGE_NS = 2_000;

/** What the allocFailure hook carries (lib/check/alloc.ts formats it). */
export interface AllocFailureInfo {
  gfp: number;
  order: number;
  /** "page allocation failure: order:N" or the order-too-large warning. */
  why: string;
  /** Free pages per zone at the failure, for the Mem-Info part of the report. */
  zones: { name: string; free: number; min: number; low: number; high: number }[];
  buddyinfo: string;
}

const GFP_CLASSES = ['GFP_KERNEL', 'GFP_NOFS', 'GFP_NOIO', 'GFP_ATOMIC', 'GFP_NOWAIT', 'other'];

/** Index into GFP_CLASSES of the composite an allocation counts under (modifiers ignored). */
function gfpClassIndex(gfp: number): number {
  switch (gfp & (__GFP_HIGH | __GFP_IO | __GFP_FS | __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM)) {
    case GFP_KERNEL: return 0;
    case GFP_NOFS: return 1;
    case GFP_NOIO: return 2;
    case GFP_ATOMIC: return 3;
    case GFP_NOWAIT & ~__GFP_NOWARN: return 4;
    default: return 5;
  }
}

/** The GFP composite an allocation is counted under (modifiers such as __GFP_ZERO ignored). */
export function gfpClass(gfp: number): string {
  return GFP_CLASSES[gfpClassIndex(gfp)];
}

/** The zones an allocation may use, best first: its highest allowed zone downwards. */
function zonelist(model: MemoryModel, highestIdx: number): Zone[] {
  const out: Zone[] = [];
  const zones = model.phys.zones;
  for (let i = zones.length - 1; i >= 0; i--) if (zones[i].idx <= highestIdx) out.push(zones[i]);
  return out;
}

/** get_page_from_freelist: the first zone whose watermark allows it and whose free lists have a block. */
function get_page_from_freelist(model: MemoryModel, gfp: number, order: number, allocFlags: number, highestIdx: number): number {
  const phys = model.phys;
  const mt = gfp_migratetype(gfp);
  const zones = phys.zones;
  for (let i = zones.length - 1; i >= 0; i--) {
    const z = zones[i];
    if (z.idx > highestIdx) continue;
    if ((allocFlags & ALLOC_NO_WATERMARKS) === 0) {
      const mark = wmark_pages(z, allocFlags & ALLOC_WMARK_MASK);
      if (!zone_watermark_ok(phys, z, order, mark, highestIdx, allocFlags)) continue;
    }
    const pfn = phys.rmqueue(z, order, mt, allocFlags);
    if (pfn >= 0) {
      // A high-order atomic allocation reserves a pageblock for the next one.
      if (order > 0 && (allocFlags & ALLOC_HIGHATOMIC) !== 0) phys.reserveHighatomic(z, pfn);
      return pfn;
    }
  }
  return -1;
}

/** gfp_to_alloc_flags: the slow path's watermark and reserves (v6.3+ rules). */
export function gfp_to_alloc_flags(gfp: number, order: number): number {
  let f = ALLOC_WMARK_MIN | ALLOC_CPUSET;
  if ((gfp & __GFP_HIGH) !== 0) f |= ALLOC_MIN_RESERVE;
  if ((gfp & __GFP_KSWAPD_RECLAIM) !== 0) f |= ALLOC_KSWAPD;
  if ((gfp & __GFP_DIRECT_RECLAIM) === 0 && (gfp & __GFP_NOMEMALLOC) === 0) {
    f |= ALLOC_NON_BLOCK;
    if (order > 0) f |= ALLOC_HIGHATOMIC;
  }
  if (gfp_migratetype(gfp) === MIGRATE_MOVABLE) f |= ALLOC_CMA;
  return f;
}

/** __gfp_pfmemalloc_flags: who may ignore the watermarks. */
function pfmemalloc_flags(model: MemoryModel, cur: Task, gfp: number): number {
  if ((gfp & __GFP_NOMEMALLOC) !== 0) return 0;
  if ((gfp & __GFP_MEMALLOC) !== 0) return ALLOC_NO_WATERMARKS;
  const pc = cur.preempt_count;
  if (in_serving_softirq(pc) && (cur.flags & PF_MEMALLOC) !== 0) return ALLOC_NO_WATERMARKS;
  if (!in_interrupt(pc)) {
    if ((cur.flags & PF_MEMALLOC) !== 0) return ALLOC_NO_WATERMARKS;
    if (model.isOomVictim(cur)) return ALLOC_OOM;
  }
  return 0;
}

/** Counter names by kind, order and class, built on first use (no string building per allocation). */
const counterNames: Record<string, string[]> = { alloc: [], fail: [] };
function counter(kind: 'alloc' | 'fail', order: number, gfp: number): string {
  const names = counterNames[kind];
  const i = order * GFP_CLASSES.length + gfpClassIndex(gfp);
  return (names[i] ??= `${kind}.o${order}.${GFP_CLASSES[gfpClassIndex(gfp)]}`);
}

/**
 * alloc_pages(gfp, order): a block of 2^order pages; its first pfn, or -1 (NULL). May sleep
 * exactly when the GFP flags say so.
 */
export function* alloc_pages(cur: Task, gfp: number, order: number): KernelBody<number> {
  return yield* fn(cur, 'alloc_pages', __alloc_pages(cur, gfp, order));
}

/** alloc_page(gfp): one page. */
export function alloc_page(cur: Task, gfp: number): KernelBody<number> {
  return alloc_pages(cur, gfp, 0);
}

function* __alloc_pages(cur: Task, gfpIn: number, order: number): KernelBody<number> {
  const m = cur.cpu.machine;
  const model = mm(m);
  if (!Number.isInteger(order) || order < 0) throw new ProgramError(`alloc_pages: order must be a non-negative integer, got ${order}`);
  if (order > model.phys.maxOrder) {
    // WARN_ON_ONCE_GFP(order > MAX_PAGE_ORDER, gfp): silent with __GFP_NOWARN.
    warn_alloc(cur, model, gfpIn, order, `WARN_ON_ONCE_GFP(order > MAX_PAGE_ORDER): order:${order} > ${model.phys.maxOrder}`);
    model.count(counter('fail', order, gfpIn));
    return -1;
  }
  const gfp = current_gfp_context(cur, gfpIn);
  yield* might_alloc(cur, gfp, 'alloc_pages');
  // zone->lock / the pcp lists: one visible step, so allocations interleave with everything else
  yield cur.thread.write(zoneObject(model));
  const highestIdx = gfp_zone(gfp);
  let allocFlags = ALLOC_WMARK_LOW;
  if (gfp_migratetype(gfp) === MIGRATE_MOVABLE) allocFlags |= ALLOC_CMA;
  let pfn = get_page_from_freelist(model, gfp, order, allocFlags, highestIdx);
  if (pfn < 0) pfn = yield* fn(cur, '__alloc_pages_slowpath', slowpath(cur, model, gfp, order, highestIdx));
  if (pfn >= 0) {
    model.count(counter('alloc', order, gfp));
    m.emit('alloc', cur, 'pages', model.phys.pageSize * 2 ** order, gfp);
  } else model.count(counter('fail', order, gfp));
  model.sample();
  return pfn;
}

const zoneObjects = new WeakMap<MemoryModel, number>();
function zoneObject(model: MemoryModel): number {
  let o = zoneObjects.get(model);
  if (o === undefined) zoneObjects.set(model, (o = model.m.sim.object('zone->lock')));
  return o;
}

function* slowpath(cur: Task, model: MemoryModel, gfp: number, order: number, highestIdx: number): KernelBody<number> {
  const sim = model.m.sim;
  const start = sim.now();
  const canDirectReclaim = (gfp & __GFP_DIRECT_RECLAIM) !== 0;
  const costly = order > PAGE_ALLOC_COSTLY_ORDER;
  let allocFlags = gfp_to_alloc_flags(gfp, order);
  let noProgressLoops = 0;
  let stalled = false;
  const done = (pfn: number): number => {
    if (stalled) model.count('stall_ns', sim.now() - start);
    return pfn;
  };

  if ((allocFlags & ALLOC_KSWAPD) !== 0) wakeup_kswapd(model, gfp, order, highestIdx);
  let pfn = get_page_from_freelist(model, gfp, order, allocFlags, highestIdx);
  if (pfn >= 0) return done(pfn);

  // Costly or unmovable high-order requests try compaction before reclaim.
  if (canDirectReclaim && order > 0 && (costly || gfp_migratetype(gfp) !== MIGRATE_MOVABLE) && pfmemalloc_flags(model, cur, gfp) === 0) {
    pfn = yield* direct_compact(cur, model, gfp, order, allocFlags, highestIdx);
    if (pfn >= 0) return done(pfn);
    if (costly && (gfp & __GFP_NORETRY) !== 0) return yield* nopage(cur, model, gfp, order, allocFlags, highestIdx, done);
  }

  for (;;) {
    // retry:
    if ((allocFlags & ALLOC_KSWAPD) !== 0) wakeup_kswapd(model, gfp, order, highestIdx);
    const reserve = pfmemalloc_flags(model, cur, gfp);
    if (reserve !== 0) allocFlags = reserve | (allocFlags & ALLOC_CMA);
    pfn = get_page_from_freelist(model, gfp, order, allocFlags, highestIdx);
    if (pfn >= 0) return done(pfn);
    if (!canDirectReclaim) break;
    // Reclaim never recurses: an allocation from inside reclaim fails instead.
    if ((cur.flags & PF_MEMALLOC) !== 0) break;

    stalled = true;
    model.count('allocstall');
    const r = yield* direct_reclaim(cur, model, gfp, order, allocFlags, highestIdx);
    if (r.pfn >= 0) return done(r.pfn);
    pfn = yield* direct_compact(cur, model, gfp, order, allocFlags, highestIdx);
    if (pfn >= 0) return done(pfn);

    if ((gfp & __GFP_NORETRY) !== 0) break;
    if (costly && (gfp & __GFP_RETRY_MAYFAIL) === 0) break;

    const retry = yield* should_reclaim_retry(cur, model, order, highestIdx, r.progress > 0, noProgressLoops);
    noProgressLoops = retry.loops;
    if (retry.retry) continue;

    const oom = yield* may_oom(cur, model, gfp, order, highestIdx);
    if (oom.pfn >= 0) return done(oom.pfn);
    // An OOM victim must not loop on the reserves forever.
    if (model.isOomVictim(cur) && ((allocFlags & ALLOC_OOM) !== 0 || (gfp & __GFP_NOMEMALLOC) !== 0)) break;
    if (oom.progress) {
      noProgressLoops = 0;
      continue;
    }
    break;
  }
  return yield* nopage(cur, model, gfp, order, allocFlags, highestIdx, done);
}

/** nopage: __GFP_NOFAIL keeps trying (with some reserves); anything else fails and warns. */
function* nopage(cur: Task, model: MemoryModel, gfp: number, order: number, allocFlags: number, highestIdx: number, done: (pfn: number) => number): KernelBody<number> {
  if ((gfp & __GFP_NOFAIL) !== 0 && (gfp & __GFP_DIRECT_RECLAIM) !== 0) {
    for (;;) {
      const pfn = get_page_from_freelist(model, gfp, order, allocFlags | ALLOC_MIN_RESERVE, highestIdx);
      if (pfn >= 0) return done(pfn);
      // __alloc_pages_slowpath's "retry" for NOFAIL: reclaim again, sleeping if nothing moves.
      const r = yield* direct_reclaim(cur, model, gfp, order, allocFlags, highestIdx);
      if (r.pfn >= 0) return done(r.pfn);
      yield* cond_resched(cur);
    }
  }
  warn_alloc(cur, model, gfp, order, `page allocation failure: order:${order}`);
  return done(-1);
}

/** warn_alloc: the allocFailure hook (the detector applies __GFP_NOWARN and the ratelimit). */
function warn_alloc(cur: Task, model: MemoryModel, gfp: number, order: number, why: string): void {
  if ((gfp & __GFP_NOWARN) !== 0) model.count('alloc_fail_nowarn');
  const info: AllocFailureInfo = {
    gfp,
    order,
    why,
    zones: model.phys.zones.map((z) => ({ name: z.name, free: z.nr_free, min: wmark_pages(z, ALLOC_WMARK_MIN), low: wmark_pages(z, ALLOC_WMARK_LOW), high: wmark_pages(z, ALLOC_WMARK_HIGH) })),
    buddyinfo: model.phys.buddyinfo(),
  };
  model.m.emit('allocFailure', cur, info);
}

/** __alloc_pages_direct_reclaim: reclaim with fs_reclaim held and PF_MEMALLOC set, then try again. */
function* direct_reclaim(cur: Task, model: MemoryModel, gfp: number, order: number, allocFlags: number, highestIdx: number): KernelBody<{ pfn: number; progress: number }> {
  const progress = yield* fn(cur, '__perform_reclaim', perform_reclaim(cur, model, gfp, order));
  if (progress === 0) return { pfn: -1, progress };
  let pfn = get_page_from_freelist(model, gfp, order, allocFlags, highestIdx);
  if (pfn < 0) {
    // Before giving up on this round: free a highatomic reserve (drain_all_pages too upstream).
    for (const z of zonelist(model, highestIdx)) if (model.phys.unreserveHighatomic(z)) break;
    pfn = get_page_from_freelist(model, gfp, order, allocFlags, highestIdx);
  }
  return { pfn, progress };
}

function* perform_reclaim(cur: Task, model: MemoryModel, gfp: number, order: number): KernelBody<number> {
  yield* cond_resched(cur);
  fs_reclaim_acquire(cur, gfp);
  const noreclaim = memalloc_noreclaim_save(cur);
  const t0 = model.m.sim.now();
  let progress: number;
  try {
    progress = yield* try_to_free_pages(cur, model, order, gfp);
  } finally {
    memalloc_noreclaim_restore(cur, noreclaim);
  }
  fs_reclaim_release(cur, gfp);
  model.count('direct_reclaim_ns', model.m.sim.now() - t0);
  yield* cond_resched(cur);
  return progress;
}

/** __alloc_pages_direct_compact, simplified: migrate movable pages out of one aligned range. */
function* direct_compact(cur: Task, model: MemoryModel, gfp: number, order: number, allocFlags: number, highestIdx: number): KernelBody<number> {
  if (order === 0) return -1;
  model.count('compact_stall');
  for (const z of zonelist(model, highestIdx)) {
    const moved = model.phys.compact(z, order);
    if (moved < 0) continue;
    if (moved > 0) {
      model.count('compact_migrated_pages', moved);
      yield cur.thread.work(moved * MIGRATE_PAGE_NS);
    }
    const pfn = get_page_from_freelist(model, gfp, order, allocFlags, highestIdx);
    if (pfn >= 0) {
      model.count('compact_success');
      return pfn;
    }
  }
  model.count('compact_fail');
  return -1;
}

/**
 * should_reclaim_retry: up to MAX_RECLAIM_RETRIES rounds in a row without progress (then the
 * highatomic reserve, then the OOM path), and only while the free plus reclaimable pages
 * (zone_reclaimable_pages) could meet the min watermark; a workqueue worker sleeps a jiffy
 * first so the concurrency manager sees it congested. No backoff by the failed rounds (removed
 * upstream in v4.12: "We give up when we either have tried MAX_RECLAIM_RETRIES in a row without
 * success, or when we couldn't even meet the watermark if we reclaimed all remaining pages").
 */
function* should_reclaim_retry(cur: Task, model: MemoryModel, order: number, highestIdx: number, progress: boolean, loops: number): KernelBody<{ retry: boolean; loops: number }> {
  if (progress && order <= PAGE_ALLOC_COSTLY_ORDER) loops = 0;
  else loops++;
  if (loops > MAX_RECLAIM_RETRIES) {
    for (const z of zonelist(model, highestIdx)) if (model.phys.unreserveHighatomic(z)) return { retry: true, loops };
    return { retry: false, loops };
  }
  const reclaimable = model.lru.reclaimable(model.swap !== null && model.lru.swapUsed < model.swap.capacity);
  let first = true;
  for (const z of zonelist(model, highestIdx)) {
    let available = z.nr_free + (first ? reclaimable : 0);
    first = false;
    if (available - (1 << order) + 1 > wmark_pages(z, ALLOC_WMARK_MIN) + z.lowmem_reserve[highestIdx]) {
      if (wq_worker(cur) !== null) yield* schedule_timeout(cur, nsPerJiffy(cur.cpu.machine), { kind: 'wait_queue', what: 'should_reclaim_retry' });
      else yield* cond_resched(cur);
      return { retry: true, loops };
    }
  }
  return { retry: false, loops };
}

/** __alloc_pages_may_oom: under oom_lock, a last try at the high watermark, then the OOM killer. */
function* may_oom(cur: Task, model: MemoryModel, gfp: number, order: number, highestIdx: number): KernelBody<{ pfn: number; progress: boolean }> {
  if (!(yield* mutex_trylock(cur, model.oom_lock))) {
    // Someone else is killing: sleep a jiffy and count it as progress.
    yield* schedule_timeout(cur, nsPerJiffy(cur.cpu.machine), { kind: 'wait_queue', what: 'oom_lock' });
    return { pfn: -1, progress: true };
  }
  let progress = false;
  let pfn = get_page_from_freelist(model, (gfp | __GFP_HARDWALL) & ~__GFP_DIRECT_RECLAIM, order, ALLOC_WMARK_HIGH | ALLOC_CPUSET, highestIdx);
  if (pfn < 0) {
    const skip =
      order > PAGE_ALLOC_COSTLY_ORDER || // costly orders fail rather than kill
      (gfp & __GFP_RETRY_MAYFAIL) !== 0 ||
      highestIdx < ZONE_NORMAL || // the OOM killer does not kill for lowmem
      (gfp & __GFP_THISNODE) !== 0;
    if (!skip) {
      progress = yield* fn(cur, 'out_of_memory', out_of_memory(cur, model, gfp, order));
      if (!progress && (gfp & __GFP_NOFAIL) !== 0) {
        progress = true;
        pfn = get_page_from_freelist(model, gfp, order, ALLOC_NO_WATERMARKS | ALLOC_CPUSET, highestIdx);
      }
    }
  }
  yield* mutex_unlock(cur, model.oom_lock);
  return { pfn, progress };
}

/** __free_pages: give a block back (never sleeps; any context). */
export function __free_pages(cur: Task, pfn: number, order: number): void {
  const model = mm(cur.cpu.machine);
  model.phys.free(pfn, order);
  model.count('free_pages', 1 << order);
  model.sample();
}

/** page_to_phys: the block's physical address. */
export function page_to_phys(m: Machine, pfn: number): number {
  return mm(m).phys.pfnToPhys(pfn);
}

declare module '../kernel/hooks' {
  interface HookPayloads {
    allocFailure: AllocFailureInfo;
  }
}
