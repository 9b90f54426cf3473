/**
 * S4: dma_alloc_coherent with IRQs disabled on ARM (seed 001: Russell King, "Re: using DMA-API on
 * ARM", LKML, 2014-12-05). The DMA-API documentation only forbids dma_free_coherent with IRQs off,
 * so a driver may allocate with interrupts disabled; but ARM's remap path (v3.6+:
 * __alloc_remap_buffer -> dma_common_contiguous_remap -> get_vm_area_caller + map_vm_area, which
 * allocates page tables with GFP_KERNEL whatever the caller passed) may sleep. The remap path is
 * only taken for a blocking GFP (an atomic caller gets the atomic pool), so the buggy caller is a
 * driver that disables interrupts and passes GFP_KERNEL: the buffer's own page allocation splats
 * first (irqs_disabled(): 128, ARM's raw PSR I bit) and, within the same second, the page-table
 * allocation's splat is dropped by __might_resched's prev_jiffy ratelimit: counted, not printed.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { dma_init } from '../lib/dma/init';
import { dma_alloc_coherent, dma_free_coherent } from '../lib/dma/mapping';
import { device_register } from '../lib/dma/state';
import { fn, GFP_ATOMIC, GFP_KERNEL, local_irq_restore, local_irq_save, msleep, type Task } from '../lib/kernel';
import { mm_init, mm_prepare, MIB, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';

const GFP: Record<string, number> = { GFP_KERNEL, GFP_ATOMIC };

/** What each variant transcribes: the kernel design and the GFP the IRQs-off caller passes. */
const VARIANT = {
  // v3.6..v5.x arch/arm/mm/dma-mapping.c: blocking GFP, non-coherent device -> remap through vmalloc space
  buggy: { consistent: false, gfp: 'GFP_KERNEL' },
  // the same kernel, the caller passes GFP_ATOMIC -> __alloc_from_pool (memory remapped at boot)
  fixed: { consistent: false, gfp: 'GFP_ATOMIC' },
  // before v3.6 (Russell King's consistent region, removed by e9da6e9905e6): page tables preallocated
  // by consistent_init at boot; the IRQs-off GFP_ATOMIC caller is remapped there, allocating nothing that sleeps
  'prealloc-pt': { consistent: true, gfp: 'GFP_ATOMIC' },
} as const;

const scenario = defineScenario({
  id: 'S4',
  name: 'ARM dma_alloc_coherent with IRQs disabled: the remap path allocates page tables that may sleep',
  description:
    'Claim (seed 001, Russell King, "Re: using DMA-API on ARM", LKML 2014-12-05): dma_alloc_coherent may be called with IRQs disabled, but since "ARM: dma-mapping: remove custom consistent dma region" (Szyprowski, 2012) the remap path (ioremap_page_range, then map_vm_area) allocates page tables without GFP_ATOMIC. Each driver on its own CPU disables interrupts (local_irq_save), allocates a coherent buffer for a non-coherent device on a 32-bit ARM machine, restores interrupts and frees it. buggy: v3.6+ allocator choice with GFP_KERNEL -> __alloc_remap_buffer; might_sleep with irqs_disabled(): 128 from the buffer\'s own alloc_pages, and the page-table allocations (__pte_alloc_kernel) in the same second are counted as suppressed by __might_resched\'s one-per-second ratelimit. fixed: GFP_ATOMIC -> the atomic pool, clean. prealloc-pt: the pre-3.6 consistent region whose page tables consistent_init allocated at boot; GFP_ATOMIC callers are remapped into it with IRQs off, clean.',
  params: {
    /** The kernel of the thread (Russell King, 2014-12, 32-bit ARM v3.x): texts and checks of that era (lib/kernel/config.ts); --kernel overrides. */
    kernel: '3.x-arm',
    cpus: 2,
    /** Drivers allocating, one per CPU (0..drivers-1). */
    drivers: 2,
    memoryMiB: 256,
    sizeKiB: 64,
    /** Allocations per driver, gapMs apart: a gap of 1000 ms or more lets each one's first splat print. */
    allocs: 1,
    gapMs: 10,
    /** Override the variant's GFP (GFP_KERNEL, GFP_ATOMIC); '' keeps it. */
    gfp: '',
    /** Bytes of the pre-3.6 consistent region (prealloc-pt), MiB. */
    consistentMiB: 2,
    /** coherent_pool= (ARM's default 256 KiB), KiB. */
    coherentPoolKiB: 256,
  },
  machine: (p) => ({ cpus: Math.max(1, p.cpus), arch: 'arm' as const }),
  variants: [
    { name: 'buggy', expect: { findings: ['might_sleep'], metrics: ['might_sleep.printed', 'might_sleep.suppressed'] }, options: { iterations: 5 } },
    { name: 'fixed', expect: { clean: true, metrics: ['dma.arm32.pool'] }, options: { iterations: 20 } },
    { name: 'prealloc-pt', expect: { clean: true, metrics: ['dma.arm32.consistent'] }, options: { iterations: 20 } },
  ],
  keyMetrics: ['might_sleep.suppressed', 'might_sleep.printed', 'mm.vmap_pgtable_pages', 'dma.arm32.remap', 'dma.arm32.pool', 'dma.arm32.consistent', 'dma.arm32.consistent_pte_pages'],
  derive: (mt, schedules) => ({
    'might_sleep.suppressed_per_run': (mt['might_sleep.suppressed'] ?? 0) / schedules,
    'might_sleep.printed_per_run': (mt['might_sleep.printed'] ?? 0) / schedules,
  }),
  perturbations: [
    { name: 'one-cpu', params: { cpus: 1, drivers: 1 } },
    { name: 'four-cpus', params: { cpus: 4, drivers: 4 } },
    { name: 'large-buffer', params: { sizeKiB: 512, memoryMiB: 512, coherentPoolKiB: 2048, consistentMiB: 4 } },
    { name: 'slow-repeat', params: { allocs: 3, gapMs: 1500 } },
  ],
  prepare(p): MemoryImage {
    return mm_prepare({ memory: p.memoryMiB * MIB });
  },
  build(m, { variant, params, state }) {
    const v = VARIANT[variant as keyof typeof VARIANT];
    mm_init(m, { image: state as MemoryImage });
    dma_init(m, { arm32: true, arm32Consistent: v.consistent ? params.consistentMiB * MIB : 0, coherentPool: params.coherentPoolKiB * 1024 });
    const gfpName = params.gfp !== '' ? params.gfp : v.gfp;
    const gfp = GFP[gfpName];
    if (gfp === undefined) throw new Error(`gfp: ${gfpName} is not one of ${Object.keys(GFP).join(', ')}`);
    const size = params.sizeKiB * 1024;
    const drivers = Math.min(params.drivers, m.cpus.length);
    for (let c = 0; c < drivers; c++) {
      // a non-coherent bus master (no hardware cache coherency), 32-bit coherent mask
      const dev = device_register(m, { name: `dwc-otg.${c}`, dmaBits: 32, coherent: false });
      m.kthread(`drv/${c}`, c, function* (cur: Task) {
        for (let i = 0; i < params.allocs; i++) {
          if (i > 0) yield* msleep(cur, params.gapMs);
          const buf = yield* fn(cur, 'dwc_otg_hcd_start', (function* () {
            const flags = yield* local_irq_save(cur); // the driver's register sequence runs with IRQs off
            const b = yield* dma_alloc_coherent(cur, dev, size, gfp);
            yield* local_irq_restore(cur, flags);
            return b;
          })());
          if (buf !== null) yield* dma_free_coherent(cur, dev, size, buf.vaddr, buf.dma_handle);
        }
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
