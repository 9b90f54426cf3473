/**
 * Finding scenarios: every `scenarios/*.ts` file default-exports a definition. A scenario is
 * named on the command line by file path or by id (`S3`, `abba`).
 */
import { existsSync, readdirSync, statSync } from 'fs';
import { basename, extname, join, relative, resolve } from 'path';
import { InputError } from '../../scheduler';
import type { ScenarioDef } from './define';

export const ROOT = resolve(__dirname, '..', '..');
export const SCENARIO_DIR = join(ROOT, 'scenarios');
/** '.ts' in the sources, '.js' in the compiled dist/ (npm run build), like this file. */
const SCENARIO_EXT = extname(__filename);

/** Load the definition a scenario file default-exports. */
export function loadScenarioFile(file: string): ScenarioDef {
  const abs = resolve(file);
  let mod: { default?: ScenarioDef };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(abs);
  } catch (e) {
    // A syntax error from the TypeScript loader (scheduler/loader.js) already reads file:line:col: message.
    if (e instanceof Error && (e as { code?: unknown }).code === 'IRQSIM_TS_SYNTAX') throw new InputError(e.message);
    throw new InputError(`cannot load scenario file ${file}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  const def = mod.default;
  if (!def || typeof def !== 'object' || typeof def.build !== 'function' || !Array.isArray(def.variants)) {
    throw new InputError(`${file} does not default-export a scenario definition (defineScenario({...}))`);
  }
  def.file = relative(process.cwd(), abs) || basename(abs);
  return def;
}

export function scenarioFiles(): string[] {
  if (!existsSync(SCENARIO_DIR)) return [];
  return readdirSync(SCENARIO_DIR)
    .filter((f) => f.endsWith(SCENARIO_EXT) && !f.endsWith('.d.ts'))
    .sort()
    .map((f) => join(SCENARIO_DIR, f));
}

export function allScenarios(): ScenarioDef[] {
  return scenarioFiles().map(loadScenarioFile);
}

/** A file path, or an id of a scenario under scenarios/. */
export function findScenario(arg: string): ScenarioDef {
  if (existsSync(arg) && statSync(arg).isFile()) return loadScenarioFile(arg);
  const all = allScenarios();
  const hit = all.find((s) => s.id.toLowerCase() === arg.toLowerCase());
  if (hit) return hit;
  throw new InputError(`unknown scenario "${arg}": not a file, and not one of ${all.map((s) => s.id).join(', ') || '(none)'}`);
}
