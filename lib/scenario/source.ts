/**
 * A scenario variant as a ProgramSource (scheduler/pool.ts): worker threads cannot receive the
 * program (a closure), so each builds its own from the scenario file, variant and parameters.
 */
import { resolve } from 'path';
import type { Program } from '../../scheduler';
import type { ProgramSource } from '../../scheduler/pool';
import type { MachineOptions } from '../kernel/machine';
import { scenarioProgram, type Params, type ScenarioDef } from './define';
import { loadScenarioFile } from './registry';

export interface ScenarioSourceArgs {
  file: string;
  variant: string;
  params: Params;
  machine: Partial<MachineOptions>;
}

/** The builder a worker calls (by name, through ProgramSource.export). */
export function scenarioProgramFromSource(a: ScenarioSourceArgs): Program {
  return scenarioProgram(loadScenarioFile(a.file), a.variant, a.params, a.machine);
}

export function scenarioSource(def: ScenarioDef, variant: string, params: Params, machine: Partial<MachineOptions>): ProgramSource {
  if (def.file === undefined) throw new Error(`scenario ${def.id} was not loaded from a file: parallel hunts need its file`);
  return { module: __filename, export: 'scenarioProgramFromSource', args: { file: resolve(def.file), variant, params, machine } satisfies ScenarioSourceArgs };
}
