/**
 * S6 (seeds/001): Russell King, "Re: using DMA-API on ARM", LKML 2014-12-05: allocating the DMA
 * coherent memory "one section at a time" at run time is not a reality, because "the chances of
 * being able to allocate 1MB of memory at a go after the system has been running for a while is
 * near-on impossible"; so "pre-allocate enough DMA coherent memory at boot time ... Those who want
 * it dynamic can use CMA instead."
 *
 * One run is the machine's life: boot, then the fragmenting workload (page cache churn with
 * interleaved unmovable and reclaimable kernel allocations, a slowly turning-over set of long-lived
 * ones scattered wherever memory was free: lib/mm/uptime.ts) up to each uptime step, and at each
 * step a driver asks dma_alloc_coherent for `buffers` section-sized (order 8, 1 MiB) buffers and
 * frees them again. Metrics per uptime step: attempts, failures, and (derived) the failure rate.
 *
 *  buggy   the section comes from the page allocator at run time (arm's __dma_alloc_buffer:
 *          alloc_pages(GFP_KERNEL, order)). Costly order: direct compaction and reclaim, then it
 *          fails without the OOM killer (order > PAGE_ALLOC_COSTLY_ORDER never OOM-kills, unlike
 *          the 2014 complaint about 3.x kernels): "page allocation failure: order:8" findings, a
 *          failure rate that grows with uptime.
 *  fixed   `fix=cma` (default): the CMA area reserved at boot, dma_alloc_from_contiguous at run
 *          time (migrating the page cache the workload put into it); `fix=prealloc`: Russell's
 *          design, the sections allocated once at boot into a pool the driver draws from. Both
 *          succeed at every uptime.
 *
 * Simplified: the ARM remap (vmap with new page-table attributes) after the allocation is not
 * transcribed (S4 and S5 are about that); the workload is not a set of tasks but the memory model's
 * uptime step, so nothing interleaves with it (lib/mm/uptime.ts).
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { __GFP_NOWARN, fn, GFP_KERNEL, type Task } from '../lib/kernel';
import { dma_alloc_from_contiguous, dma_release_from_contiguous } from '../lib/dma/contiguous';
import { __free_pages, alloc_pages, cma_declare_contiguous, mm_init, mm_prepare, mm_uptime, MIB, type MemoryImage } from '../lib/mm';
import { ProgramError } from '../scheduler';
import { defineScenario } from '../lib/scenario/define';
import { parseSteps } from '../lib/scenario/params';

export const M_ATTEMPTS = 'coherent.attempts';
export const M_FAILURES = 'coherent.failures';
export const M_FAIL_RATE = 'coherent.fail_rate';

/** Failure rate overall and per uptime step, from the summed counters. */
export function failRates(metrics: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  const a = metrics[M_ATTEMPTS] ?? 0;
  if (a > 0) out[M_FAIL_RATE] = (metrics[M_FAILURES] ?? 0) / a;
  for (const [k, v] of Object.entries(metrics)) {
    const mm = /^coherent\.attempts\.u(\d+)$/.exec(k);
    if (mm === null || !(v > 0)) continue;
    out[`${M_FAIL_RATE}.u${mm[1]}`] = (metrics[`${M_FAILURES}.u${mm[1]}`] ?? 0) / v;
  }
  return out;
}

const scenario = defineScenario({
  id: 'S6',
  name: 'a 1 MiB (order-8) contiguous allocation after uptime: buddy at run time vs CMA or boot-time preallocation',
  description:
    'Russell King, "Re: using DMA-API on ARM", LKML 2014-12-05 (seeds/001): after the system has run a while a 1 MiB contiguous allocation is near impossible, so pre-allocate DMA coherent memory at boot or use CMA. One run boots a machine, runs a fragmenting workload (page cache churn, scattered long-lived kernel allocations) up to each uptime step, and there asks for `buffers` order-8 sections. buggy: alloc_pages(GFP_KERNEL, 8) at run time (arm __dma_alloc_buffer): compaction and reclaim, then "page allocation failure: order:8" (no OOM kill above PAGE_ALLOC_COSTLY_ORDER), failure rate rising with uptime (metrics coherent.fail_rate.u<rounds>). fixed: dma_alloc_from_contiguous from a CMA area reserved at boot (fix=cma), or the sections allocated at boot into a pool (fix=prealloc): no failure at any uptime.',
  params: {
    /** The kernel of the thread (Russell King, 2014-12, 32-bit ARM v3.x): texts and checks of that era (lib/kernel/config.ts); --kernel overrides. */
    kernel: '3.x-arm',
    cpus: 2,
    memoryMiB: 64,
    /** Uptime steps, in rounds of the fragmenting workload (its duration). */
    uptimeSteps: '0,50,100,200',
    /** Fraction of the workload's allocations that are unmovable kernel memory (its intensity). */
    unmovable: 0.08,
    ageSeed: 1,
    /** Buffers asked for at each step, of 2^order pages. */
    buffers: 8,
    order: 8,
    cmaMiB: 16,
    fix: 'cma',
  },
  machine: (p) => ({ cpus: Math.max(1, p.cpus) }),
  variants: [
    {
      name: 'buggy',
      expect: { findings: ['alloc_failure'], metrics: [M_FAIL_RATE, 'mm.compact_stall'] },
      description: 'alloc_pages(GFP_KERNEL, order) at each uptime step',
    },
    {
      name: 'fixed',
      expect: { clean: true, metrics: [M_FAIL_RATE] },
      description: 'CMA reserved at boot (fix=cma) or sections preallocated at boot (fix=prealloc)',
    },
  ],
  // One run covers every uptime step; schedules differ only in where the other CPUs' tasks interleave.
  options: { iterations: 2 },
  keyMetrics: [M_FAIL_RATE, `${M_FAIL_RATE}.u0`, `${M_FAIL_RATE}.u50`, `${M_FAIL_RATE}.u100`, `${M_FAIL_RATE}.u200`, 'mm.compact_migrated_pages', 'mm.cma_migrated_pages'],
  derive: (metrics) => failRates(metrics),
  perturbations: [
    { name: '4-cpus', params: { cpus: 4 } },
    { name: '2x-memory', params: { memoryMiB: 128, buffers: 16, cmaMiB: 32 } },
    { name: 'prealloc', params: { fix: 'prealloc' } },
    { name: 'longer-uptime', params: { uptimeSteps: '0,100,300' } },
    { name: 'intense', params: { unmovable: 0.12, ageSeed: 2 } },
  ],
  prepare(p): MemoryImage {
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    if (p.fix === 'cma') cma_declare_contiguous(image, p.cmaMiB * MIB, 'reserved');
    else if (p.fix !== 'prealloc') throw new ProgramError(`fix must be cma or prealloc, got '${String(p.fix)}'`);
    return image;
  },
  build(m, { variant, params, state }) {
    mm_init(m, { image: state as MemoryImage });
    const steps = parseSteps(String(params.uptimeSteps));
    const order = params.order;
    const pages = 2 ** order;
    const sim = m.sim;
    const useCma = variant === 'fixed' && params.fix === 'cma';
    const usePool = variant === 'fixed' && params.fix === 'prealloc';
    // Russell's boot-time region: sections taken once at boot, handed out by the driver's pool.
    const pool: number[] = [];

    /** dma_alloc_coherent of one section: the first pfn or -1. */
    const dmaAllocCoherent = (cur: Task) =>
      fn(cur, 'dma_alloc_coherent', (function* () {
        if (usePool) return pool.length > 0 ? pool.pop()! : -1; // __alloc_from_pool
        if (useCma) return yield* fn(cur, '__alloc_from_contiguous', dma_alloc_from_contiguous(cur, null, pages, order, false));
        return yield* fn(cur, '__dma_alloc_buffer', alloc_pages(cur, GFP_KERNEL, order));
      })());
    const dmaFreeCoherent = (cur: Task, pfn: number) =>
      fn(cur, 'dma_free_coherent', (function* () {
        if (usePool) pool.push(pfn);
        else if (useCma) yield* dma_release_from_contiguous(cur, null, pfn, pages);
        else __free_pages(cur, pfn, order);
      })());

    m.kthread('vdec_probe', 0, function* (cur) {
      if (usePool) {
        for (let i = 0; i < params.buffers; i++) {
          const pfn = yield* fn(cur, 'dma_preallocate_pool', alloc_pages(cur, GFP_KERNEL | __GFP_NOWARN, order));
          if (pfn < 0) throw new ProgramError(`S6 prealloc: ${params.buffers} sections do not fit at boot in ${params.memoryMiB} MiB`);
          pool.push(pfn);
        }
      }
      let uptime = 0;
      for (const step of steps) {
        yield* mm_uptime(cur, step - uptime, { seed: params.ageSeed, unmovable: params.unmovable });
        uptime = step;
        const got: number[] = [];
        for (let i = 0; i < params.buffers; i++) {
          const pfn = yield* dmaAllocCoherent(cur);
          sim.count(M_ATTEMPTS);
          sim.count(`${M_ATTEMPTS}.u${step}`);
          if (pfn < 0) {
            sim.count(M_FAILURES);
            sim.count(`${M_FAILURES}.u${step}`);
          } else got.push(pfn);
        }
        for (const pfn of got) yield* dmaFreeCoherent(cur, pfn);
      }
    });
    // The other CPUs run something of their own, so allocations interleave with it.
    for (let c = 1; c < params.cpus; c++) {
      m.process(`app/${c}`, c, function* (cur) {
        for (let i = 0; i < steps.length; i++) yield cur.thread.work(50_000);
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
