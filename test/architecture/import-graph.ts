/**
 * The folder-level import graph of the repository (issue 20): every static import, `export ...
 * from`, dynamic import() and require() of a relative path in the .ts/.js files under the given
 * roots, folded to folders (scheduler, lib/<folder>, scenarios, test), and checked against the
 * one layered order the project allows.
 */
import { readdirSync, readFileSync, statSync } from 'fs';
import { dirname, join, relative, resolve, sep } from 'path';

export interface ImportEdge {
  from: string;
  to: string;
  /** The file and line that make the edge (the first one found). */
  file: string;
  line: number;
  spec: string;
  /** True for a require() inside a function body (a lazy load), false for a top-level import. */
  lazy: boolean;
}

/**
 * The folder node of a file's repository path: lib/<folder> for lib/, else the top-level folder
 * (scheduler, scenarios, test, and any other, which the check then finds in no layer); null for
 * a file at the repository's root (package.json).
 */
export function folderOf(path: string): string | null {
  const parts = path.split(/[\\/]/);
  if (parts.length < 2 || parts[0] === '..' || parts[0] === '') return null;
  if (parts[0] === 'lib') return parts.length > 2 ? `lib/${parts[1]}` : null;
  return parts[0];
}

// import x from '..', import '..', export * from '..', import('..'), require('..'); comments are stripped first
const SPEC_RE = /\b(from|import|require)\s*\(?\s*(['"])([^'"\n]+)\2/g;

/** Block and line comments removed (keeping line breaks), so a commented-out import is not an edge. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/[^\n]*/g, '$1');
}

/**
 * The relative module specifiers of one file's source, with their line, and whether each is a
 * lazy load: a require() on an indented line, that is inside a function body, run only when the
 * function is called (a top-level require or any import runs when the file loads).
 */
export function importsOf(src: string): { spec: string; line: number; lazy: boolean }[] {
  const text = stripComments(src);
  const out: { spec: string; line: number; lazy: boolean }[] = [];
  for (const m of text.matchAll(SPEC_RE)) {
    const spec = m[3];
    if (!spec.startsWith('.')) continue;
    const at = m.index ?? 0;
    const lineStart = text.lastIndexOf('\n', at) + 1;
    const line = text.slice(0, at).split('\n').length;
    const lazy = m[1] === 'require' && /^\s+/.test(text.slice(lineStart, at));
    out.push({ spec, line, lazy });
  }
  return out;
}

function walk(root: string, dir: string, files: string[]): void {
  for (const name of readdirSync(join(root, dir)).sort()) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const rel = join(dir, name);
    const st = statSync(join(root, rel));
    if (st.isDirectory()) walk(root, rel, files);
    else if (/\.(ts|js)$/.test(name) && !name.endsWith('.d.ts')) files.push(rel);
  }
}

/** Every folder-level edge (from != to) of the files under `dirs` of `root`, one per (from, to, file, lazy). */
export function scanEdges(root: string, dirs: string[]): ImportEdge[] {
  const files: string[] = [];
  for (const d of dirs) walk(root, d, files);
  const edges = new Map<string, ImportEdge>();
  for (const file of files) {
    const from = folderOf(file.split(sep).join('/'));
    if (from === null) continue;
    for (const { spec, line, lazy } of importsOf(readFileSync(join(root, file), 'utf8'))) {
      const target = relative(root, resolve(root, dirname(file), spec)).split(sep).join('/');
      // '../kernel' names a folder (its index), '../kernel/irq' a file in it
      const isDir = statSync(join(root, target), { throwIfNoEntry: false })?.isDirectory() === true;
      const to = folderOf(isDir ? `${target}/index.ts` : target);
      if (to === null || to === from) continue;
      const key = `${from}->${to}:${file}${lazy ? ' lazy' : ''}`;
      if (!edges.has(key)) edges.set(key, { from, to, file: file.split(sep).join('/'), line, spec, lazy });
    }
  }
  return [...edges.values()];
}

/** An edge the layered order does not allow but the project names, with why. */
export interface NamedEdge {
  from: string;
  to: string;
  /** The one file that may make it. */
  file: string;
  why: string;
}

export interface ImportCheck {
  /** Edges that point up (or sideways within a layer), or come from a folder outside the layers. */
  violations: string[];
  /** A folder-level cycle among the edges the check counts (named exceptions left out), or null. */
  cycle: string[] | null;
}

/**
 * Checks the folder edges against `layers` (each a list of folders; a folder may import any
 * folder of an earlier layer, not one of its own layer or a later one). `lazy` names the lazy
 * loads allowed upward (they run only when called, so they make no load-time cycle); `pending`
 * names upward edges another branch is removing. Both are left out of the cycle search.
 */
export function checkImports(edges: ImportEdge[], layers: string[][], lazy: NamedEdge[] = [], pending: NamedEdge[] = []): ImportCheck {
  const rank = new Map<string, number>();
  layers.forEach((l, i) => l.forEach((f) => rank.set(f, i)));
  const named = (list: NamedEdge[], e: ImportEdge) => list.some((x) => x.from === e.from && x.to === e.to && x.file === e.file);
  const violations: string[] = [];
  const counted: ImportEdge[] = [];
  for (const e of edges) {
    const a = rank.get(e.from), b = rank.get(e.to);
    const where = `${e.file}:${e.line} imports '${e.spec}'`;
    if (a === undefined || b === undefined) violations.push(`${e.from} -> ${e.to}: ${a === undefined ? e.from : e.to} is in no layer (${where})`);
    else if (b >= a && ((e.lazy && named(lazy, e)) || named(pending, e))) continue;
    else if (b >= a) violations.push(`${e.from} -> ${e.to} points ${b === a ? 'sideways' : 'up'} (${where})`);
    counted.push(e);
  }
  return { violations, cycle: findCycle(counted) };
}

/** A folder-level cycle among the edges (as a path a -> b -> ... -> a), or null. */
export function findCycle(edges: { from: string; to: string }[]): string[] | null {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of [...(next.get(n) ?? [])].sort()) {
      if (state.get(m) === 'open') return [...stack.slice(stack.indexOf(m)), m];
      if (state.get(m) === undefined) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of [...next.keys()].sort()) {
    if (state.get(n) === undefined) {
      const c = visit(n);
      if (c) return c;
    }
  }
  return null;
}
