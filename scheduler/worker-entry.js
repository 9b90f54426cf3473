'use strict';
// Entry of a hunt worker thread. Worker threads start without the parent's require hooks, so the
// worker installs one before it loads anything, transpile-only (the parent's process type-checked
// or chose not to):
// - the parent runs the compiled dist/, or the sources through irqsim's loader (bin/irqsim.js
//   sets IRQSIM_TS_LOADER, which workers inherit): the same loader (loader.js, sucrase), for a
//   user's scenario file and, from the sources, for the worker's own code;
// - the parent runs the sources under ts-node (mocha, `npx ts-node scenarios/x.ts`): ts-node, so
//   a crash's stack (in its finding's text) reads the same in both threads.
const path = require('path');
const { workerData } = require('worker_threads');
const typescript = Boolean(workerData && workerData.typescript);
if (typescript && process.env.IRQSIM_TS_LOADER !== 'sucrase') {
  require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
} else {
  require('./loader.js').register();
}
require(typescript ? './worker.ts' : './worker.js');
