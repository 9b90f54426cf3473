/**
 * `hunt()` for users' own mocha suites: hunt one variant of a scenario exactly as
 * `irqsim hunt` does (same budget defaults, same stopping rule, same verdict), and return a
 * report the chai plugin (./chai.ts) asserts on. IRQSIM_SEED and IRQSIM_ITERATIONS override the
 * seed and budget, so a failure seen in CI reproduces locally by setting one variable.
 */
import { InputError, type HuntOptions } from '../../scheduler';
import { envHuntOverrides } from '../scenario/env';
import { applyParams } from '../scenario/params';
import type { Params, ScenarioDef } from '../scenario/define';
import { huntVariant, variantHuntOptions, type RunJson } from '../scenario/hunt';
import { huntScenario, type ScenarioHunt } from '../scenario/hunt-scenario';
import { findScenario } from '../scenario/registry';

export interface HuntHelperOptions<P extends Params = Params> extends Partial<HuntOptions> {
  /** Variant to hunt (default `buggy`). */
  variant?: string;
  /** Parameter overrides, checked against the declared ones. */
  params?: Partial<P>;
  /** Spend the whole budget instead of stopping once the expectation is decided. */
  all?: boolean;
  /** Search for a schedule realising each lockdep prediction. */
  confirm?: boolean;
  /** Shrink findings' schedules (default true). */
  shrink?: boolean;
  lockdep?: boolean;
}

export interface HuntReport extends RunJson {
  scenario: string;
  seed: number;
  iterations: number;
  /** The distinct finding kinds, in order of first appearance. */
  kinds: string[];
  /** Environment that reruns this hunt: `IRQSIM_SEED=.. IRQSIM_ITERATIONS=..`. */
  rerun: string;
}

// A scenario's parameter type only narrows Params; the hunt reads them as declared.
function resolveScenario<P extends Params, S>(s: ScenarioDef<P, S> | string): ScenarioDef {
  return typeof s === 'string' ? findScenario(s) : (s as unknown as ScenarioDef);
}

/** Synchronous form, for scripts. */
export function huntSync<P extends Params, S>(scenario: ScenarioDef<P, S> | string, o: HuntHelperOptions<P> = {}): HuntReport {
  const def = resolveScenario(scenario);
  const { variant: name = 'buggy', params: over = {}, all, confirm, shrink, lockdep, ...hunt } = o;
  const v = def.variants.find((x) => x.name === name);
  if (!v) throw new InputError(`scenario ${def.id} has no variant "${name}": it has ${def.variants.map((x) => x.name).join(', ')}`);
  for (const k of Object.keys(over)) if (!(k in def.params)) throw new InputError(`unknown parameter "${k}" for ${def.id}: declared are ${Object.keys(def.params).join(', ')}`);
  const params = applyParams(def, [], over as Partial<Params>);
  const env = envHuntOverrides();
  const opts: Partial<HuntOptions> = { ...hunt, ...(env.seed !== undefined ? { seed: env.seed } : {}), ...(env.iterations !== undefined ? { iterations: env.iterations } : {}) };
  const resolved = variantHuntOptions(def, v, opts);
  const run = huntVariant(def, v, params, { hunt: opts, all, confirm, shrink, machine: lockdep === undefined ? {} : { lockdep } });
  const seed = resolved.seed ?? 0;
  const iterations = resolved.iterations ?? 1000;
  return {
    ...run,
    scenario: def.id,
    seed,
    iterations,
    kinds: [...new Set(run.findings.map((f) => f.kind))],
    rerun: `IRQSIM_SEED=${seed} IRQSIM_ITERATIONS=${iterations}`,
  };
}

/**
 * Hunt a variant: `expect(await hunt(scenario, {variant: 'buggy', iterations: 500})).to.report('deadlock')`.
 * The hunt itself is synchronous and deterministic; the promise lets a suite await it as it would
 * any other fixture.
 */
export async function hunt<P extends Params, S>(scenario: ScenarioDef<P, S> | string, o: HuntHelperOptions<P> = {}): Promise<HuntReport> {
  return huntSync(scenario, o);
}

export interface ClaimsHuntOptions<P extends Params = Params> extends Partial<HuntOptions> {
  /** Variants to hunt (default: all); claims naming others are not judged. */
  variants?: string[];
  params?: Partial<P>;
  all?: boolean;
  shrink?: boolean;
}

/**
 * Every variant of a scenario hunted as `irqsim hunt` does, and its claims judged (with the extra
 * hunts a claim over parameter values needs): `expect(r.claims.every((c) => c.holds)).to.equal(true)`.
 */
export function huntClaims<P extends Params, S>(scenario: ScenarioDef<P, S> | string, o: ClaimsHuntOptions<P> = {}): ScenarioHunt {
  const def = resolveScenario(scenario);
  const { variants, params: over = {}, all, shrink, ...hunt } = o;
  for (const k of Object.keys(over)) if (!(k in def.params)) throw new InputError(`unknown parameter "${k}" for ${def.id}: declared are ${Object.keys(def.params).join(', ')}`);
  const params = applyParams(def, [], over as Partial<Params>);
  const env = envHuntOverrides();
  const opts: Partial<HuntOptions> = { ...hunt, ...(env.seed !== undefined ? { seed: env.seed } : {}), ...(env.iterations !== undefined ? { iterations: env.iterations } : {}) };
  return huntScenario(def, params, { hunt: opts, all, shrink: shrink ?? false }, variants);
}
