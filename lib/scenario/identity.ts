/**
 * A scenario's identity in the program hash: the whole text of its file (every helper, constant
 * and import line, not only `build`) and the model-semantics version. The engine stays generic:
 * it sees this through Program.version (scheduler/program.ts).
 */
import { existsSync, readFileSync } from 'fs';
import { resolve, sep } from 'path';
import { fnv1a, hex32 } from '../../scheduler';
import { MODEL_VERSION } from './model-version';
import type { ScenarioDef } from './define';

const identities = new WeakMap<object, string>();

/**
 * The file a definition was loaded from: the module that default-exports it (a def imported by a
 * test or the testing layer has no `file`), else `def.file`.
 */
function fileOf(def: ScenarioDef): string | undefined {
  for (const m of Object.values(require.cache)) {
    const ex = m?.exports as { default?: unknown } | undefined;
    if (ex !== undefined && ex !== null && (ex.default === def || (ex as unknown) === def)) return m!.filename;
  }
  return def.file === undefined ? undefined : resolve(def.file);
}

/**
 * The text the identity covers: the TypeScript source when the file is its compiled twin in a
 * dist/ tree (so a hunt of the sources and one of the build agree), else the file itself.
 */
function sourceText(file: string): string | undefined {
  const candidates: string[] = [];
  const at = file.lastIndexOf(`${sep}dist${sep}`);
  if (file.endsWith('.js') && at >= 0) candidates.push(`${file.slice(0, at)}${sep}${file.slice(at + 6, -3)}.ts`);
  candidates.push(file);
  for (const c of candidates) {
    if (!existsSync(c)) continue;
    // line endings are not code: a checkout with CRLF hashes as one with LF
    return readFileSync(c, 'utf8').replace(/\r\n/g, '\n');
  }
  return undefined;
}

/**
 * Remember a definition's identity now (the loader calls this right after loading the file, so
 * a later edit of the file does not change the hash of the code that is running).
 */
export function fixIdentity(def: ScenarioDef, file?: string): string {
  const known = identities.get(def);
  if (known !== undefined) return known;
  const f = file ?? fileOf(def);
  const text = f === undefined ? undefined : sourceText(f);
  // A definition built in memory (no file): its functions' source, as before.
  const code = text ?? [def.build, def.machine, def.prepare].map((fn) => (fn ? fn.toString() : '')).join('\u0000');
  const id = hex32(fnv1a(`model ${MODEL_VERSION}\u0000${text === undefined ? 'functions' : 'file'}\u0000${code}`));
  identities.set(def, id);
  return id;
}

/** The identity of a definition: the Program.version of each of its variants' programs. */
export function scenarioIdentity(def: ScenarioDef): string {
  return fixIdentity(def);
}
