#!/usr/bin/env node
// The irqsim command. Scenarios are TypeScript, loaded transpile-only (npm test type-checks).
'use strict';
require('ts-node').register({ transpileOnly: true, project: require('path').join(__dirname, '..', 'tsconfig.json') });
process.exitCode = require('../lib/cli/main').main(process.argv.slice(2));
