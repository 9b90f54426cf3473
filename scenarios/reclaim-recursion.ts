/**
 * Reclaim recursion in the block-I/O path (docs/kernel-facts.md §3.3): a driver's submission path holds
 * a resource reclaim needs (the queue's last tag, or its submission mutex) and allocates with
 * GFP_KERNEL while memory is low. Direct reclaim swaps out through the same device and waits
 * for that resource: the allocation waits on itself. GFP_NOIO with a mempool reserve is the fix
 * the kernel uses; GFP_NOIO alone avoids the cycle but, with nothing else reclaimable, the task
 * only throttles in reclaim forever (a stall).
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { fn, GFP_KERNEL, GFP_NOIO, mutex_lock, mutex_unlock, type Task } from '../lib/kernel';
import { alloc_pages, __free_pages, mempool_alloc, mempool_create_page_pool, mempool_free, mm_init, mm_prepare, MIB, TaggedSwapDevice, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';

const scenario = defineScenario({
  id: 'reclaim-recursion',
  name: 'GFP_KERNEL in a block driver submission path under memory pressure',
  description:
    'nvme_queue_rq-like submission: take a tag (or the driver mutex), allocate per-request memory, dispatch. Memory is all anonymous, so reclaim can only swap out through this very device. buggy: GFP_KERNEL while holding the last tag; lock: GFP_KERNEL under the submission mutex (lockdep sees the lock -> fs_reclaim -> lock cycle); fixed: GFP_NOIO from a mempool reserve; noio: GFP_NOIO without a reserve (no cycle, a stall in timed mode).',
  params: { cpus: 2, memoryMiB: 64, freePages: 40, tags: 1, requests: 1 },
  machine: (p) => ({ cpus: Math.max(1, p.cpus) }),
  variants: [
    { name: 'buggy', expect: { findings: ['deadlock'] } },
    { name: 'lock', expect: { findings: ['lockdep', 'deadlock'] }, confirm: true },
    { name: 'fixed', expect: { clean: true }, options: { iterations: 200 } },
    { name: 'noio', expect: { findings: ['stall'], absent: ['deadlock', 'oom_kill'] }, options: { iterations: 3, window: 0, horizon: 500_000_000 } },
  ],
  options: { iterations: 100 },
  prepare(p): MemoryImage {
    const memory = p.memoryMiB * MIB;
    return mm_prepare({ memory, processes: [{ comm: 'postgres', anon: memory - p.freePages * 4096 }] });
  },
  build(m, { variant, params, state }) {
    const dev = new TaggedSwapDevice(m, { tags: variant === 'lock' ? Math.max(params.tags, 4) : params.tags, submitLock: variant === 'lock' });
    mm_init(m, { image: state as MemoryImage, swap: dev });
    const submit = (cur: Task) =>
      fn(cur, 'nvme_queue_rq', (function* () {
        const pool = variant === 'fixed' ? yield* mempool_create_page_pool(cur, 2, 0, GFP_KERNEL) : null; // at probe time
        for (let i = 0; i < params.requests; i++) {
          if (variant === 'lock') yield* mutex_lock(cur, dev.submitLock!);
          const tag = yield* dev.blk_mq_get_tag(cur);
          let page: number | null;
          if (pool !== null) page = yield* mempool_alloc(cur, pool, GFP_NOIO);
          else page = yield* alloc_pages(cur, variant === 'noio' ? GFP_NOIO : GFP_KERNEL, 0);
          dev.dispatch(tag);
          if (variant === 'lock') yield* mutex_unlock(cur, dev.submitLock!);
          if (pool !== null && page !== null) yield* mempool_free(cur, page, pool);
          else if (page !== null && page >= 0) __free_pages(cur, page, 0);
        }
      })());
    // a write(2) reaching the driver: a user task, so reclaim throttling sleeps as upstream's does
    m.process('fio', 0, submit);
    for (let c = 1; c < params.cpus; c++) m.process(`fio/${c}`, c, function* (cur) {
      yield cur.thread.work(50_000);
    });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
