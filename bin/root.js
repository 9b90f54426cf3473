'use strict';
// Which tree bin/irqsim.js runs: the compiled dist/, or in a source checkout whose dist/ is
// missing or older than its sources, the TypeScript sources (through scheduler/loader.js).
// IRQSIM_FROM=dist|src forces one.
const fs = require('fs');
const path = require('path');

/** Directories compiled by tsconfig.build.json; a newer file in one makes dist/ stale. */
const SOURCE_DIRS = ['scheduler', 'lib', 'scenarios'];
/** Written by `npm run build` after tsc succeeds. */
const STAMP = path.join('dist', '.built');

function newestSource(dir, since) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (newestSource(p, since)) return true;
    } else if (/\.(ts|js)$/.test(e.name) && fs.statSync(p).mtimeMs > since) {
      return true;
    }
  }
  return false;
}

function pick(root) {
  const dist = { dir: path.join(root, 'dist'), ts: false };
  const src = { dir: root, ts: true };
  const forced = process.env.IRQSIM_FROM;
  if (forced === 'dist') return dist;
  if (forced === 'src') return src;
  // An installed package has no sources: dist/ is all there is.
  const checkout = fs.existsSync(path.join(root, 'tsconfig.build.json')) && fs.existsSync(path.join(root, 'lib', 'cli', 'main.ts'));
  if (!checkout) return dist;
  let built;
  try {
    built = fs.statSync(path.join(root, STAMP)).mtimeMs;
  } catch {
    return { ...src, note: 'dist/ is not built (npm run build): running the TypeScript sources' };
  }
  if (SOURCE_DIRS.some((d) => newestSource(path.join(root, d), built))) {
    return { ...src, note: 'dist/ is older than the sources (npm run build): running the TypeScript sources' };
  }
  return dist;
}

module.exports = { pick };
