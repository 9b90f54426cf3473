/** For users' mocha suites: `hunt()` and the chai plugin. See README "Testing your scenario". */
export { hunt, huntSync, type HuntHelperOptions, type HuntReport } from './hunt';
export { irqsimChai } from './chai';
