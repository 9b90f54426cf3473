/**
 * A scenario hunted whole: every variant (or the named ones) as `irqsim hunt` hunts it, then its
 * claims judged, with the extra hunts claims over other parameter values need. The demo, the
 * README table, the mocha hunts, `hunt:long` and the seed sweep all go through here.
 */
import type { MachineOptions } from '../kernel/machine';
import type { Params, ScenarioDef } from './define';
import { judgeClaims, type ClaimJson } from './claims';
import { huntVariant, type RunJson, type VariantHuntOptions } from './hunt';

/**
 * The extra hunts of claims over other parameter values: the same request as the main hunt (seed,
 * budget, strategy, --all, machine overrides), without shrinking or --confirm (their findings
 * are not reported, only their metrics), in this thread.
 */
export function claimHunter(
  def: ScenarioDef,
  o: Pick<VariantHuntOptions, 'hunt' | 'all'> & { machine?: Partial<MachineOptions> },
  /** A variant's own hunt options where they differ (a perturbation's scaled budget). */
  perVariant: (variant: string) => Partial<VariantHuntOptions['hunt']> = () => o.hunt ?? {},
): (variant: string, params: Params) => RunJson {
  return (variant, params) => {
    const v = def.variants.find((x) => x.name === variant);
    if (!v) throw new Error(`scenario ${def.id} has no variant ${variant}`);
    const { onProgress: _p, progressEvery: _e, ...hunt } = perVariant(variant) ?? {};
    return huntVariant(def, v, params, { hunt, all: o.all, shrink: false, machine: o.machine ?? {} });
  };
}

export interface ScenarioHunt {
  runs: RunJson[];
  claims: ClaimJson[];
}

/**
 * Every variant (or the named ones) of a scenario hunted as `irqsim hunt` does, and its claims
 * judged: what the demo, the README table, the mocha hunts and `hunt:long` all use.
 */
export function huntScenario(def: ScenarioDef, params: Params, o: VariantHuntOptions = {}, variants?: string[]): ScenarioHunt {
  const vs = variants === undefined ? def.variants : def.variants.filter((v) => variants.includes(v.name));
  const runs = vs.map((v) => huntVariant(def, v, params, o));
  const claims = judgeClaims(def, { runs, params, hunt: claimHunter(def, o) });
  return { runs, claims };
}
