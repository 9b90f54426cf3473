import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, huntSync, irqsimChai } from '../../lib/testing';
import abba from '../../scenarios/abba';

chai.use(irqsimChai);

function withEnv<T>(env: Record<string, string | undefined>, f: () => T): T {
  const old: Record<string, string | undefined> = {};
  for (const k of Object.keys(env)) {
    old[k] = process.env[k];
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  try {
    return f();
  } finally {
    for (const k of Object.keys(old)) {
      if (old[k] === undefined) delete process.env[k];
      else process.env[k] = old[k];
    }
  }
}

describe('hunt() helper and the chai plugin', () => {
  it('reports a buggy variant\'s deadlock, and a fixed variant is clean', async () => {
    expect(await hunt(abba, { variant: 'buggy', iterations: 200 })).to.report('deadlock');
    expect(await hunt(abba, { variant: 'buggy', iterations: 200 })).to.report('lockdep', 'circular');
    const fixed = await hunt('abba', { variant: 'fixed', iterations: 50 });
    expect(fixed).to.be.clean;
    expect(fixed).not.to.report('deadlock');
    expect(fixed).to.be.asExpected;
    expect(fixed.schedulesRun).to.equal(50);
  });

  it('a failing assertion prints the finding text, the replay command and the rerun environment', async () => {
    const r = await hunt(abba, { variant: 'buggy', iterations: 200, seed: 3 });
    let msg = '';
    try {
      expect(r).not.to.report('deadlock');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).to.match(/not to report deadlock/);
    expect(msg).to.include('replay: npx irqsim replay abba ');
    expect(msg).to.include('IRQSIM_SEED=3 IRQSIM_ITERATIONS=200');
    expect(msg).to.match(/deadlock/i);
    let missing = '';
    try {
      expect(r).to.report('oom_kill');
    } catch (e) {
      missing = (e as Error).message;
    }
    expect(missing).to.match(/to report oom_kill; it reported .*deadlock/);
  });

  it('IRQSIM_SEED and IRQSIM_ITERATIONS override the seed and the budget', () => {
    const r = withEnv({ IRQSIM_SEED: '11', IRQSIM_ITERATIONS: '7' }, () => huntSync(abba, { variant: 'fixed', iterations: 500, seed: 1 }));
    expect(r.seed).to.equal(11);
    expect(r.iterations).to.equal(7);
    expect(r.schedulesRun).to.equal(7);
    expect(() => withEnv({ IRQSIM_SEED: '-1' }, () => huntSync(abba, { variant: 'fixed' }))).to.throw(/IRQSIM_SEED/);
  });

  it('names an unknown variant or parameter', () => {
    expect(() => huntSync(abba, { variant: 'nope' })).to.throw(/no variant "nope"/);
    expect(() => huntSync(abba, { params: { bogus: 1 } as never })).to.throw(/unknown parameter "bogus"/);
  });
});
