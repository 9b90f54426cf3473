/**
 * S5: changing the cache attributes of the shared section mappings needs a TLB flush on every
 * CPU (seed 001: Russell King, "Re: using DMA-API on ARM", LKML, 2014-12-05). An atomic coherent
 * allocation that made its lowmem pages uncached in place would have to break the linear map's
 * 1 MiB section entry, flush every CPU's TLB for it and wait (an IPI and csd_lock_wait, or
 * stop_machine), then write the new entry: "totally impractical due to dma_alloc_coherent() being
 * allowed to be called with IRQs off". The transcription: two drivers, each on its own CPU, call
 * dma_alloc_coherent(GFP_ATOMIC) under spin_lock_irqsave; the hypothetical allocator changes the
 * section attributes with ARM's flush_tlb_kernel_range (on_each_cpu(ipi_flush_tlb_kernel_range,
 * &ta, 1) on an SMP without hardware TLB-maintenance broadcast). scenarios/ipi-irqs-off.ts is the
 * generic form of the same deadlock.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { dma_init } from '../lib/dma/init';
import { dma_alloc_coherent, dma_free_coherent } from '../lib/dma/mapping';
import { device_register } from '../lib/dma/state';
import { DEFINE_SPINLOCK, fn, GFP_ATOMIC, msleep, spin_lock_irqsave, spin_unlock_irqrestore, type Task } from '../lib/kernel';
import { mm_init, mm_prepare, MIB, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';

const scenario = defineScenario({
  id: 'S5',
  name: 'ARM: changing section cache attributes from an IRQs-off coherent allocation needs IPIs to every CPU',
  description:
    'Claim (seed 001, Russell King, "Re: using DMA-API on ARM", LKML 2014-12-05): making allocated lowmem uncached means changing the attributes of the shared section mapping in a break-flush-make sequence, and flushing the other CPUs\' TLBs needs stop_machine() or an IPI with wait, impossible when dma_alloc_coherent is called with IRQs off. Drivers on separate CPUs of a 32-bit ARM SMP (TLB maintenance not broadcast by hardware, so flush_tlb_kernel_range is on_each_cpu(ipi_flush_tlb_kernel_range, &ta, 1)) each allocate a GFP_ATOMIC coherent buffer for a non-coherent device under spin_lock_irqsave. buggy: the hypothetical allocator (arm32SectionRemap) changes the section attributes at allocation time: the on_each_cpu path warns (ipi_irqs_off: on the 3.x kernel of the thread, the default profile, the WARN_ON_ONCE(irqs_disabled()) in smp_call_function_many, with or without lockdep; on 6.x, lockdep_assert_irqs_enabled, so only with lockdep) and, on schedules where both CPUs flush at once, each spins in csd_lock_wait for an IPI the other cannot take (deadlock). fixed: the coherent region preallocated at boot (the atomic pool, its attributes set before any driver runs): no attribute change at run time, clean.',
  params: {
    /** The kernel of the thread (Russell King, 2014-12, 32-bit ARM v3.x): texts and checks of that era (lib/kernel/config.ts); --kernel overrides. */
    kernel: '3.x-arm',
    cpus: 2,
    /** Drivers allocating, one per CPU (0..drivers-1). */
    drivers: 2,
    memoryMiB: 256,
    sizeKiB: 64,
    /** Allocations per driver, gapMs apart. */
    allocs: 1,
    gapMs: 1,
    /** coherent_pool= (ARM's default 256 KiB), KiB. */
    coherentPoolKiB: 256,
  },
  // lockdep on: since v5.x smp_call_function_many_cond asserts IRQs on only through lockdep (3.x warned regardless)
  machine: (p) => ({ cpus: Math.max(2, p.cpus), arch: 'arm' as const, lockdep: true }),
  variants: [
    { name: 'buggy', expect: { findings: ['ipi_irqs_off', 'deadlock'] }, options: { iterations: 100, strategy: 'pct', stopWhenSeen: ['ipi_irqs_off', 'deadlock'] } },
    { name: 'fixed', expect: { clean: true, metrics: ['dma.arm32.pool'] }, options: { iterations: 100 } },
  ],
  keyMetrics: ['dma.arm32.section_changes', 'mm.tlb_flush_kernel', 'dma.arm32.section', 'dma.arm32.pool'],
  derive: (mt, schedules) => ({ 'tlb_flush_ipis_per_run': (mt['mm.tlb_flush_kernel'] ?? 0) / schedules }),
  perturbations: [
    { name: 'four-cpus', params: { cpus: 4 } },
    { name: 'three-drivers', params: { cpus: 3, drivers: 3 } },
    { name: 'large-buffer', params: { sizeKiB: 512, coherentPoolKiB: 2048, memoryMiB: 512 } },
    { name: 'repeat', params: { allocs: 3 }, scale: 2 },
  ],
  prepare(p): MemoryImage {
    return mm_prepare({ memory: p.memoryMiB * MIB });
  },
  build(m, { variant, params, state }) {
    mm_init(m, { image: state as MemoryImage });
    dma_init(m, { arm32: true, arm32SectionRemap: variant === 'buggy', coherentPool: params.coherentPoolKiB * 1024 });
    const size = params.sizeKiB * 1024;
    const drivers = Math.max(1, Math.min(params.drivers, m.cpus.length));
    for (let c = 0; c < drivers; c++) {
      const dev = device_register(m, { name: `pl330.${c}`, dmaBits: 32, coherent: false });
      const lock = DEFINE_SPINLOCK(m, 'pl330_lock'); // one class: every channel's lock is initialised at one site
      m.kthread(`drv/${c}`, c, function* (cur: Task) {
        for (let i = 0; i < params.allocs; i++) {
          if (i > 0) yield* msleep(cur, params.gapMs);
          const buf = yield* fn(cur, 'pl330_submit_req', (function* () {
            const flags = yield* spin_lock_irqsave(cur, lock);
            const b = yield* dma_alloc_coherent(cur, dev, size, GFP_ATOMIC); // the descriptor ring, allocated under the channel lock
            yield* spin_unlock_irqrestore(cur, lock, flags);
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
