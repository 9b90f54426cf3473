import * as chai from 'chai';
import { expect } from 'chai';
import { hunt as engineHunt, runIteration } from '../../scheduler';
import { scenarioProgram } from '../../lib/scenario/define';
import { swiotlbPolicyNames } from '../../lib/dma/swiotlb/policy';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s03-swiotlb-nvme';

chai.use(irqsimChai);

/** The engine program of a variant with some parameters changed (e.g. another design). */
const program = (variant: string, over: Partial<typeof scenario.params> = {}) => scenarioProgram(scenario, variant, { ...scenario.params, ...over });
const REQUESTS = scenario.params.cpus * scenario.params.requests;
/** The pool-granular designs (no per-device index, so no index lock) and the indexed ones. */
const POOL_DESIGNS = ['static', 'upstream', 'chunked-growth'];

describe('scenario S3 (swiotlb-nvme): the dynamic-buffer index lock and the completion interrupt', function () {
  this.timeout(180_000);

  it('buggy (spin_lock index lock): lockdep "inconsistent lock state" and a reached self-deadlock within 10 PCT schedules (seed 0)', async () => {
    const r = await hunt(scenario, { variant: 'buggy', iterations: 10, seed: 0 });
    expect(r).to.report('lockdep', 'inconsistent');
    expect(r).to.report('deadlock');
    expect(r).to.be.asExpected;
    expect(r.schedulesRun).to.be.at.most(10);
    const lockdep = r.findings.find((f) => f.kind === 'lockdep')!;
    expect(lockdep.headline).to.include('inconsistent lock state');
    expect(lockdep.confirmed, 'the prediction is realised').to.match(/^confirmed by schedule /);
    // the completion interrupt spins on the index lock its own CPU's task holds
    const deadlock = r.findings.find((f) => f.kind === 'deadlock')!;
    expect(deadlock.text).to.match(/hardirq nvme0q\d.*spinning on spinlock &dev->dma_io_tlb_dyn_lock/);
  });

  it('fixed (spin_lock_irqsave) stays clean over 100 PCT schedules (10x the bound above)', async () => {
    const r = await hunt(scenario, { variant: 'fixed', iterations: 100, seed: 0, all: true });
    expect(r).to.be.clean;
    expect(r.schedulesRun).to.equal(100);
    expect(r.metrics['swiotlb.dyn_allocs']).to.be.greaterThan(1000); // the per-mapping path ran
  });

  it('perturbations cpus-2 and v2-list: buggy found within 10 schedules, fixed clean over 100', async () => {
    for (const name of ['cpus-2', 'v2-list']) {
      const params = scenario.perturbations!.find((p) => p.name === name)!.params;
      const b = await hunt(scenario, { variant: 'buggy', iterations: 10, seed: 0, params });
      expect(b, name).to.report('lockdep', 'inconsistent');
      expect(b, name).to.report('deadlock');
      const f = await hunt(scenario, { variant: 'fixed', iterations: 100, seed: 0, params, all: true });
      expect(f, name).to.be.clean;
    }
  });

  it('every design completes every request (timed mode); static and chunked-growth requeue on a full pool', () => {
    for (const policy of swiotlbPolicyNames()) {
      const r = runIteration(program('fixed', { policy }), { iteration: 0, window: 0 });
      const c = r.metrics.counters ?? {};
      const kinds = [...new Set(r.findings.map((f) => f.kind))];
      expect(c['blk.requests'], policy).to.equal(REQUESTS);
      expect(c['nvme.completions_hardirq'], policy).to.equal(REQUESTS);
      if (policy === 'static' || policy === 'chunked-growth') {
        expect(c['blk.requeues'], policy).to.be.greaterThan(0);
        expect(kinds, policy).to.deep.equal(['swiotlb_full']);
      } else {
        expect(c['blk.requeues'] ?? 0, policy).to.equal(0);
        expect(kinds, policy).to.deep.equal([]);
      }
    }
  });

  it('a run reports IRQs-off time per CPU and lock wait/hold times per lock class', () => {
    const r = runIteration(program('fixed'), { iteration: 0, window: 0 });
    const c = r.metrics.counters ?? {};
    const p = r.metrics.peaks ?? {};
    for (let cpu = 0; cpu < scenario.params.cpus; cpu++) {
      expect(c[`irqsoff.cpu${cpu}.ns`], `cpu${cpu}`).to.be.greaterThan(0);
      expect(p[`irqsoff.cpu${cpu}.max_ns`], `cpu${cpu}`).to.be.greaterThan(0);
    }
    for (const cls of ['&area->lock', '&dev->dma_io_tlb_dyn_lock']) {
      expect(c[`lock.${cls}.acquisitions`], cls).to.be.greaterThan(0);
      expect(c[`lock.${cls}.hold_ns`], cls).to.be.greaterThan(0);
      expect(p[`lock.${cls}.hold_max_ns`], cls).to.be.greaterThan(0);
    }
  });

  it('designs without a per-device index lock stay free of deadlock and lockdep under both variants (4 random schedules each)', () => {
    const registered = swiotlbPolicyNames();
    for (const policy of POOL_DESIGNS.filter((d) => registered.includes(d))) {
      for (const variant of ['buggy', 'fixed']) {
        const h = engineHunt(program(variant, { policy }), { iterations: 4, seed: 3, strategy: 'random', stopAtFirst: false });
        const kinds = [...new Set(h.findings.map((f) => f.kind))];
        expect(kinds, `${policy}/${variant}`).to.not.include.members(['deadlock', 'no_progress', 'lockdep', 'might_sleep']);
        expect(h.totals.counters?.['blk.requests'] ?? 0, policy).to.be.greaterThan(0);
      }
    }
  });
});
