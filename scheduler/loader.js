'use strict';
/**
 * The TypeScript loader of the compiled irqsim: a require hook for `.ts` files that strips the
 * types with sucrase (transpile only; `tsc --noEmit` is where types are checked). It loads user
 * scenario files in the CLI and in hunt worker threads, and the sources themselves in a checkout
 * without an up-to-date dist/ (bin/irqsim.js). Plain JavaScript: it must run before any hook.
 *
 * Sucrase keeps every line where it was, so stack traces point into the .ts file without source
 * maps. Its output is cached on disk by content: a cached start does not even load sucrase
 * (its load is most of a cold start's cost). A syntax error becomes one line,
 * `file:line:col: message`, on an error whose `code` is IRQSIM_TS_SYNTAX.
 */
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const Module = require('module');

/** Bump when the transform's options change: the cache key carries it. */
const LOADER_VERSION = 1;
const OPTIONS = { transforms: ['typescript', 'imports'], production: true, disableESTransforms: true };

let sucrase = null;
let sucraseVersion = null;
let cacheDir;

function version() {
  if (sucraseVersion === null) {
    try {
      sucraseVersion = JSON.parse(fs.readFileSync(require.resolve('sucrase/package.json'), 'utf8')).version;
    } catch {
      sucraseVersion = 'unknown';
    }
  }
  return sucraseVersion;
}

/**
 * IRQSIM_CACHE_DIR, or node_modules/.cache/irqsim next to the nearest node_modules (where
 * babel, eslint and others keep theirs), or the temp directory; '' or IRQSIM_CACHE=0: none.
 */
function cacheDirectory() {
  if (cacheDir !== undefined) return cacheDir;
  if (process.env.IRQSIM_CACHE === '0') return (cacheDir = '');
  if (process.env.IRQSIM_CACHE_DIR !== undefined) return (cacheDir = process.env.IRQSIM_CACHE_DIR);
  let dir = __dirname;
  for (;;) {
    if (path.basename(dir) === 'node_modules') return (cacheDir = path.join(dir, '.cache', 'irqsim'));
    const nm = path.join(dir, 'node_modules');
    if (fs.existsSync(nm)) return (cacheDir = path.join(nm, '.cache', 'irqsim'));
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return (cacheDir = path.join(require('os').tmpdir(), `irqsim-cache-${typeof process.getuid === 'function' ? process.getuid() : 0}`));
}

/** `file:line:col: message` from sucrase's error (its line and column are 1-based). */
function syntaxError(file, e) {
  const rel = path.relative(process.cwd(), file);
  const shown = rel && !rel.startsWith('..') ? rel : file;
  let msg = String((e && e.message) || e).replace(/^Error transforming [^:]*: /, '');
  const loc = e && e.loc;
  if (loc) msg = msg.replace(/ \(\d+:\d+\)$/, '');
  const err = new SyntaxError(loc ? `${shown}:${loc.line}:${loc.column}: ${msg}` : `${shown}: ${msg}`);
  err.code = 'IRQSIM_TS_SYNTAX';
  err.file = file;
  if (loc) {
    err.line = loc.line;
    err.column = loc.column;
  }
  // The message is the whole story: no stack through the loader.
  err.stack = `SyntaxError: ${err.message}`;
  return err;
}

/** JavaScript for a TypeScript source (cached by content). Throws syntaxError() on bad input. */
function compile(source, file) {
  const dir = cacheDirectory();
  let cached = null;
  if (dir) {
    const key = crypto.createHash('sha256').update(`${LOADER_VERSION}\0${version()}\0${file}\0`).update(source).digest('hex');
    cached = path.join(dir, key.slice(0, 2), `${key.slice(2)}.js`);
    try {
      return fs.readFileSync(cached, 'utf8');
    } catch {
      // not cached yet
    }
  }
  if (sucrase === null) sucrase = require('sucrase');
  let code;
  try {
    code = sucrase.transform(source, { ...OPTIONS, filePath: file }).code;
  } catch (e) {
    throw syntaxError(file, e);
  }
  if (cached !== null) {
    try {
      fs.mkdirSync(path.dirname(cached), { recursive: true });
      const tmp = `${cached}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
      fs.writeFileSync(tmp, code);
      fs.renameSync(tmp, cached);
    } catch {
      // a read-only or full disk only costs the next start a transform
    }
  }
  return code;
}

let registered = false;

/**
 * Install the hook for .ts (and .cts). A hook someone installed before (ts-node under mocha)
 * is kept: whoever set it up chose how TypeScript loads in this process.
 */
function register() {
  if (registered) return;
  registered = true;
  for (const ext of ['.ts', '.cts']) {
    if (Module._extensions[ext]) continue;
    Module._extensions[ext] = function loadTypeScript(module, filename) {
      const source = fs.readFileSync(filename, 'utf8');
      module._compile(compile(source, filename), filename);
    };
  }
}

module.exports = { register, compile, syntaxError, cacheDirectory };
