'use strict';
// Entry of a hunt worker thread. Worker threads start without the parent's require hooks, so
// when the parent runs from TypeScript sources (ts-node) the worker registers ts-node itself,
// transpile-only: the parent's process already type-checked or chose not to.
const path = require('path');
const { workerData } = require('worker_threads');
if (workerData && workerData.typescript) {
  require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
  require('./worker.ts');
} else {
  require('./worker.js');
}
