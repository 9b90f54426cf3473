/**
 * mm_init: give a machine its memory model, start kswapd and the flusher, and make workqueue
 * worker creation allocate (a kworker's stack, GFP_KERNEL) so workqueues feel memory pressure.
 */
import { GFP_KERNEL } from '../kernel/gfp';
import type { Machine } from '../kernel/machine';
import { workqueueConfig } from '../kernel/workqueue';
import { attachMm, MemoryModel, type MmOptions } from './mm';
import { alloc_pages } from './page-alloc';
import { kswapd_run } from './vmscan';

/** THREAD_SIZE_ORDER on x86-64: a 16 KiB kernel stack (vmalloc'ed upstream; pages here). */
export const THREAD_SIZE_ORDER = 2;

export function mm_init(m: Machine, opts: MmOptions = {}): MemoryModel {
  const model = new MemoryModel(m, opts);
  attachMm(m, model);
  kswapd_run(model, { kswapd: opts.kswapd ?? true });
  const cfg = workqueueConfig(m);
  const create = cfg.createWorker;
  cfg.createWorker = function* (cur, pool) {
    const stack = yield* alloc_pages(cur, GFP_KERNEL, THREAD_SIZE_ORDER);
    if (stack < 0) return false;
    return yield* create(cur, pool);
  };
  return model;
}
