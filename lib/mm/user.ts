/**
 * Memory a workload creates: anonymous pages a process faults in, and page cache a write(2)
 * fills. These are what reclaim reclaims and the OOM killer weighs; a scenario's greedy task is
 * a loop of handle_mm_fault.
 */
import { GFP_HIGHUSER_MOVABLE } from '../kernel/gfp';
import type { KernelBody } from '../kernel/machine';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { LRU_ANON, LRU_FILE_CLEAN, LRU_FILE_DIRTY } from './lru';
import { mm } from './mm';
import { fatal_signal_pending, oom_reap } from './oom';
import { alloc_pages } from './page-alloc';

/**
 * handle_mm_fault for `pages` anonymous pages of the current process (GFP_HIGHUSER_MOVABLE).
 * Returns the pages faulted in; fewer when the allocation failed (VM_FAULT_OOM) or the task was
 * killed by the OOM killer meanwhile.
 */
export function* handle_mm_fault(cur: Task, pages = 1): KernelBody<number> {
  return yield* fn(cur, 'handle_mm_fault', fault(cur, pages));
}

function* fault(cur: Task, pages: number): KernelBody<number> {
  const model = mm(cur.cpu.machine);
  const id = model.mmOf(cur).id;
  let n = 0;
  for (; n < pages; n++) {
    if (fatal_signal_pending(model, cur)) break;
    const pfn = yield* alloc_pages(cur, GFP_HIGHUSER_MOVABLE, 0);
    if (pfn < 0) break;
    // A victim killed while this allocation slept gets its page reaped with the rest.
    if (fatal_signal_pending(model, cur)) {
      model.phys.free(pfn, 0);
      break;
    }
    model.lru.add(LRU_ANON, pfn, id);
  }
  model.count('pgfault', n);
  return n;
}

/** Page cache for `pages` pages of a file (filemap_add_folio with the mapping's GFP); dirty after a write. */
export function* add_to_page_cache(cur: Task, pages: number, dirty: boolean): KernelBody<number> {
  return yield* fn(cur, 'filemap_add_folio', addCache(cur, pages, dirty));
}

function* addCache(cur: Task, pages: number, dirty: boolean): KernelBody<number> {
  const model = mm(cur.cpu.machine);
  let n = 0;
  for (; n < pages; n++) {
    const pfn = yield* alloc_pages(cur, GFP_HIGHUSER_MOVABLE, 0);
    if (pfn < 0) break;
    model.lru.add(dirty ? LRU_FILE_DIRTY : LRU_FILE_CLEAN, pfn);
  }
  return n;
}

/** exit_mmap: the process's anonymous memory and swap slots go back, as the OOM reaper frees them. */
export function exit_mm(cur: Task): number {
  const model = mm(cur.cpu.machine);
  return oom_reap(model, model.mmOf(cur).id);
}
