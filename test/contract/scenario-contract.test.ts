/**
 * The contract check of docs/contract.md, in the repository: `irqsim list --json` names every
 * scenario, `irqsim hunt all --json` hunts each one with its declared budgets, and every run keeps
 * its variant's expectation. The check over the real catalog (one list, one in-process hunt of
 * the whole catalog, about 45 s of CPU) is test/contract/catalog.ci.ts, run by `npm run contract`
 * in CI (.ci/run) next to npm test; here, the planted cases show the check says "no".
 */
import { expect } from 'chai';
import { contractProblems, huntedScenarios, type HuntedScenario, type ListedScenario } from './contract';

describe('scenario contract (irqsim list --json, irqsim hunt all --json)', function () {
  this.timeout(600_000);

  describe('says no when the catalog breaks the contract', () => {
    const list: ListedScenario[] = [{ id: 'S1', file: 'scenarios/s01.ts', variants: [{ name: 'buggy' }, { name: 'fixed' }] }];
    const good = (): HuntedScenario[] => [
      {
        scenario: { id: 'S1', file: 'scenarios/s01.ts' },
        runs: [
          { variant: 'buggy', verdict: 'as-expected', expect: { findings: ['deadlock'], metrics: ['failures'] }, findings: [{ kind: 'deadlock' }], metrics: { failures: 3 } },
          { variant: 'fixed', verdict: 'as-expected', expect: { clean: true, absent: ['lockdep'] }, findings: [], metrics: {} },
        ],
        claims: [{ name: 'cheaper', holds: true }],
      },
    ];
    const planted = (change: (h: HuntedScenario[]) => void): string[] => {
      const h = good();
      change(h);
      return contractProblems(list, h);
    };

    it('accepts a catalog that keeps it', () => expect(contractProblems(list, good())).to.deep.equal([]));
    it('an empty list', () => expect(contractProblems([], good())).to.have.length(1));
    it('a listed scenario not hunted', () => expect(contractProblems(list, [])).to.deep.equal(['S1: listed but not hunted']));
    it('a hunted scenario not listed', () => expect(planted((h) => h.push({ ...h[0], scenario: { id: 'S2', file: 'x' } }))).to.deep.equal(['S2: hunted but not listed']));
    it('no fixed variant declared', () =>
      expect(contractProblems([{ ...list[0], variants: ['buggy'] }], good().map((x) => ({ ...x, runs: x.runs.slice(0, 1) })))).to.deep.equal(['S1: no buggy/fixed variant declared']));
    it('a declared variant without a run', () => expect(planted((h) => h[0].runs.pop())).to.deep.equal(['S1/fixed: no run']));
    it('a verdict other than as-expected', () => expect(planted((h) => (h[0].runs[1].verdict = 'unexpected'))).to.deep.equal(['S1/fixed: verdict unexpected']));
    it('an expected kind missing', () => expect(planted((h) => (h[0].runs[0].findings = [{ kind: 'lockdep' }])).join()).to.match(/S1\/buggy: expected \[deadlock\] got \[lockdep\]/));
    it('an absent kind appearing', () => expect(planted((h) => (h[0].runs[1].findings = [{ kind: 'lockdep' }])).join()).to.match(/absent kinds appeared: \[lockdep\].*expected clean got \[lockdep\]/));
    it('a finding in a clean variant', () => expect(planted((h) => (h[0].runs[1].findings = [{ kind: 'stall' }]))).to.deep.equal(['S1/fixed: expected clean got [stall]']));
    it('an expected metric not reported', () => expect(planted((h) => (h[0].runs[0].metrics = { failures: null as unknown as number }))).to.deep.equal(['S1/buggy: metrics missing: [failures]']));
    it('a buggy variant that expects nothing', () => expect(planted((h) => (h[0].runs[0].expect = { absent: ['oom_kill'] }))).to.deep.equal(['S1/buggy: buggy variant expects nothing']));
    it('a claim that fails (a claim not judged is no failure)', () => {
      expect(planted((h) => (h[0].claims = [{ name: 'cheaper', holds: false }]))).to.deep.equal(['S1: claim cheaper does not hold']);
      expect(planted((h) => (h[0].claims = [{ name: 'cheaper', holds: null }]))).to.deep.equal([]);
    });
    it('reads both shapes of hunt --json and refuses anything else', () => {
      expect(huntedScenarios({ scenarios: good() })).to.have.length(1);
      expect(huntedScenarios(good()[0])).to.have.length(1);
      expect(() => huntedScenarios({ runs: [] })).to.throw(/neither/);
    });
  });
});
