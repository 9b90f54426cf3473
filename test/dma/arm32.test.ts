import { expect } from 'chai';
import { runIteration, type Program, type RunResult } from '../../scheduler';
import { installDetectors } from '../../lib/check';
import { GFP_ATOMIC, GFP_KERNEL, __GFP_ZERO } from '../../lib/kernel/gfp';
import { local_irq_restore, local_irq_save } from '../../lib/kernel/irqflags';
import { Machine } from '../../lib/kernel/machine';
import { MIB, mm_init, mm_prepare } from '../../lib/mm';
import { arm_set_tlb_ops_need_broadcast, flush_tlb_kernel_range, vmap_pgtable_gfps, vmap_pgtable_pages } from '../../lib/mm/vmalloc';
import { device_register, dma_init } from '../../lib/dma';
import type { DmaOptions } from '../../lib/dma/state';
import { dma_alloc_coherent, dma_free_coherent } from '../../lib/dma/mapping';
import { arm32_choose_allocator } from '../../lib/dma/arm32';
import { CONSISTENT_BASE } from '../../lib/dma/historical/arm32-consistent';

const image = mm_prepare({ memory: 128 * MIB });

/** A 32-bit ARM machine with the ARM32 DMA allocator and a non-coherent device. */
function armProgram(name: string, cpus: number, dma: DmaOptions, body: (m: Machine) => void): Program {
  let first = true;
  return {
    name,
    params: { cpus, ...dma },
    setup(sim) {
      const m = new Machine(sim, { cpus, arch: 'arm' });
      installDetectors(m);
      sim.world = m;
      if (!first) image.restore();
      first = false;
      mm_init(m, { image });
      dma_init(m, { arm32: true, ...dma });
      body(m);
    },
  };
}
const counters = (r: RunResult) => r.metrics.counters ?? {};

describe('dma: ARM32 dma_alloc_coherent', () => {
  it('chooses as __dma_alloc does: v3.6+ (cma/simple/remap/pool), the pre-3.6 consistent region, the hypothetical section remap', () => {
    const got: string[] = [];
    const p = (dma: DmaOptions) => armProgram('choice', 1, dma, (m) => {
      const nc = device_register(m, { name: 'nc', dmaBits: 32, coherent: false });
      const co = device_register(m, { name: 'co', dmaBits: 32, coherent: true });
      got.push([arm32_choose_allocator(m, nc, GFP_KERNEL), arm32_choose_allocator(m, nc, GFP_ATOMIC), arm32_choose_allocator(m, co, GFP_KERNEL), arm32_choose_allocator(m, co, GFP_ATOMIC)].join(','));
    });
    runIteration(p({}), { iteration: 0 });
    runIteration(p({ arm32Consistent: 2 * MIB }), { iteration: 0 });
    runIteration(p({ arm32SectionRemap: true }), { iteration: 0 });
    expect([...new Set(got)]).to.deep.equal(['remap,pool,simple,simple', 'consistent,consistent,simple,simple', 'remap,section,simple,simple']);
  });

  it('remap path: dma_common_contiguous_remap maps through the vmalloc space; on ARM (pmd folded) only a PTE page is allocated, GFP_KERNEL', () => {
    let tables = -1;
    let gfps: readonly number[] = [];
    const p = armProgram('remap', 1, {}, (m) => {
      const dev = device_register(m, { name: 'nc', dmaBits: 32, coherent: false });
      m.kthread('t', 0, function* (cur) {
        const b = yield* dma_alloc_coherent(cur, dev, 64 * 1024, GFP_KERNEL);
        tables = vmap_pgtable_pages(m);
        gfps = vmap_pgtable_gfps(m).slice();
        yield* dma_free_coherent(cur, dev, 64 * 1024, b!.vaddr, b!.dma_handle);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(tables).to.equal(1);
    expect(gfps).to.deep.equal([GFP_KERNEL | __GFP_ZERO]);
    expect(counters(r)['dma.arm32.remap']).to.equal(1);
  });

  it('consistent region (pre-3.6): consistent_init allocates one PTE page per 2 MiB at boot; IRQs-off GFP_ATOMIC allocations are remapped there without allocating page tables', () => {
    const addrs: number[] = [];
    let tables = -1;
    const p = armProgram('consistent', 1, { arm32Consistent: 4 * MIB }, (m) => {
      const dev = device_register(m, { name: 'nc', dmaBits: 32, coherent: false });
      m.kthread('t', 0, function* (cur) {
        addrs.length = 0;
        const f = yield* local_irq_save(cur);
        const a = yield* dma_alloc_coherent(cur, dev, 64 * 1024, GFP_ATOMIC);
        const b = yield* dma_alloc_coherent(cur, dev, 8 * 1024, GFP_ATOMIC);
        const big = yield* dma_alloc_coherent(cur, dev, 8 * MIB, GFP_ATOMIC);
        yield* local_irq_restore(cur, f);
        tables = vmap_pgtable_pages(m);
        addrs.push(a!.vaddr, b!.vaddr, big === null ? 0 : 1);
        yield* dma_free_coherent(cur, dev, 64 * 1024, a!.vaddr, a!.dma_handle);
        const c = yield* dma_alloc_coherent(cur, dev, 64 * 1024, GFP_ATOMIC);
        addrs.push(c!.vaddr);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(counters(r)['dma.arm32.consistent_pte_pages']).to.equal(2);
    expect(tables).to.equal(0);
    // first fit, aligned to the power of two of the size (at most a section); freed ranges are reused
    expect(addrs).to.deep.equal([CONSISTENT_BASE, CONSISTENT_BASE + 64 * 1024, 0, CONSISTENT_BASE]);
  });

  it("ARM flush_tlb_kernel_range: IPIs every other CPU when tlb_ops_need_broadcast(), a local flush (no IPI, no warning with IRQs off) when the hardware broadcasts", () => {
    const p = (broadcast: boolean) => armProgram(`flush-${broadcast}`, 2, {}, (m) => {
      arm_set_tlb_ops_need_broadcast(m, broadcast);
      m.kthread('t', 0, function* (cur) {
        const f = yield* local_irq_save(cur);
        yield* flush_tlb_kernel_range(cur, 0, 1 << 20);
        yield* local_irq_restore(cur, f);
      });
    });
    const ipi = runIteration(p(true), { iteration: 0 });
    expect(ipi.findings.map((f) => f.fingerprint)).to.deep.equal(['ipi_irqs_off:on_each_cpu_cond_mask@flush_tlb_kernel_range']);
    expect(ipi.metrics.interrupts).to.equal(1);
    const hw = runIteration(p(false), { iteration: 0 });
    expect(hw.findings).to.deep.equal([]);
    expect(hw.metrics.interrupts).to.equal(0);
  });

  it('section remap (hypothetical): a GFP_ATOMIC buffer makes its lowmem section uncached with a break-flush-make, and cacheable again when the last buffer in it is freed', () => {
    const p = armProgram('section', 2, { arm32SectionRemap: true }, (m) => {
      const dev = device_register(m, { name: 'nc', dmaBits: 32, coherent: false });
      m.kthread('t', 0, function* (cur) {
        const a = yield* dma_alloc_coherent(cur, dev, 16 * 1024, GFP_ATOMIC);
        const b = yield* dma_alloc_coherent(cur, dev, 16 * 1024, GFP_ATOMIC);
        yield* dma_free_coherent(cur, dev, 16 * 1024, a!.vaddr, a!.dma_handle);
        yield* dma_free_coherent(cur, dev, 16 * 1024, b!.vaddr, b!.dma_handle);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings).to.deep.equal([]); // IRQs on: the IPIs are fine
    const c = counters(r);
    expect(c['dma.arm32.section']).to.equal(2);
    // two sections written at allocation (each buffer's own), one restored at the last free (same section)
    expect(c['dma.arm32.section_changes']).to.equal(3);
    expect(c['mm.tlb_flush_kernel']).to.equal(3);
  });
});
