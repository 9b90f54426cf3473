import { expect } from 'chai';
import { FINDING_KINDS } from '../../lib/check/kinds';
import { defineScenario } from '../../lib/scenario/define';

describe('finding kinds (docs/contract.md)', () => {
  const def = (kinds: string[]) => () =>
    defineScenario({ id: 'k', name: 'k', description: 'k', params: {}, variants: [{ name: 'buggy', expect: { findings: kinds } }], build() {} });

  it('use_after_free is a kind of its own, next to rcu', () => {
    expect(FINDING_KINDS).to.include('use_after_free');
    expect(FINDING_KINDS).to.include('rcu');
    expect(def(['use_after_free'])).to.not.throw();
  });

  it('a variant expecting an unknown kind is refused (a typo would make the expectation vacuous)', () => {
    expect(def(['use-after-free'])).to.throw(/expects unknown finding kind "use-after-free"/);
    expect(def(['lockdep', 'deadlok'])).to.throw(/unknown finding kind "deadlok"/);
  });
});
