'use strict';
// Entry of a hunt worker thread. Worker threads start without the parent's require hooks, so the
// worker installs the TypeScript loader (loader.js, sucrase, transpile only: the parent's process
// type-checked or chose not to) before it loads anything: a user's scenario file is TypeScript
// whether the parent runs the compiled dist/ or the sources. From the sources (the parent ran
// under ts-node or the loader), the worker's own code is TypeScript too.
const { workerData } = require('worker_threads');
require('./loader.js').register();
require(workerData && workerData.typescript ? './worker.ts' : './worker.js');
