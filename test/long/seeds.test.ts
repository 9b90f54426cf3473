/**
 * npm run hunt:long — every variant of every scenario from three more seeds, with its declared
 * budget, and its claims judged: a verdict or a claim that held only for seed 0 is luck, not a
 * result. (`npm run hunt:seeds` runs seeds 0-20 with --all.)
 */
import { expect } from 'chai';
import { applyParams } from '../../lib/scenario/params';
import { huntScenario } from '../../lib/scenario/hunt-scenario';
import { allScenarios } from '../../lib/scenario/registry';

const SEEDS = [1, 2, 3];

describe('every verdict and every claim holds from other seeds', () => {
  for (const def of allScenarios()) {
    it(`${def.id}: every variant as expected and every claim holds from seeds ${SEEDS.join(', ')}`, () => {
      const params = applyParams(def, []);
      for (const seed of SEEDS) {
        const r = huntScenario(def, params, { hunt: { seed } });
        for (const run of r.runs) expect(run.verdict, `${def.id}/${run.variant} seed ${seed}: ${run.why ?? ''} ${run.findings.map((f) => `${f.kind}: ${f.headline}`).join('; ')}`).to.equal('as-expected');
        expect(r.claims.filter((c) => c.holds !== true).map((c) => `${c.name}: ${c.relation}`), `${def.id} claims, seed ${seed}`).to.deep.equal([]);
      }
    });
  }
});
