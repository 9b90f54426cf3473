/**
 * Scenario definitions: what a scenario file default-exports. A scenario is a kernel code path
 * transcribed against the kernel model, with parameters (overridable by --param), a machine,
 * and named variants (`buggy`, `fixed`, ...) each declaring what a hunt of it must show.
 */
import { fnv1a, hex32, type HuntOptions, type Program } from '../../scheduler';
import { installDetectors } from '../check';
import { Machine, type MachineOptions } from '../kernel/machine';

export type ParamValue = number | string | boolean;
export type Params = Record<string, ParamValue>;

/** CONTRACT.md "Variants and expectations". */
export interface Expectation {
  findings?: string[];
  absent?: string[];
  clean?: boolean;
  metrics?: string[];
}

export interface VariantDef {
  name: string;
  expect: Expectation;
  description?: string;
  /** Default options for hunting this variant (the command line overrides them). */
  options?: Partial<HuntOptions>;
}

export interface BuildContext<P extends Params> {
  variant: string;
  params: P;
}

export interface ScenarioDef<P extends Params = Params> {
  id: string;
  name: string;
  /** The claim, its thread and author, what the scenario shows. */
  description: string;
  params: P;
  variants: VariantDef[];
  /** Machine options from the parameters (CPUs, preemption model, ...). */
  machine?: (params: P, variant: string) => MachineOptions;
  /** Build the run: tasks, locks, IRQ lines, on a fresh machine. */
  build: (m: Machine, ctx: BuildContext<P>) => void;
  /** Hunt defaults for every variant (iterations, strategy...). */
  options?: Partial<HuntOptions>;
  /** Set by the loader: the file it came from. */
  file?: string;
}

export function defineScenario<P extends Params>(def: ScenarioDef<P>): ScenarioDef<P> {
  if (!/^[A-Za-z][\w-]*$/.test(def.id)) throw new Error(`scenario id ${JSON.stringify(def.id)} must be a word`);
  const names = def.variants.map((v) => v.name);
  if (new Set(names).size !== names.length) throw new Error(`scenario ${def.id}: variant names repeat`);
  return def;
}

/** The engine program for one variant with given parameters. */
export function scenarioProgram<P extends Params>(def: ScenarioDef<P>, variant: string, params: P): Program {
  if (!def.variants.some((v) => v.name === variant)) throw new Error(`scenario ${def.id} has no variant ${variant}`);
  return {
    name: `${def.id}/${variant}`,
    // The hash sees the scenario's own code through this version string.
    version: hex32(fnv1a(`${def.build.toString()}\u0000${def.machine ? def.machine.toString() : ''}`)),
    params: { ...params },
    setup(sim) {
      const m = new Machine(sim, def.machine ? def.machine(params, variant) : {});
      installDetectors(m);
      sim.world = m;
      def.build(m, { variant, params });
    },
  };
}
