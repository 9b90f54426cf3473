import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s04-arm-remap-irqs-off';

chai.use(irqsimChai);

const fp = (r: { findings: { fingerprint: string; count: number; logged: number; text: string }[] }, site: string) => r.findings.find((f) => f.fingerprint === site);

describe('S4: ARM dma_alloc_coherent with IRQs off (Russell King, 2014)', () => {
  it('buggy (GFP_KERNEL, IRQs off, remap path): might_sleep with irqs_disabled() 128 within 5 schedules; the page-table splat is suppressed by the ratelimit', async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 5, seed: 1 });
    expect(r).to.report('might_sleep');
    expect(r).to.be.asExpected;
    expect(r.schedulesRun).to.be.at.most(5);
    const buffer = fp(r, 'might_sleep:alloc_pages@__dma_alloc_buffer')!;
    const pte = fp(r, 'might_sleep:alloc_pages@__pte_alloc_kernel')!;
    expect(buffer.logged).to.be.greaterThan(0); // the first splat in dmesg is the buffer's own allocation
    expect(buffer.text).to.match(/in_atomic\(\): 0, irqs_disabled\(\): 128/);
    expect(buffer.text).to.match(/__dma_alloc_buffer\n __alloc_remap_buffer\n __dma_alloc/);
    expect(pte.count).to.be.greaterThan(0); // the claim's page-table allocation does sleep-check...
    expect(pte.logged).to.equal(0); // ...but within the same second: counted, never printed
    expect(pte.text).to.match(/__pte_alloc_kernel\n vmap_pages_range\n map_vm_area\n dma_common_pages_remap\n dma_common_contiguous_remap/);
    // two drivers, one printed splat per run: everything else dropped by prev_jiffy
    expect(r.metrics['might_sleep.printed']).to.equal(r.schedulesRun);
    expect(r.metrics['might_sleep.suppressed']).to.be.at.least(10 * r.schedulesRun);
    expect(r.metrics['dma.arm32.remap']).to.equal(2 * r.schedulesRun);
  });

  it('fixed (GFP_ATOMIC -> atomic pool) stays clean over 50 schedules', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 50, seed: 1 });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(50);
    expect(r.metrics['dma.arm32.pool']).to.equal(100);
    expect(r.metrics['dma.arm32.remap'] ?? 0).to.equal(0);
  });

  it('prealloc-pt (pre-3.6 consistent region, page tables from boot) stays clean over 50 schedules with IRQs off', async () => {
    const r = await hunt(scenario, { variant: 'prealloc-pt', iterations: 50, seed: 1 });
    expect(r).to.be.clean;
    expect(r.metrics['dma.arm32.consistent']).to.equal(100);
    expect(r.metrics['mm.vmap_pgtable_pages'] ?? 0).to.equal(0); // nothing allocated page tables at run time
    expect(r.metrics['dma.arm32.consistent_pte_pages']).to.equal(50); // one PTE page per run, at boot
  });

  it('perturbation four-cpus: buggy within 5 schedules, fixed clean over 50', async () => {
    const p = scenario.perturbations!.find((x) => x.name === 'four-cpus')!.params;
    const b = await hunt(scenario, { variant: 'buggy', iterations: 5, seed: 2, params: p });
    expect(b).to.report('might_sleep');
    expect(b.metrics['might_sleep.printed']).to.equal(b.schedulesRun); // four CPUs, still one splat a second
    expect(await hunt(scenario, { variant: 'fixed', iterations: 50, seed: 2, params: p })).to.be.clean;
  });

  it('perturbation slow-repeat (allocations 1.5 s apart): each allocation\'s first splat prints, the page-table one never does', async () => {
    const p = scenario.perturbations!.find((x) => x.name === 'slow-repeat')!.params;
    const r = await hunt(scenario, { variant: 'buggy', iterations: 5, seed: 3, params: p });
    expect(r).to.be.asExpected;
    expect(r.metrics['might_sleep.printed']).to.equal(3 * r.schedulesRun);
    expect(fp(r, 'might_sleep:alloc_pages@__pte_alloc_kernel')!.logged).to.equal(0);
    expect(await hunt(scenario, { variant: 'prealloc-pt', iterations: 50, seed: 3, params: p })).to.be.clean;
  });
});
