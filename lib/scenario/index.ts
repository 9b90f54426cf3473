/** The scenario layer a scenario file imports (`irqsim/scenario`): the definition and the self-run entry. */
export * from './define';
export { runScenarioFile } from './self-run';
