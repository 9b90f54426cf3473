/**
 * npm run hunt:long — every declared perturbation of every scenario, every variant, with the
 * budget scaled as the scenario declares: each verdict must still be as expected.
 */
import { expect } from 'chai';
import { applyParams } from '../../lib/cli/options';
import { huntVariant, variantHuntOptions } from '../../lib/scenario/hunt';
import { allScenarios } from '../../lib/scenario/registry';

describe('declared perturbations keep every verdict', () => {
  for (const def of allScenarios()) {
    for (const p of def.perturbations ?? []) {
      it(`${def.id} --perturb ${p.name} (${JSON.stringify(p.params)}, budget x${p.scale ?? 1})`, () => {
        const params = applyParams(def, [], p.params);
        for (const v of def.variants) {
          const iterations = Math.max(1, Math.round((variantHuntOptions(def, v).iterations ?? 1000) * (p.scale ?? 1)));
          const r = huntVariant(def, v, params, { hunt: { iterations } });
          expect(r.verdict, `${def.id}/${v.name} under ${p.name}: ${r.why ?? ''} ${r.findings.map((f) => `${f.kind}: ${f.headline}`).join('; ')}`).to.equal('as-expected');
        }
      });
    }
  }
});
