/**
 * Finding scenarios: every `scenarios/*.ts` file default-exports a definition. A scenario is
 * named on the command line by file path or by id (`S3`, `abba`).
 *
 * A lookup by id does not load every file's model: the ids are read from the files' text (the
 * `id: '...'` of their defineScenario call, see idOfSource), and only the file asked for is
 * loaded. A file whose id cannot be read that way is loaded to learn it. A broken file fails
 * only a lookup of its own id (and `list`, which names it); two files declaring one id are an
 * error naming both.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'fs';
import { basename, extname, join, relative, resolve } from 'path';
import { InputError } from '../../scheduler';
import type { ScenarioDef } from './define';
import { fixIdentity } from './identity';

export const ROOT = resolve(__dirname, '..', '..');
export const SCENARIO_DIR = join(ROOT, 'scenarios');
/** '.ts' in the sources, '.js' in the compiled dist/ (npm run build), like this file. */
const SCENARIO_EXT = extname(__filename);

/** The catalog's folder: IRQSIM_SCENARIO_DIR (tests point it at a temporary one), else scenarios/. */
export function scenarioDir(): string {
  const d = process.env.IRQSIM_SCENARIO_DIR;
  return d !== undefined && d !== '' ? resolve(d) : SCENARIO_DIR;
}

function shown(abs: string): string {
  return relative(process.cwd(), abs) || basename(abs);
}

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
  def.file = shown(abs);
  // the text that is running now, before anyone edits the file (identity.ts)
  fixIdentity(def, abs);
  return def;
}

export function scenarioFiles(dir: string = scenarioDir()): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(SCENARIO_EXT) && !f.endsWith('.d.ts'))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * The id a scenario file declares, read from its text without running it: the `id` property
 * (a string literal) at the top level of the object passed to defineScenario. Comments and
 * strings are skipped; null when there is no such literal (the file is then loaded to learn it).
 */
export function idOfSource(src: string): string | null {
  const call = /\bdefineScenario\s*(?:<[^>(]*>)?\s*\(\s*\{/g.exec(src);
  if (call === null) return null;
  let i = call.index + call[0].length;
  let depth = 1;
  while (i < src.length && depth > 0) {
    const c = src[i];
    if (c === '/' && src[i + 1] === '/') {
      i = src.indexOf('\n', i);
      if (i < 0) return null;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      i = src.indexOf('*/', i + 2);
      if (i < 0) return null;
      i += 2;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      i = skipString(src, i);
      continue;
    }
    if (c === '{' || c === '(' || c === '[') depth++;
    else if (c === '}' || c === ')' || c === ']') depth--;
    else if (depth === 1 && /[A-Za-z_$]/.test(c) && !/[\w$]/.test(src[i - 1] ?? '')) {
      const m = /^id\s*:\s*(['"])([A-Za-z][\w-]*)\1/.exec(src.slice(i, i + 80));
      if (m) return m[2];
      // any other property name or expression: step over the word
      while (i < src.length && /[\w$]/.test(src[i])) i++;
      continue;
    }
    i++;
  }
  return null;
}

/** The index just past the string literal opening at `i` (template holes are not parsed). */
function skipString(src: string, i: number): number {
  const q = src[i];
  for (let j = i + 1; j < src.length; j++) {
    if (src[j] === '\\') j++;
    else if (src[j] === q) return j + 1;
  }
  return src.length;
}

/** A catalog file that could not be loaded or that repeats another file's id. */
export interface BrokenScenario {
  file: string;
  message: string;
}

interface IndexEntry {
  abs: string;
  /** The id read from the text, or null (learnt by loading). */
  id: string | null;
}

function indexOf(dir: string): IndexEntry[] {
  return scenarioFiles(dir).map((abs) => {
    let id: string | null = null;
    try {
      id = idOfSource(readFileSync(abs, 'utf8'));
    } catch {
      // unreadable: loading it reports why
    }
    return { abs, id };
  });
}

function duplicateError(id: string, a: string, b: string): InputError {
  return new InputError(`scenario id "${id}" is declared by two files: ${shown(a)} and ${shown(b)} (ids must be unique; rename one)`);
}

/**
 * Every scenario of the catalog that loads, and the files that do not (or that repeat an id an
 * earlier file declared, in file-name order), each with its message: `list` shows the first and
 * names the second on stderr.
 */
export function scenarioCatalog(dir: string = scenarioDir()): { scenarios: ScenarioDef[]; broken: BrokenScenario[] } {
  const scenarios: ScenarioDef[] = [];
  const broken: BrokenScenario[] = [];
  const owner = new Map<string, string>();
  for (const { abs } of indexOf(dir)) {
    let def: ScenarioDef;
    try {
      def = loadScenarioFile(abs);
    } catch (e) {
      broken.push({ file: shown(abs), message: e instanceof Error ? e.message : String(e) });
      continue;
    }
    const key = def.id.toLowerCase();
    const first = owner.get(key);
    if (first !== undefined) {
      broken.push({ file: shown(abs), message: duplicateError(def.id, first, abs).message });
      continue;
    }
    owner.set(key, abs);
    scenarios.push(def);
  }
  return { scenarios, broken };
}

/** Every scenario of the catalog; a broken file or a repeated id is an error naming the file(s). */
export function allScenarios(dir: string = scenarioDir()): ScenarioDef[] {
  const { scenarios, broken } = scenarioCatalog(dir);
  if (broken.length > 0) throw new InputError(broken.map((b) => b.message).join('\n'));
  return scenarios;
}

/**
 * A file path, or an id of a scenario in the catalog (any case). Only the file with that id is
 * loaded (and any whose id its text does not show); a broken file elsewhere does not matter.
 */
export function findScenario(arg: string, dir: string = scenarioDir()): ScenarioDef {
  if (existsSync(arg) && statSync(arg).isFile()) return loadScenarioFile(arg);
  const want = arg.toLowerCase();
  const index = indexOf(dir);
  const hits: { abs: string; def?: ScenarioDef }[] = index.filter((e) => e.id !== null && e.id.toLowerCase() === want).map((e) => ({ abs: e.abs }));
  const unread: string[] = [];
  const learnt: string[] = [];
  for (const e of index) {
    if (e.id !== null) continue;
    // its id is not in its text: load it to learn it (a file that fails here is some other lookup's problem)
    try {
      const def = loadScenarioFile(e.abs);
      learnt.push(def.id);
      if (def.id.toLowerCase() === want) hits.push({ abs: e.abs, def });
    } catch {
      unread.push(shown(e.abs));
    }
  }
  if (hits.length > 1) throw duplicateError(arg, hits[0].abs, hits[1].abs);
  if (hits.length === 1) {
    const def = hits[0].def ?? loadScenarioFile(hits[0].abs);
    if (def.id.toLowerCase() !== want) {
      throw new InputError(`${shown(hits[0].abs)} reads as scenario "${arg}" but defines "${def.id}": write its id as a string literal in defineScenario({ id: ... })`);
    }
    return def;
  }
  const ids = [...index.map((e) => e.id).filter((x): x is string => x !== null), ...learnt];
  const broken = unread.length ? ` (${unread.join(', ')} could not be loaded)` : '';
  throw new InputError(`unknown scenario "${arg}": not a file, and not one of ${ids.join(', ') || '(none)'}${broken}`);
}

/**
 * The catalog's ids, read from the files' text (a file whose id is not a literal there is loaded;
 * one that fails to load is left out): what a did-you-mean for scenario ids compares against.
 */
export function scenarioIds(dir: string = scenarioDir()): string[] {
  const ids: string[] = [];
  for (const e of indexOf(dir)) {
    if (e.id !== null) ids.push(e.id);
    else {
      try {
        ids.push(loadScenarioFile(e.abs).id);
      } catch {
        // a broken file has no id to suggest
      }
    }
  }
  return ids;
}
