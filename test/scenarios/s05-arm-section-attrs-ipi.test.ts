import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s05-arm-section-attrs-ipi';

chai.use(irqsimChai);

describe('S5: ARM section attribute change needs IPIs to every CPU (Russell King, 2014)', () => {
  it('buggy (in-place section remap under spin_lock_irqsave on two CPUs): ipi_irqs_off and a csd_lock_wait deadlock within 20 PCT schedules', async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 20, seed: 1 });
    expect(r).to.report('ipi_irqs_off');
    expect(r).to.report('deadlock');
    expect(r).to.be.asExpected;
    expect(r.schedulesRun).to.be.at.most(20);
    const d = r.findings.find((f) => f.kind === 'deadlock')!;
    expect(d.text).to.match(/CPU0 drv\/0\/\d+ in task \(irqs off\): spinning until IPI to CPU1/);
    expect(d.text).to.match(/CPU1 drv\/1\/\d+ in task \(irqs off\): spinning until IPI to CPU0/);
    expect(d.text).to.match(/flush_tlb_kernel_range <- __dma_section_set_uncached <- __dma_alloc/);
    const w = r.findings.find((f) => f.kind === 'ipi_irqs_off')!;
    expect(w.fingerprint).to.equal('ipi_irqs_off:on_each_cpu_cond_mask@flush_tlb_kernel_range');
    expect(r.metrics['dma.arm32.section_changes']).to.be.greaterThan(0);
  });

  it('buggy with lockdep off on 6.12: no warning (the many/each forms assert only through lockdep), the deadlock remains', async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 20, seed: 1, lockdep: false, params: { kernel: '6.12' } });
    expect(r).to.report('deadlock');
    expect(r).not.to.report('ipi_irqs_off');
  });

  it("buggy with lockdep off on the thread's 3.x-arm: smp_call_function_many's WARN_ON_ONCE(irqs_disabled()) did not need lockdep", async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 20, seed: 1, lockdep: false });
    expect(r).to.report('ipi_irqs_off');
    expect(r).to.report('deadlock');
  });

  it('fixed (coherent region preallocated at boot, no attribute change at run time) stays clean over 200 schedules', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 200, seed: 1 });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(200);
    expect(r.metrics['dma.arm32.pool']).to.equal(400);
    expect(r.metrics['mm.tlb_flush_kernel'] ?? 0).to.equal(0);
  });

  for (const name of ['four-cpus', 'three-drivers']) {
    it(`perturbation ${name}: buggy deadlocks within 20 schedules, fixed clean over 200`, async () => {
      const p = scenario.perturbations!.find((x) => x.name === name)!.params;
      const b = await hunt(scenario, { variant: 'buggy', iterations: 20, seed: 2, params: p });
      expect(b).to.report('deadlock');
      expect(b).to.be.asExpected;
      expect(await hunt(scenario, { variant: 'fixed', iterations: 200, seed: 2, params: p })).to.be.clean;
    });
  }
});
