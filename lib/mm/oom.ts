/**
 * The OOM killer (mm/oom_kill.c, docs/kernel-facts.md §3.3b). The allocator calls it (under oom_lock)
 * only for order <= PAGE_ALLOC_COSTLY_ORDER without __GFP_RETRY_MAYFAIL; out_of_memory itself
 * returns "progress" without killing for allocations lacking __GFP_FS ("The OOM killer does not
 * compensate for IO-less reclaim"), so GFP_NOIO / GFP_NOFS retry instead.
 *
 * The victim is the process with the highest badness (resident anonymous pages + swap entries,
 * adjusted by oom_score_adj), among the scenario's tasks that own memory and the image's
 * background processes. Its memory is reaped at once (the oom_reaper's job, done synchronously
 * here: a simplification); a simulated victim task sees fatal_signal_pending() and its further
 * allocations fail once the reserves it may use (ALLOC_OOM) are gone.
 */
import { __GFP_FS, gfpName } from '../kernel/gfp';
import type { KernelBody } from '../kernel/machine';
import type { Task } from '../kernel/task';
import { LRU_ANON } from './lru';
import type { MemoryModel, MmStruct } from './mm';

/** What the oomKill hook carries (lib/check/alloc.ts formats it). */
export interface OomKillInfo {
  gfp: number;
  order: number;
  /** null when nothing was killable: the kernel panics. */
  victim: MmStruct | null;
  anonRssKb: number;
  swapKb: number;
  /** The kernel's log lines ("invoked oom-killer", "Out of memory: Killed process ..."). */
  lines: string[];
}

/** oom_badness: pages the kill would free, adjusted; null for an unkillable process. */
function badness(model: MemoryModel, mm: MmStruct, totalPages: number): number | null {
  if (mm.oom_score_adj === -1000) return null;
  const points = model.lru.rss[mm.id] + model.lru.swapents[mm.id];
  return points + Math.trunc((mm.oom_score_adj * totalPages) / 1000);
}

/** out_of_memory: true when it made progress (killed, or declined as upstream does). */
export function* out_of_memory(cur: Task, model: MemoryModel, gfp: number, order: number): KernelBody<boolean> {
  if (gfp !== 0 && (gfp & __GFP_FS) === 0) return true;
  const totalPages = model.phys.nrPages;
  let victim: MmStruct | null = null;
  let best = -Infinity;
  for (const mm of model.mms) {
    if (mm === undefined || model.oomVictims.has(mm.id)) continue;
    const p = badness(model, mm, totalPages);
    if (p === null || p <= 0) continue;
    if (p > best) {
      best = p;
      victim = mm;
    }
  }
  const pageKb = model.phys.pageSize / 1024;
  const lines = [`${cur.comm} invoked oom-killer: gfp_mask=0x${gfp.toString(16)}(${gfpName(gfp)}), order=${order}, oom_score_adj=0`];
  if (victim === null) {
    lines.push('Out of memory and no killable processes...', 'Kernel panic - not syncing: System is deadlocked on memory');
    model.m.emit('oomKill', cur, { gfp, order, victim: null, anonRssKb: 0, swapKb: 0, lines } satisfies OomKillInfo);
    return false;
  }
  const anonRssKb = model.lru.rss[victim.id] * pageKb;
  const swapKb = model.lru.swapents[victim.id] * pageKb;
  lines.push(
    `Out of memory: Killed process ${victim.pid} (${victim.comm}) total-vm:${anonRssKb + swapKb}kB, anon-rss:${anonRssKb}kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:${victim.oom_score_adj}`,
  );
  model.oomVictims.add(victim.id);
  model.count('oom_kill');
  model.m.emit('oomKill', cur, { gfp, order, victim, anonRssKb, swapKb, lines } satisfies OomKillInfo);
  const reaped = oom_reap(model, victim.id);
  lines.push(`oom_reaper: reaped process ${victim.pid} (${victim.comm}), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB`);
  model.m.log.printk(cur.cpu.id, lines[lines.length - 1]);
  model.count('oom_reaped_pages', reaped);
  yield cur.thread.point();
  return true;
}

/**
 * The oom_reaper: free the victim's resident anonymous memory and swap slots. Pages under swap
 * writeback are left to their completion, which frees them anyway.
 */
export function oom_reap(model: MemoryModel, id: number): number {
  const lru = model.lru;
  let freed = 0;
  for (let i = lru.len[LRU_ANON] - 1; i >= 0; i--) {
    const pfn = lru.at(LRU_ANON, i);
    if (lru.owner[pfn] !== id) continue;
    lru.remove(pfn);
    model.phys.free(pfn, 0);
    freed++;
  }
  lru.swapUsed -= lru.swapents[id];
  lru.swapents[id] = 0;
  model.sample();
  return freed;
}

/** fatal_signal_pending(current): an OOM victim has SIGKILL pending. */
export function fatal_signal_pending(model: MemoryModel, cur: Task): boolean {
  return model.isOomVictim(cur);
}

declare module '../kernel/hooks' {
  interface HookPayloads {
    oomKill: OomKillInfo;
  }
}
