import { expect } from 'chai';
import { hunt } from '../../scheduler';
import { scenarioProgram } from '../../lib/scenario/define';
import scenario from '../../scenarios/cma-irq';

const run = (variant: string, iterations: number, params: Partial<typeof scenario.params> = {}) =>
  hunt(scenarioProgram(scenario, variant, { ...scenario.params, ...params }), { iterations, seed: 3, stopAtFirst: false });

describe('scenario cma-irq', () => {
  it('buggy: cma_alloc in the hardirq handler gives might_sleep and cma_atomic in the first schedule, on 2 and 4 CPUs', () => {
    for (const cpus of [2, 4]) {
      const kinds = run('buggy', 1, { cpus }).findings.map((f) => f.kind);
      expect(kinds, `cpus=${cpus}`).to.include.members(['might_sleep', 'cma_atomic']);
    }
  });

  it('fixed: the worker allocates cleanly over 10 schedules, also with 2x memory', () => {
    for (const memoryMiB of [128, 256]) {
      const h = run('fixed', 10, { memoryMiB });
      expect(h.findings.map((f) => f.headline), `memory=${memoryMiB}`).to.deep.equal([]);
      expect(h.totals.counters?.['mm.cma_alloc']).to.equal(10);
    }
  });
});
