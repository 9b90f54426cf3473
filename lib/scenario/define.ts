/**
 * Scenario definitions: what a scenario file default-exports. A scenario is a kernel code path
 * transcribed against the kernel model, with parameters (overridable by --param), a machine,
 * and named variants (`buggy`, `fixed`, ...) each declaring what a hunt of it must show.
 */
import type { HuntOptions, Program } from '../../scheduler';
import { installDetectors } from '../check';
import { waitClasses } from '../check/deadlock';
import { isFindingKind } from '../check/kinds';
import { Machine, type MachineOptions } from '../kernel/machine';
import { deriveKernelConfig, type KernelSpec, type KernelVersion } from '../kernel/config';
import { formatStates, machineStates } from '../kernel/show-state';
import type { Finding } from '../../scheduler';
import type { Expectation } from '../report/json';
import { checkClaims, type ClaimDef } from './claims';
import { scenarioIdentity } from './identity';

/**
 * Every finding explains itself: one the detectors did not already describe (no_progress,
 * step_budget, a scenario's assertion) gets each CPU's state at the failing step.
 */
function explain(m: Machine, f: Finding): void {
  if (f.data?.cpuStates !== undefined) return;
  const states = machineStates(m);
  // no_progress: the classes its tasks hold or wait on, which --confirm matches predictions against
  f.data = { ...(f.data ?? {}), cpuStates: states, ...(f.kind === 'no_progress' ? { classes: waitClasses(m.tasks) } : {}) };
  f.text = `${f.text}\n\nmachine state:\n${formatStates(states)}`;
}

export type ParamValue = number | string | boolean;
export type Params = Record<string, ParamValue>;

export type { Expectation } from '../report/json';

export interface VariantDef {
  name: string;
  expect: Expectation;
  description?: string;
  /** Default options for hunting this variant (the command line overrides them). */
  options?: Partial<HuntOptions>;
  /** Search for a schedule realising each lockdep prediction (as --confirm does). */
  confirm?: boolean;
}

export interface Perturbation<P extends Params = Params> {
  name: string;
  params: Partial<P>;
  /** Multiply every variant's schedule budget (default 1). */
  scale?: number;
  /** One line for `irqsim list`; without it, list says what the perturbation changes. */
  description?: string;
}

export interface BuildContext<P extends Params, S = unknown> {
  variant: string;
  params: P;
  /** What `prepare` built once for this variant and parameters, restored before every run. */
  state: S;
}

/** Prepared state that a run may change: restore() puts it back as prepare left it. */
export interface Restorable {
  restore(): void;
}

export interface ScenarioDef<P extends Params = Params, S = unknown> {
  id: string;
  name: string;
  /** The claim, its thread and author, what the scenario shows. */
  description: string;
  params: P;
  variants: VariantDef[];
  /**
   * The kernel modelled (lib/kernel/config.ts): version and configuration. The parameter
   * `kernel` (--kernel) overrides the version.
   */
  kernel?: KernelSpec;
  /** Machine options from the parameters (CPUs, preemption model, ...). */
  machine?: (params: P, variant: string) => MachineOptions;
  /**
   * Build costly state once per hunt of a variant (a 1 GiB swiotlb pool, a fragmented buddy
   * allocator): runs share it, and if it has a restore() method that is called before every run
   * but the first, so each run starts from the same snapshot.
   */
  prepare?: (params: P, variant: string) => S;
  /** Build the run: tasks, locks, IRQ lines, on a fresh machine. */
  build: (m: Machine, ctx: BuildContext<P, S>) => void;
  /** Hunt defaults for every variant (iterations, strategy...). */
  options?: Partial<HuntOptions>;
  /**
   * The metrics the claim is about, shown side by side per variant in the text output; the
   * first is the demo table's key metric.
   */
  keyMetrics?: string[];
  /**
   * Metrics computed from a hunt's totals (counters summed over its schedules, peaks the
   * largest), such as a rate per 1000 mappings. Non-finite results are dropped.
   */
  derive?: (metrics: Readonly<Record<string, number>>, schedules: number) => Record<string, number>;
  /**
   * Parameter changes under which every variant's verdict must still hold, with the schedule
   * budget scaled by `scale` (default 1). `irqsim hunt --perturb <name>` runs one; the
   * perturbation suite runs them all.
   */
  perturbations?: Perturbation<P>[];
  /** Quantitative claims of the thread, judged over the variants' hunts (lib/scenario/claims.ts). */
  claims?: ClaimDef[];
  /** Set by the loader: the file it came from. */
  file?: string;
}

export function defineScenario<P extends Params, S = unknown>(def: ScenarioDef<P, S>): ScenarioDef<P, S> {
  if (!/^[A-Za-z][\w-]*$/.test(def.id)) throw new Error(`scenario id ${JSON.stringify(def.id)} must be a word`);
  const names = def.variants.map((v) => v.name);
  if (new Set(names).size !== names.length) throw new Error(`scenario ${def.id}: variant names repeat`);
  for (const v of def.variants) {
    for (const k of [...(v.expect.findings ?? []), ...(v.expect.absent ?? [])]) {
      if (!isFindingKind(k)) throw new Error(`scenario ${def.id}: variant ${v.name} expects unknown finding kind ${JSON.stringify(k)}`);
    }
  }
  // an impossible kernel configuration is refused here, once per variant's machine
  if (def.kernel !== undefined) {
    for (const v of def.variants) {
      const mo = def.machine ? def.machine(def.params, v.name) : {};
      deriveKernelConfig(def.kernel, { preemption: mo.preemption, lockdep: mo.lockdep ?? true });
    }
  }
  for (const p of def.perturbations ?? []) {
    for (const k of Object.keys(p.params)) if (!(k in def.params)) throw new Error(`scenario ${def.id}: perturbation ${p.name} sets undeclared parameter ${k}`);
  }
  checkClaims(def as unknown as ScenarioDef);
  return def;
}

/**
 * The engine program for one variant with given parameters. `machine` overrides the machine
 * options the scenario chose (the command line's --lockdep).
 */
export function scenarioProgram<P extends Params, S>(def: ScenarioDef<P, S>, variant: string, params: P, machine: Partial<MachineOptions> = {}): Program {
  if (!def.variants.some((v) => v.name === variant)) throw new Error(`scenario ${def.id} has no variant ${variant}`);
  let prepared: { state: S } | null = null;
  const version = (typeof params.kernel === 'string' ? params.kernel : def.kernel?.version) as KernelVersion | undefined;
  const kernel = def.kernel !== undefined || version !== undefined ? { kernel: { ...def.kernel, ...(version !== undefined ? { version } : {}) } } : {};
  {
    // an impossible configuration (say --kernel 3.x-arm on a PREEMPT_DYNAMIC scenario) is bad input, before any run
    const mo = { ...(def.machine ? def.machine(params, variant) : {}), ...machine };
    deriveKernelConfig(kernel.kernel, { preemption: mo.preemption, lockdep: mo.lockdep ?? true });
  }
  return {
    name: `${def.id}/${variant}`,
    // The hash sees the scenario's whole file and the model-semantics version through this
    // (identity.ts), not the text of the setup below, which each transpiler prints its own way.
    code: scenarioIdentity(def as unknown as ScenarioDef),
    params: Object.keys(machine).length ? { ...params, machine: { ...machine } } : { ...params },
    setup(sim) {
      const m = new Machine(sim, { ...(def.machine ? def.machine(params, variant) : {}), ...kernel, ...machine });
      installDetectors(m);
      sim.onFinding((f) => explain(m, f));
      sim.world = m;
      if (prepared === null) prepared = { state: def.prepare ? def.prepare(params, variant) : (undefined as S) };
      else (prepared.state as Partial<Restorable> | undefined)?.restore?.();
      def.build(m, { variant, params, state: prepared.state });
    },
  };
}
