#!/usr/bin/env node
// The irqsim command. Scenarios are TypeScript, loaded transpile-only (npm test type-checks).
'use strict';
require('ts-node').register({ transpileOnly: true, project: require('path').join(__dirname, '..', 'tsconfig.json') });
const code = require('../lib/cli/main').main(process.argv.slice(2));
if (typeof code === 'number') process.exitCode = code;
else code.then((c) => (process.exitCode = c));
