/** For users' mocha suites: `hunt()` and the chai plugin. See README "Testing your scenario". */
export { hunt, huntClaims, huntSync, type ClaimsHuntOptions, type HuntHelperOptions, type HuntReport } from './hunt';
export { irqsimChai } from './chai';
export type { RunOptionsJson } from '../report/run-options';
