#!/usr/bin/env node
// The irqsim command. It runs the compiled JavaScript in dist/ (npm run build; `prepare` runs it
// on npm ci and npm pack), and loads user scenario files (TypeScript) through the sucrase loader.
// --help, --version and a missing or unknown command are answered from lib/cli/usage (and
// lib/cli/suggest for "did you mean") alone,
// before the model loads. In a source checkout whose dist/ is missing or older than the sources,
// it runs the TypeScript sources through the same loader (and says so on stderr).
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const root = require('./root').pick(ROOT);
if (root.note) process.stderr.write(`irqsim: ${root.note}\n`);
// User scenario files are TypeScript in either tree; the loader loads sucrase only on a cache miss.
// Hunt workers (scheduler/worker-entry.js) inherit the variable and install the same loader.
process.env.IRQSIM_TS_LOADER = 'sucrase';
require(path.join(root.dir, 'scheduler', 'loader.js')).register();

const quick = answerQuickly(argv);
if (quick !== null) {
  process.exitCode = quick;
} else {
  const code = require(path.join(root.dir, 'lib', 'cli', 'main')).main(argv);
  if (typeof code === 'number') process.exitCode = code;
  else code.then((c) => (process.exitCode = c));
}

/** The exit code when argv needs no model (help, version, a bad command), else null. */
function answerQuickly(args) {
  if (args.includes('--version')) {
    process.stdout.write(`${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}\n`);
    return 0;
  }
  const usage = require(path.join(root.dir, 'lib', 'cli', 'usage'));
  const first = args[0];
  const help = args.includes('--help') || args.includes('-h');
  if (!help && first !== undefined && (first.startsWith('-') || usage.COMMANDS.includes(first))) return null;
  if (help) {
    process.stdout.write(`${usage.helpFor(first)}\n`);
    return 0;
  }
  // Same words as lib/cli/main.ts.
  if (first === undefined) process.stderr.write('irqsim: no command given: expected list, run, hunt, replay, shrink, merge or report (irqsim --help shows the usage)\n');
  else {
    const { suggestion } = require(path.join(root.dir, 'lib', 'cli', 'suggest'));
    process.stderr.write(`irqsim: unknown command "${first}": expected ${usage.COMMANDS.slice(0, -1).join(', ')} or ${usage.COMMANDS[usage.COMMANDS.length - 1]}${suggestion(first, usage.COMMANDS)}\n`);
  }
  return 2;
}
