/**
 * S10 (seeds/002): Petr Tesarik replying to Christoph Hellwig's "add more large chunks ... in the
 * background" in "Re: [PATCH v2 RESEND 4/7] swiotlb: Dynamically allocated bounce buffers"
 * (2023-05-16, quoted by Catalin Marinas): "1. MAX_ORDER allocations were too small (at least with
 * 4K pages), and even then they would often fail. 2. Allocating from CMA did work but only from
 * process context. I made a stab at modifying the CMA allocator to work from interrupt context,
 * but there are non-trivial interactions with the buddy allocator."
 *
 * An NVMe-like device completes requests in hardirq; its handler starts the next request, whose
 * dma_map_page finds the swiotlb full and grows the pool by one chunk (`chunkMiB`). One run boots
 * the machine with a CMA area, then runs the fragmenting workload (lib/mm/uptime.ts) up to each
 * uptime step, where `misses` such completions want a chunk; the chunks are given back after the
 * step (so each step measures the machine at that uptime).
 *
 *  buggy   growth inside the mapping path, in the completion interrupt, tried the ways Tesarik
 *          describes: (1) through the DMA API, dma_alloc_contiguous(dev, size, GFP_ATOMIC): CMA
 *          only where sleeping is allowed, so it returns nothing at once (counted:
 *          grow.cma_nonblocking); (2) the buddy allocator, alloc_pages(GFP_ATOMIC | __GFP_NOWARN,
 *          get_order(size)): a MAX_PAGE_ORDER (order 10, 4 MiB) block at most, and after uptime
 *          it fails more and more often (grow.fail_rate.u<rounds>); (3) cma_alloc called directly
 *          from the interrupt (the "stab"): it takes cma->alloc_mutex and migrates pages, so
 *          might_sleep and cma_atomic (and lockdep on the mutex in hardirq context).
 *  fixed   the interrupt only schedules work; the worker (process context) grows the pool from
 *          CMA with dma_alloc_contiguous(dev, size, GFP_KERNEL): every chunk at every uptime.
 *
 * Simplified: the swiotlb itself is not modelled here (its designs are S2, S3, S7-S9, S11): the
 * mapping path's frames are named as upstream's, the miss is given (every completion needs a new
 * chunk), and the chunk is not turned into an io_tlb_pool. Growth that only succeeded through
 * cma_alloc from the interrupt counts as failed (grow.fail_rate), since that path is the bug.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { __GFP_NOWARN, complete, DECLARE_COMPLETION, DECLARE_WORK, flush_work, fn, GFP_ATOMIC, GFP_KERNEL, raise_irq, request_irq, schedule_work, type Task, wait_for_completion } from '../lib/kernel';
import { dma_alloc_contiguous, dma_free_contiguous, CONFIG_CMA_ALIGNMENT } from '../lib/dma/contiguous';
import { device } from '../lib/dma/device';
import { __free_pages, alloc_pages, cma_alloc, cma_area, cma_declare_contiguous, cma_release, get_order, mm, mm_init, mm_prepare, mm_uptime, MIB, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';
import { parseSteps } from '../lib/scenario/params';

export const M_ATTEMPTS = 'grow.attempts';
/** Growth that a legitimate path satisfied (the DMA API, the buddy allocator, the worker's CMA). */
export const M_OK = 'grow.ok';
export const M_FAIL_RATE = 'grow.fail_rate';
export const M_CMA_NONBLOCKING = 'grow.cma_nonblocking';
export const M_BUDDY_ATTEMPTS = 'grow.buddy_attempts';
export const M_BUDDY_FAILURES = 'grow.buddy_failures';
export const M_CMA_FROM_IRQ = 'grow.cma_from_irq';

/** Growth failure rate overall and per uptime step; the buddy allocator's own failure rate. */
export function growRates(metrics: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  const rate = (fail: number, n: number) => (n > 0 ? fail / n : NaN);
  out[M_FAIL_RATE] = rate((metrics[M_ATTEMPTS] ?? 0) - (metrics[M_OK] ?? 0), metrics[M_ATTEMPTS] ?? 0);
  out['grow.buddy_fail_rate'] = rate(metrics[M_BUDDY_FAILURES] ?? 0, metrics[M_BUDDY_ATTEMPTS] ?? 0);
  for (const [k, v] of Object.entries(metrics)) {
    const mm = /^grow\.attempts\.u(\d+)$/.exec(k);
    if (mm !== null) out[`${M_FAIL_RATE}.u${mm[1]}`] = rate(v - (metrics[`${M_OK}.u${mm[1]}`] ?? 0), v);
  }
  return out;
}

interface Chunk {
  pfn: number;
  from: 'cma' | 'buddy';
  order: number;
}

const scenario = defineScenario({
  id: 'S10',
  name: 'growing the swiotlb by large chunks from the mapping path in IRQ context vs from a worker with CMA',
  description:
    'Petr Tesarik, "Re: [PATCH v2 RESEND 4/7] swiotlb: Dynamically allocated bounce buffers", 2023-05-16 (seeds/002, reply to Christoph Hellwig\'s chunk suggestion): MAX_ORDER allocations are too small (4 MiB with 4 KiB pages) and often fail; CMA works only from process context. An NVMe-like completion interrupt starts the next request, whose mapping misses and grows the pool by a chunk, at several uptimes of a fragmenting workload. buggy: growth in the interrupt: dma_alloc_contiguous(GFP_ATOMIC) returns nothing (CMA needs a blocking gfp; counted), alloc_pages(GFP_ATOMIC|__GFP_NOWARN, order 10) fails more often with uptime (grow.fail_rate.u<rounds>), and cma_alloc called directly from the interrupt gives might_sleep and cma_atomic. fixed: the interrupt schedules work; the worker takes the chunk from CMA with GFP_KERNEL and always succeeds.',
  params: {
    /** The kernel of the thread (v2, 2023-05, posted against v6.3): lib/kernel/config.ts; --kernel overrides. */
    kernel: '6.3',
    cpus: 2,
    memoryMiB: 64,
    cmaMiB: 16,
    /** Bytes the pool grows by per miss, in MiB (4 = one MAX_PAGE_ORDER block with 4 KiB pages). */
    chunkMiB: 4,
    /** Misses (chunks wanted) at each uptime step. */
    misses: 2,
    /** Uptime steps, in rounds of the fragmenting workload (its duration). */
    uptimeSteps: '0,50,200',
    /** Fraction of the workload's allocations that are unmovable kernel memory (its intensity). */
    unmovable: 0.08,
    ageSeed: 1,
  },
  machine: (p) => ({ cpus: Math.max(1, p.cpus) }),
  variants: [
    {
      name: 'buggy',
      expect: { findings: ['might_sleep', 'cma_atomic', 'lockdep'], metrics: [M_FAIL_RATE, M_CMA_NONBLOCKING, M_CMA_FROM_IRQ, 'grow.buddy_fail_rate'] },
      description: 'growth in the completion interrupt: DMA API (nothing), buddy order-10 (fails with uptime), cma_alloc from hardirq',
    },
    {
      name: 'fixed',
      expect: { clean: true, metrics: [M_FAIL_RATE, 'mm.cma_alloc'] },
      description: 'the interrupt schedules work; the worker grows from CMA (GFP_KERNEL)',
    },
  ],
  options: { iterations: 2 },
  keyMetrics: [M_FAIL_RATE, `${M_FAIL_RATE}.u0`, `${M_FAIL_RATE}.u50`, `${M_FAIL_RATE}.u200`, 'grow.buddy_fail_rate', M_CMA_NONBLOCKING, M_CMA_FROM_IRQ, 'mm.cma_alloc'],
  derive: (metrics) => growRates(metrics),
  perturbations: [
    { name: '4-cpus', params: { cpus: 4 } },
    { name: '2x-memory', params: { memoryMiB: 128, cmaMiB: 32, misses: 4 } },
    // Larger than a MAX_PAGE_ORDER block: the buddy allocator cannot give it at all.
    { name: 'chunk-8MiB', params: { chunkMiB: 8, memoryMiB: 128, cmaMiB: 32 } },
    { name: 'intense', params: { unmovable: 0.12, ageSeed: 2 } },
  ],
  prepare(p): MemoryImage {
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    cma_declare_contiguous(image, p.cmaMiB * MIB, 'reserved');
    return image;
  },
  build(m, { variant, params, state }) {
    mm_init(m, { image: state as MemoryImage });
    const sim = m.sim;
    const dev = new device(m, 0, { name: 'nvme0' });
    const steps = parseSteps(String(params.uptimeSteps));
    const bytes = params.chunkMiB * MIB;
    const ps = mm(m).phys.pageSize;
    const order = get_order(bytes, ps);
    const pages = Math.ceil(bytes / ps);
    const chunks: Chunk[] = [];
    let step = 0;
    const counted = (name: string) => {
      sim.count(name);
      sim.count(`${name}.u${step}`);
    };

    /** Tesarik's attempts at growing from the mapping path, which here runs in the completion IRQ. */
    function* swiotlb_grow_atomic(cur: Task) {
      counted(M_ATTEMPTS);
      // (1) The DMA API: CMA for a contiguous chunk. A non-blocking gfp gets nothing, silently.
      let pfn = yield* dma_alloc_contiguous(cur, dev, bytes, GFP_ATOMIC);
      if (pfn >= 0) {
        chunks.push({ pfn, from: 'cma', order });
        counted(M_OK);
        return;
      }
      sim.count(M_CMA_NONBLOCKING);
      // (2) The buddy allocator: one block, MAX_PAGE_ORDER at most (larger orders fail at once).
      counted(M_BUDDY_ATTEMPTS);
      pfn = yield* alloc_pages(cur, GFP_ATOMIC | __GFP_NOWARN, order);
      if (pfn >= 0) {
        chunks.push({ pfn, from: 'buddy', order });
        counted(M_OK);
        return;
      }
      counted(M_BUDDY_FAILURES);
      // (3) CMA directly, from the interrupt: it sleeps (alloc_mutex, page migration).
      sim.count(M_CMA_FROM_IRQ);
      pfn = yield* cma_alloc(cur, cma_area(m), pages, Math.min(order, CONFIG_CMA_ALIGNMENT), true);
      if (pfn >= 0) chunks.push({ pfn, from: 'cma', order });
    }

    /** The fix: the worker grows the pool from CMA in process context. */
    const growWork = DECLARE_WORK(m, 'swiotlb_dyn_alloc', function* swiotlb_dyn_alloc(cur: Task) {
      while (pendingGrowth > 0) {
        pendingGrowth--;
        counted(M_ATTEMPTS);
        const pfn = yield* dma_alloc_contiguous(cur, dev, bytes, GFP_KERNEL);
        if (pfn >= 0) {
          chunks.push({ pfn, from: 'cma', order });
          counted(M_OK);
        }
      }
    });
    let pendingGrowth = 0;

    /** dma_map_page -> swiotlb_map -> swiotlb_find_slots: the pool is full, grow it. */
    const mapMiss = (cur: Task) =>
      fn(cur, 'dma_map_page_attrs', fn(cur, 'swiotlb_map', fn(cur, 'swiotlb_tbl_map_single', fn(cur, 'swiotlb_find_slots', (function* () {
        if (variant === 'buggy') yield* fn(cur, 'swiotlb_grow', swiotlb_grow_atomic(cur));
        else {
          pendingGrowth++;
          yield* schedule_work(cur, growWork);
        }
      })()))));

    const line = request_irq(m, 0, 'nvme0q1', function* nvme_irq(cur) {
      // nvme_complete_rq -> blk_mq_end_request -> the next request's nvme_queue_rq maps its data
      yield* fn(cur, 'nvme_queue_rq', mapMiss(cur));
      yield* complete(cur, handled);
    });
    const handled = DECLARE_COMPLETION(m, 'nvme_irq_done');

    m.kthread('fio', 0, function* (cur) {
      let uptime = 0;
      for (const s of steps) {
        yield* mm_uptime(cur, s - uptime, { seed: params.ageSeed, unmovable: params.unmovable });
        uptime = s;
        step = s;
        for (let i = 0; i < params.misses; i++) {
          yield* raise_irq(cur, line); // a completion
          yield* wait_for_completion(cur, handled);
        }
        if (variant !== 'buggy') yield* flush_work(cur, growWork);
        // The step is measured: give the chunks back.
        while (chunks.length > 0) {
          const c = chunks.pop()!;
          if (c.from === 'buddy') __free_pages(cur, c.pfn, c.order);
          else if (variant === 'buggy') yield* cma_release(cur, cma_area(m), c.pfn, pages);
          else yield* dma_free_contiguous(cur, dev, c.pfn, bytes);
        }
      }
    });
    for (let c = 1; c < params.cpus; c++) {
      m.process(`app/${c}`, c, function* (cur) {
        for (let i = 0; i < steps.length; i++) yield cur.thread.work(50_000);
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
