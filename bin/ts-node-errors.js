'use strict';
// Preloaded by ts-node (tsconfig.json "ts-node"."require"): when a TypeScript file is the main
// program (`npx ts-node scenarios/x.ts`) and ts-node cannot compile a file it loads, print the
// first diagnostic as one line, file:line:col: message, and exit 2 (irqsim's bad-input code)
// instead of ts-node's stack. Inert when the main program is JavaScript (mocha, scripts).
const Module = require('module');

for (const ext of ['.ts', '.cts']) {
  const load = Module._extensions[ext];
  if (typeof load !== 'function') continue;
  Module._extensions[ext] = function loadReportingSyntax(module, filename) {
    try {
      return load.call(this, module, filename);
    } catch (e) {
      const main = process.mainModule;
      if (!e || e.name !== 'TSError' || !main || !/\.c?ts$/.test(main.filename)) throw e;
      // diagnosticText: "file(line,col): error TS1005: ',' expected." one per line.
      const first = String(e.diagnosticText || '').split('\n').find((l) => l.trim() !== '') || String(e.message);
      const m = /^(.*)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(first);
      process.stderr.write(m ? `${m[1]}:${m[2]}:${m[3]}: ${m[5]} (${m[4]})\n` : `${first}\n`);
      process.exit(2);
    }
  };
}
