/**
 * Reclaim (mm/vmscan.c) over the LRU lists of lru.ts, in the kernel's rules (docs/kernel-facts.md §3.3):
 *  - clean page cache is dropped at once;
 *  - dirty page cache is written back only by kswapd or the flusher: direct reclaim skips it and
 *    wakes the flusher ("Only kswapd can writeback filesystem folios");
 *  - anonymous pages are swapped out when the reclaim context has __GFP_IO and a swap device has
 *    room: reclaim *submits* the write (which may block in the driver) and moves on; the page is
 *    freed when the write completes (PG_reclaim's immediate reclaim), and the next pass counts it
 *    as reclaimed, as the kernel's next shrink_folio_list frees the folio that
 *    folio_rotate_reclaimable put at the inactive tail;
 *  - nobody waits for writeback: a direct reclaimer that freed nothing throttles with a timeout
 *    (reclaim_throttle: HZ/10 while writeback is pending, one jiffy without progress, not at all
 *    for kernel threads other than kswapd), woken early as writes complete.
 * kswapd reclaims from the low to the high watermark with GFP_KERNEL rules and fs_reclaim held.
 *
 * Simplified: one pass scans at most nr_to_reclaim pages of each list (no priorities, no
 * active/inactive aging, no shrinkers); costs are per page of virtual CPU time.
 */
import { fs_reclaim_acquire, fs_reclaim_release } from '../kernel/fs-reclaim';
import { __GFP_IO, GFP_KERNEL } from '../kernel/gfp';
import type { KernelBody } from '../kernel/machine';
import { cond_resched, schedule_timeout, sleep_until, try_to_wake_up } from '../kernel/sched';
import { fn } from '../kernel/stack';
import { PF_KTHREAD, PF_MEMALLOC, type Task } from '../kernel/task';
import { nsPerJiffy } from '../kernel/timer';
import { LRU_ANON, LRU_FILE_CLEAN, LRU_FILE_DIRTY, LRU_WRITEBACK } from './lru';
import type { MemoryModel } from './mm';
import { MAX_RECLAIM_RETRIES } from './page-alloc';
import { ALLOC_WMARK_HIGH, ALLOC_WMARK_LOW, wmark_pages, zone_watermark_ok } from './zone';

/** SWAP_CLUSTER_MAX: pages a reclaim pass aims to free. */
export const SWAP_CLUSTER_MAX = 32;
/** Virtual CPU time to scan (isolate, check, unmap) one LRU page. */
const SCAN_PAGE_NS = 100;
/**
 * Fixed CPU cost of one reclaim pass besides the pages scanned: shrink_slab walks every
 * registered shrinker (dentries, inodes, driver caches) on each pass. A round figure; it is what
 * makes a reclaim loop that frees nothing burn virtual time rather than spin in zero time.
 */
const SHRINK_SLAB_NS = 20_000;
/** Pages the flusher writes per batch (MAX_WRITEBACK_PAGES is 1024; a smaller batch here). */
const FLUSH_BATCH = 256;

interface ScanControl {
  gfp: number;
  nrToReclaim: number;
  kswapd: boolean;
  reclaimed: number;
  /** Pages this pass submitted for writeback. */
  writeback: number;
}

/** Free one reclaimed page: off its list, back to the buddy allocator. */
function freeReclaimed(model: MemoryModel, pfn: number): void {
  model.lru.remove(pfn);
  model.phys.free(pfn, 0);
}

/** A write submitted by reclaim completed: anon pages are freed, file pages become clean. */
function writebackDone(model: MemoryModel, pfn: number, anon: boolean): void {
  if (model.lru.list[pfn] !== LRU_WRITEBACK) return; // reaped meanwhile (OOM)
  if (anon) {
    // folio_rotate_reclaimable: the kernel frees it in the next reclaim pass, which counts it.
    freeReclaimed(model, pfn);
    model.lru.rotated++;
    model.count('pswpout');
  } else {
    model.lru.move(pfn, LRU_FILE_CLEAN);
  }
  model.sample();
  // NR_THROTTLED_WRITTEN: throttled reclaimers may go on.
  const t = model.throttled;
  for (let i = 0; i < t.length; i++) try_to_wake_up(t[i]);
  t.length = 0;
}

/** Submit one page's write; false when the device refused it. */
function* pageout(cur: Task, model: MemoryModel, pfn: number, anon: boolean): KernelBody<boolean> {
  const dev = anon ? model.swap : model.bdi;
  if (dev === null) return false;
  const owner = model.lru.owner[pfn];
  // add_to_swap: a swap slot, then the page goes under writeback.
  model.lru.move(pfn, LRU_WRITEBACK);
  if (anon) {
    model.lru.swapUsed++;
    model.lru.swapents[owner]++;
  }
  const ok = yield* fn(cur, anon ? 'swap_writepage' : 'writepage', dev.writepage(cur, pfn, () => writebackDone(model, pfn, anon)));
  if (!ok) {
    // Back where it was; the slot is released.
    model.lru.remove(pfn);
    model.lru.add(anon ? LRU_ANON : LRU_FILE_DIRTY, pfn, owner);
    if (anon) {
      model.lru.swapUsed--;
      model.lru.swapents[owner]--;
    }
  }
  return ok;
}

/** shrink_node: one pass over the lists. */
function* shrink_node(cur: Task, model: MemoryModel, sc: ScanControl): KernelBody<void> {
  const lru = model.lru;
  let n = 0;
  // Anonymous pages whose swap write completed were rotated to the inactive tail: this pass frees
  // them first and counts them (already freed at completion here, see Lru.rotated).
  const rotated = Math.min(lru.rotated, sc.nrToReclaim - sc.reclaimed);
  if (rotated > 0) {
    lru.rotated -= rotated;
    sc.reclaimed += rotated;
    n += rotated;
  }
  // Clean page cache: dropped without I/O.
  while (sc.reclaimed < sc.nrToReclaim && lru.len[LRU_FILE_CLEAN] > 0) {
    freeReclaimed(model, lru.peek(LRU_FILE_CLEAN));
    sc.reclaimed++;
    n++;
  }
  // Dirty page cache: kswapd writes it back; direct reclaim leaves it to the flusher.
  const dirty = lru.len[LRU_FILE_DIRTY];
  if (dirty > 0 && sc.reclaimed < sc.nrToReclaim) {
    if (sc.kswapd) {
      for (let i = 0; i < sc.nrToReclaim && lru.len[LRU_FILE_DIRTY] > 0; i++) {
        n++;
        if (yield* pageout(cur, model, lru.peek(LRU_FILE_DIRTY), false)) sc.writeback++;
        else break;
      }
    } else {
      wakeup_flusher_threads(model);
    }
  }
  // Anonymous memory: swapped out when the context allows I/O and the device has room.
  const swap = model.swap;
  if (sc.reclaimed < sc.nrToReclaim && (sc.gfp & __GFP_IO) !== 0 && swap !== null) {
    for (let i = 0; i < sc.nrToReclaim - sc.reclaimed && lru.len[LRU_ANON] > 0 && lru.swapUsed < swap.capacity; i++) {
      n++;
      if (yield* pageout(cur, model, lru.peek(LRU_ANON), true)) {
        sc.writeback++;
        model.count('swap_submitted');
      } else break;
    }
  }
  if (n > 0) yield cur.thread.work(n * SCAN_PAGE_NS);
  model.count('pgscan', n);
  model.count('pgsteal', sc.reclaimed);
  model.sample();
}

/**
 * try_to_free_pages: direct reclaim for an allocation of `order` with `gfp` (PF_MEMALLOC is set
 * by the caller). Returns the pages freed (progress).
 */
export function* try_to_free_pages(cur: Task, model: MemoryModel, order: number, gfp: number): KernelBody<number> {
  const sc: ScanControl = { gfp, nrToReclaim: Math.max(SWAP_CLUSTER_MAX, 1 << order), kswapd: false, reclaimed: 0, writeback: 0 };
  yield* fn(cur, 'shrink_node', shrink_node(cur, model, sc));
  yield cur.thread.work(SHRINK_SLAB_NS);
  if (sc.reclaimed === 0) yield* reclaim_throttle(cur, model, model.lru.len[LRU_WRITEBACK] > 0 ? 'writeback' : 'noprogress');
  return sc.reclaimed;
}

/** reclaim_throttle: sleep a little instead of spinning in reclaim (never for plain kthreads). */
export function* reclaim_throttle(cur: Task, model: MemoryModel, reason: 'writeback' | 'noprogress'): KernelBody<void> {
  const isKswapd = cur === model.kswapd;
  if (!isKswapd && (cur.flags & PF_KTHREAD) !== 0) {
    yield* cond_resched(cur);
    return;
  }
  const hz = cur.cpu.machine.hz;
  let timeout: number;
  if (reason === 'writeback') timeout = Math.max(1, Math.floor(hz / 10));
  else {
    // skip_throttle_noprogress: a node kswapd has given up on is left to the OOM path.
    if (model.kswapdFailures >= MAX_RECLAIM_RETRIES) {
      yield* cond_resched(cur);
      return;
    }
    timeout = 1;
  }
  model.count('reclaim_throttled');
  const t0 = model.m.sim.now();
  model.throttled.push(cur);
  yield* schedule_timeout(cur, timeout * nsPerJiffy(cur.cpu.machine), { kind: 'wait_queue', what: `reclaim_throttle(${reason})` });
  const i = model.throttled.indexOf(cur);
  if (i >= 0) model.throttled.splice(i, 1);
  model.count('throttle_ns', model.m.sim.now() - t0);
}

/** pgdat_balanced: some zone the request may use is above its high watermark. */
function balanced(model: MemoryModel, order: number, highestIdx: number): boolean {
  for (const z of model.phys.zones) {
    if (z.idx > highestIdx) continue;
    if (zone_watermark_ok(model.phys, z, order, wmark_pages(z, ALLOC_WMARK_HIGH), highestIdx, 0)) return true;
  }
  return false;
}

/** wakeup_kswapd: from the allocator's slow path when a zone fell below its low watermark. */
export function wakeup_kswapd(model: MemoryModel, _gfp: number, order: number, highestIdx: number): void {
  if (model.kswapd === null) return;
  if (order > model.kswapdOrder) model.kswapdOrder = order;
  // A hopeless node (kswapd failed MAX_RECLAIM_RETRIES times) is left to direct reclaim.
  if (model.kswapdFailures >= MAX_RECLAIM_RETRIES) return;
  if (balanced(model, order, highestIdx)) return;
  if (!model.kswapdWanted) {
    model.kswapdWanted = true;
    model.count('kswapd_wake');
    try_to_wake_up(model.kswapd);
  }
}

/** Below the low watermark in the highest zone: kswapd's work is not done. */
function needsBalance(model: MemoryModel, order: number): boolean {
  const zones = model.phys.zones;
  const top = zones[zones.length - 1];
  return !zone_watermark_ok(model.phys, top, order, wmark_pages(top, ALLOC_WMARK_HIGH), top.idx, 0) || !zone_watermark_ok(model.phys, top, 0, wmark_pages(top, ALLOC_WMARK_LOW), top.idx, 0);
}

/** kswapd: sleeps until woken, then balance_pgdat reclaims to the high watermark. */
function* kswapd(cur: Task, model: MemoryModel): KernelBody<void> {
  cur.flags |= PF_MEMALLOC;
  for (;;) {
    yield* sleep_until(cur, () => model.kswapdWanted, { kind: 'wait_queue', what: 'kswapd_wait', idle: true }, 'kswapd_try_to_sleep');
    model.kswapdWanted = false;
    const order = model.kswapdOrder;
    model.kswapdOrder = 0;
    yield* fn(cur, 'balance_pgdat', balance_pgdat(cur, model, order));
  }
}

function* balance_pgdat(cur: Task, model: MemoryModel, order: number): KernelBody<void> {
  fs_reclaim_acquire(cur, GFP_KERNEL);
  const t0 = model.m.sim.now();
  let reclaimed = 0;
  let submitted = 0;
  for (let round = 0; round < MAX_RECLAIM_RETRIES && needsBalance(model, order); round++) {
    const top = model.phys.zones[model.phys.zones.length - 1];
    // Pages already under writeback will be freed by their completion: count them as reclaimed.
    const want = wmark_pages(top, ALLOC_WMARK_HIGH) - top.nr_free - model.lru.len[LRU_WRITEBACK];
    if (want <= 0) {
      yield* reclaim_throttle(cur, model, 'writeback');
      continue;
    }
    const sc: ScanControl = { gfp: GFP_KERNEL, nrToReclaim: Math.max(SWAP_CLUSTER_MAX, want), kswapd: true, reclaimed: 0, writeback: 0 };
    yield* fn(cur, 'shrink_node', shrink_node(cur, model, sc));
    yield cur.thread.work(SHRINK_SLAB_NS);
    reclaimed += sc.reclaimed;
    submitted += sc.writeback;
    if (sc.reclaimed === 0 && sc.writeback === 0) break;
    if (sc.reclaimed === 0) yield* reclaim_throttle(cur, model, 'writeback');
  }
  fs_reclaim_release(cur, GFP_KERNEL);
  model.count('kswapd_ns', model.m.sim.now() - t0);
  model.count('kswapd_steal', reclaimed);
  if (reclaimed === 0 && submitted === 0) model.kswapdFailures++;
  else model.kswapdFailures = 0;
}

/** wakeup_flusher_threads: reclaim met dirty pages it may not write itself. */
export function wakeup_flusher_threads(model: MemoryModel): void {
  const f = flushers.get(model);
  if (f === undefined || f.wanted) return;
  f.wanted = true;
  try_to_wake_up(f.task);
}

const flushers = new WeakMap<MemoryModel, { task: Task; wanted: boolean }>();

/** The flusher (wb_workfn on the bdi's writeback worker): writes dirty page cache back. */
function* flusher(cur: Task, model: MemoryModel): KernelBody<void> {
  const st = flushers.get(model);
  if (st === undefined) return;
  for (;;) {
    yield* sleep_until(cur, () => st.wanted, { kind: 'wait_queue', what: 'wb_wait', idle: true }, 'wb_workfn');
    st.wanted = false;
    const lru = model.lru;
    for (let i = 0; i < FLUSH_BATCH && lru.len[LRU_FILE_DIRTY] > 0; i++) {
      if (!(yield* pageout(cur, model, lru.peek(LRU_FILE_DIRTY), false))) break;
      model.count('flusher_written');
    }
    if (lru.len[LRU_FILE_DIRTY] > 0) st.wanted = true;
    yield* cond_resched(cur);
  }
}

/** Start kswapd0 and the flusher (service threads: they never keep a run alive). */
export function kswapd_run(model: MemoryModel, opts: { kswapd: boolean }): void {
  const m = model.m;
  if (opts.kswapd) model.kswapd = m.kthread('kswapd0', 0, (cur) => kswapd(cur, model), { service: true });
  const task = m.kthread('kworker/u:flush-8:0', 0, (cur) => flusher(cur, model), { service: true });
  flushers.set(model, { task, wanted: false });
}
