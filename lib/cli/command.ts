/**
 * What every irqsim command shares: where its output goes, the exit code (docs/contract.md), and the
 * scenario, variant and perturbation its arguments name.
 */
import { existsSync } from 'fs';
import { InputError } from '../../scheduler';
import { applyParams } from '../scenario/params';
import type { Params, Perturbation, ScenarioDef, VariantDef } from '../scenario/define';
import { allScenarios, findScenario } from '../scenario/registry';
import type { CliOptions } from './options';
import type { Progress } from './progress';
import { suggestion } from './suggest';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** The hunt's progress display (default: the bar on stderr when it is a terminal). */
  progress?: Progress;
}

/** docs/contract.md exit codes: 3 when irqsim found a bug in itself, else 0 as expected, else 1. */
export function exitCode(ok: boolean, kinds: readonly string[]): number {
  if (kinds.includes('internal_error')) return 3;
  return ok ? 0 : 1;
}

/** The kinds of every finding of every run (for exitCode). */
export function kindsOf(runs: readonly { findings: readonly { kind: string }[] }[]): string[] {
  return runs.flatMap((r) => r.findings.map((f) => f.kind));
}

/** --variant: the named variant, or every one for "all". */
export function variantsOf(def: ScenarioDef, which: string): VariantDef[] {
  if (which === 'all') return def.variants;
  const v = def.variants.find((x) => x.name === which);
  if (!v) throw new InputError(`scenario ${def.id} has no variant "${which}": it has ${def.variants.map((x) => x.name).join(', ')}${suggestion(which, def.variants.map((x) => x.name))}`);
  return [v];
}

/** --perturb <name>: the scenario's declared parameter change and its budget scale. */
export function perturbationOf(def: ScenarioDef, name: string | undefined): Perturbation | null {
  if (name === undefined) return null;
  const p = (def.perturbations ?? []).find((x) => x.name === name);
  const names = (def.perturbations ?? []).map((x) => x.name);
  if (!p) throw new InputError(`scenario ${def.id} has no perturbation "${name}": it has ${names.join(', ') || '(none)'}${suggestion(name, names)}`);
  return p;
}

/** A scenario by file or id (lib/scenario/registry.ts); an unknown id gets a "did you mean". */
export function scenarioArg(arg: string): ScenarioDef {
  try {
    return findScenario(arg);
  } catch (e) {
    if (!(e instanceof InputError) || !e.message.startsWith(`unknown scenario "${arg}"`)) throw e;
    let ids: string[];
    try {
      ids = allScenarios().map((s) => s.id);
    } catch {
      throw e;
    }
    const hint = suggestion(arg, ids);
    if (hint === '') throw e;
    throw new InputError(`${e.message}${hint}`);
  }
}

/** The scenario a results file names: its file when it is still there, else its id. */
export function scenarioOfResult(s: { id: string; file?: string }): ScenarioDef {
  return scenarioArg(s.file && existsSync(s.file) ? s.file : s.id);
}

/** `<scenario> <schedule>` of replay and shrink, with the variant (default: the first) and parameters. */
export function scheduleArgs(o: CliOptions, cmd: string): { def: ScenarioDef; params: Params; v: VariantDef; schedule: string } {
  const [target, schedule, extra] = o.positionals;
  if (!target || !schedule) throw new InputError(`${cmd} needs a scenario and a schedule string`);
  if (extra) throw new InputError(`unexpected argument "${extra}"`);
  const def = scenarioArg(target);
  const params = applyParams(def, o.params);
  const v = variantsOf(def, o.variant === 'all' ? def.variants[0].name : o.variant)[0];
  return { def, params, v, schedule };
}
