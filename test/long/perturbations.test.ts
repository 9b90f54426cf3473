/**
 * npm run hunt:long — every declared perturbation of every scenario, every variant, with the
 * budget scaled as the scenario declares: each verdict must still be as expected and each claim
 * must still hold (claims over parameter values run their extra hunts at the perturbed values).
 */
import { expect } from 'chai';
import { applyParams } from '../../lib/scenario/params';
import { judgeClaims } from '../../lib/scenario/claims';
import { huntVariant, variantHuntOptions } from '../../lib/scenario/hunt';
import { claimHunter } from '../../lib/scenario/hunt-scenario';
import { allScenarios } from '../../lib/scenario/registry';

describe('declared perturbations keep every verdict and every claim', () => {
  for (const def of allScenarios()) {
    for (const p of def.perturbations ?? []) {
      it(`${def.id} --perturb ${p.name} (${JSON.stringify(p.params)}, budget x${p.scale ?? 1})`, () => {
        const params = applyParams(def, [], p.params);
        const budget = (variant: string) => ({ iterations: Math.max(1, Math.round((variantHuntOptions(def, def.variants.find((v) => v.name === variant)!).iterations ?? 1000) * (p.scale ?? 1))) });
        const runs = def.variants.map((v) => huntVariant(def, v, params, { hunt: budget(v.name) }));
        for (const r of runs) expect(r.verdict, `${def.id}/${r.variant} under ${p.name}: ${r.why ?? ''} ${r.findings.map((f) => `${f.kind}: ${f.headline}`).join('; ')}`).to.equal('as-expected');
        const claims = judgeClaims(def, { runs, params, hunt: claimHunter(def, {}, budget) });
        expect(claims.filter((c) => c.holds !== true).map((c) => `${c.name}: ${c.relation} ${c.note ?? ''}`), `${def.id} claims under ${p.name}`).to.deep.equal([]);
      });
    }
  }
});
