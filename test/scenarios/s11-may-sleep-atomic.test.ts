import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s11-may-sleep-atomic';

chai.use(irqsimChai);

describe('S11: DMA_ATTR_MAY_SLEEP from atomic context (Tesarik RFC / v2, drm from process context)', () => {
  it('buggy (MAY_SLEEP also from the vblank handler under event_lock): might_sleep and lockdep (fs_reclaim in hardirq) within 3 schedules', async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 3, seed: 1 });
    expect(r).to.report('might_sleep');
    expect(r).to.report('lockdep', 'inconsistent');
    const ms = r.findings.find((f) => f.kind === 'might_sleep')!;
    expect(ms.text).to.match(/sleeping function called from invalid context/);
    expect(ms.text).to.match(/swiotlb_dyn_map/);
    expect(ms.text).to.match(/vc4_crtc_handle_page_flip/);
  });

  // The RFC tries the dynamic buffer first and falls back to the pool when GFP_NOWAIT fails (issue
  // 19): under pressure the handler's allocations fail and are counted, the mappings themselves
  // find pool room (before, with the pool tried first and full, those mappings failed).
  it('fixed (MAY_SLEEP only from the ioctl; GFP_NOWAIT + NO_WARN in the handler): clean over 30 schedules, GFP_NOWAIT failures under pressure counted and served by the pool', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 30, seed: 1, all: true });
    expect(r).to.be.clean;
    expect(r.metrics['vc4.irq_maps']).to.equal(30 * scenario.params.flips);
    const failures = r.metrics['swiotlb.dyn_alloc_failures'];
    expect(failures).to.be.greaterThan(0);
    expect(r.metrics['swiotlb.dyn_fallbacks']).to.equal(failures);
    expect(r.metrics['vc4.irq_map_failures']).to.be.lessThan(r.metrics['vc4.irq_maps'] / 2);
  });

  it('fixed without memory pressure (rxPages 0): no mapping fails', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 5, seed: 1, all: true, params: { rxPages: 0 } });
    expect(r).to.be.clean;
    expect(r.metrics['vc4.irq_map_failures']).to.equal(0);
  });

  for (const name of ['cpus-4', 'big-overlay']) {
    it(`perturbation ${name}: buggy reports might_sleep within 3 schedules, fixed clean over 30`, async () => {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      expect(await hunt(scenario, { variant: 'buggy', iterations: 3, seed: 1, params })).to.report('might_sleep');
      expect(await hunt(scenario, { variant: 'fixed', iterations: 30, seed: 1, params })).to.be.clean;
    });
  }
});
