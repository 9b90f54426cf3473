/**
 * The contract check of docs/contract.md over the real catalog: `irqsim list --json` names every
 * scenario, `irqsim hunt all --json` hunts each one with its declared budgets, and every run keeps
 * its variant's expectation (the checker, and the planted cases that show it says "no", are in
 * ./contract.ts and ./scenario-contract.test.ts). The CLI runs in-process: one list, one hunt of
 * the whole catalog, not one process per scenario. `npm run contract`; CI runs it after npm test.
 */
import { expect } from 'chai';
import { main } from '../../lib/cli/main';
import { contractProblems, huntedScenarios, type ListedScenario } from './contract';

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => (out += s.endsWith('\n') ? s : `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

describe('scenario contract over the catalog (irqsim list --json, irqsim hunt all --json)', function () {
  this.timeout(900_000);

  it('every listed scenario is hunted and every run keeps its expectation', async () => {
    const listed = await cli(['list', '--json']);
    expect(listed.code, listed.err).to.equal(0);
    const list = (JSON.parse(listed.out) as { scenarios: ListedScenario[] }).scenarios;
    const hunt = await cli(['hunt', 'all', '--json']);
    const lines = hunt.out.trim().split('\n');
    expect(lines, 'stdout is one JSON object').to.have.length(1);
    const problems = contractProblems(list, huntedScenarios(JSON.parse(lines[0])));
    expect(problems, problems.join('\n')).to.deep.equal([]);
    expect(hunt.code, `exit code (stderr: ${hunt.err})`).to.equal(0);
  });

});
