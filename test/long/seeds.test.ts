/**
 * npm run hunt:long — every variant of every scenario from three more seeds, with its declared
 * budget: a verdict that held only for seed 0 is luck, not a result.
 */
import { expect } from 'chai';
import { applyParams } from '../../lib/cli/options';
import { huntVariant } from '../../lib/scenario/hunt';
import { allScenarios } from '../../lib/scenario/registry';

const SEEDS = [1, 2, 3];

describe('every verdict holds from other seeds', () => {
  for (const def of allScenarios()) {
    it(`${def.id}: every variant as expected from seeds ${SEEDS.join(', ')}`, () => {
      const params = applyParams(def, []);
      for (const seed of SEEDS) {
        for (const v of def.variants) {
          const r = huntVariant(def, v, params, { hunt: { seed } });
          expect(r.verdict, `${def.id}/${v.name} seed ${seed}: ${r.why ?? ''} ${r.findings.map((f) => `${f.kind}: ${f.headline}`).join('; ')}`).to.equal('as-expected');
        }
      }
    });
  }
});
