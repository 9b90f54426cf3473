'use strict';
// `node -r irqsim/register file.ts`, `mocha -r irqsim/register`: TypeScript through irqsim's
// loader (loader.js: sucrase, transpile only, cached on disk).
require('./loader.js').register();
