import { expect } from 'chai';
import { hunt, runIteration } from '../../scheduler';
import { scenarioProgram } from '../../lib/scenario/define';
import { swiotlbPolicyNames } from '../../lib/dma/swiotlb/policy';
import scenario, { VARIANT_POLICY } from '../../scenarios/swiotlb-nvme';

const program = (variant: string) => scenarioProgram(scenario, variant, scenario.params);
const REQUESTS = scenario.params.cpus * scenario.params.requests;

describe('scenario swiotlb-nvme', function () {
  this.timeout(180_000);

  it('rfc-dynamic with a spin_lock index lock: lockdep within 1 schedule, a reached deadlock within 10 (PCT, seed 7)', () => {
    const h = hunt(program('buggy'), { iterations: 10, seed: 7, strategy: 'pct', stopWhenSeen: ['lockdep', 'deadlock'] });
    const lockdep = h.findings.find((f) => f.kind === 'lockdep');
    const deadlock = h.findings.find((f) => f.kind === 'deadlock');
    expect(lockdep, 'lockdep').to.not.equal(undefined);
    expect(lockdep!.iteration).to.equal(0);
    expect(lockdep!.headline).to.include('inconsistent lock state');
    expect(deadlock, 'deadlock').to.not.equal(undefined);
    expect(deadlock!.iteration).to.be.below(10);
    // the completion interrupt spins on the index lock its own CPU's task holds
    expect(deadlock!.text).to.match(/hardirq nvme0q\d.*spinning on spinlock &dev->dma_io_tlb_dyn_lock/);
  });

  it('rfc-dynamic with spin_lock_irqsave stays clean over 100 PCT schedules (10x the bound above)', () => {
    const h = hunt(program('fixed'), { iterations: 100, seed: 7, strategy: 'pct', stopAtFirst: false });
    expect(h.findings.map((f) => `${f.kind}: ${f.headline}`)).to.deep.equal([]);
  });

  it('every design completes every request (timed mode); static and chunked-growth requeue on a full pool', () => {
    const registered = swiotlbPolicyNames();
    for (const v of scenario.variants.map((x) => x.name)) {
      if (!registered.includes(VARIANT_POLICY[v].name)) continue; // a design not merged yet
      const r = runIteration(program(v), { iteration: 0, window: 0 });
      const c = r.metrics.counters ?? {};
      const kinds = [...new Set(r.findings.map((f) => f.kind))];
      expect(c['blk.requests'], v).to.equal(REQUESTS);
      expect(c['nvme.completions_hardirq'], v).to.equal(REQUESTS);
      expect(kinds, v).to.not.include.members(['deadlock', 'no_progress']);
      if (v !== 'buggy') expect(kinds, v).to.not.include('lockdep');
      if (v === 'static' || v === 'chunked-growth') {
        expect(c['blk.requeues'], v).to.be.greaterThan(0);
        expect(kinds, v).to.deep.equal(['swiotlb_full']);
      } else {
        expect(c['blk.requeues'] ?? 0, v).to.equal(0);
        if (v !== 'buggy') expect(kinds, v).to.deep.equal([]);
      }
    }
  });

  it('a policy run reports IRQs-off time per CPU and lock wait/hold times per lock class', () => {
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

  it('hunts every design (10 random schedules each, 4 CPUs, queue depth 64): only the buggy lock deadlocks', () => {
    const registered = swiotlbPolicyNames();
    for (const v of scenario.variants.map((x) => x.name)) {
      if (v === 'buggy' || !registered.includes(VARIANT_POLICY[v].name)) continue;
      const h = hunt(program(v), { iterations: 10, seed: 3, strategy: 'random', stopAtFirst: false });
      const kinds = [...new Set(h.findings.map((f) => f.kind))];
      expect(kinds, v).to.not.include.members(['deadlock', 'no_progress', 'lockdep', 'might_sleep']);
      expect(h.totals.counters?.['blk.requests'] ?? 0, v).to.be.greaterThan(0);
    }
  });
});
