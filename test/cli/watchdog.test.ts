/**
 * Crash and hang containment through the CLI (docs/contract.md: kinds scenario_error and
 * internal_error, exit code 3, --yield-timeout): a crash inside lib/ is irqsim's own bug (exit
 * 3), a throw in scenario code is the scenario's (exit 1), a scenario thread stuck in a plain
 * JavaScript loop is stopped from outside within the budget and its schedule replays to the
 * same finding; the other variants are hunted all the same. Supervision changes no output.
 */
import { expect } from 'chai';
import { main, mainAsync, type Io } from '../../lib/cli/main';

const LIB = 'test/fixtures/crash-lib.ts';
const SCEN = 'test/fixtures/crash-scenario.ts';
const LOOP = 'test/fixtures/yield-loop.ts';

interface Out {
  code: number;
  out: string;
  err: string;
}

async function cli(argv: string[]): Promise<Out> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) };
  const code = await mainAsync(argv, io);
  return { code, out, err };
}

interface FindingOut {
  kind: string;
  subkind?: string;
  fingerprint: string;
  headline: string;
  text: string;
  iteration: number;
  schedule: string;
  shrunk?: string;
  replay: string;
}
interface RunOut {
  variant: string;
  verdict: string;
  schedulesRun: number;
  findings: FindingOut[];
}

function runs(o: Out): RunOut[] {
  expect(o.err, 'stderr').to.not.match(/irqsim: /);
  return (JSON.parse(o.out) as { runs: RunOut[] }).runs;
}

describe('crash and hang containment (CLI)', function () {
  // Supervised cases boot worker threads (ts-node): seconds each on a shared machine.
  this.timeout(240_000);

  it('a TypeError inside lib/ code is an internal_error: exit 3, with stack, schedule and replay; the other variant is still hunted', async () => {
    const o = await cli(['hunt', LIB, '--json']);
    expect(o.code).to.equal(3);
    const [buggy, fixed] = runs(o);
    expect(buggy.findings.map((f) => f.kind)).to.deep.equal(['internal_error']);
    const f = buggy.findings[0];
    expect(f.headline).to.match(/^irqsim internal error: TypeError: .*\(lib\/\S+:\d+\)$/);
    // The stack ends at the scenario's thread body: not the frames of whoever ran the engine.
    expect(f.text).to.match(/\n    at .*\(test\/fixtures\/crash-lib\.ts:\d+:\d+\)/);
    expect(f.text).to.not.match(/lib\/cli\/|lib\/scenario\/hunt|huntVariant/);
    expect(f.text).to.match(/thread kworker\/1:1/);
    expect(f.text).to.match(/\n    at .*lib\/kernel\//);
    expect(f.schedule).to.match(/^\d+:/);
    expect(f.replay).to.match(/^npx irqsim replay fixture-crash-lib \S+ --variant buggy$/);
    expect(fixed.verdict).to.equal('as-expected');
    expect(fixed.schedulesRun).to.equal(20);
    // The text output shows it like any other finding.
    const t = await cli(['hunt', LIB, '--variant', 'buggy']);
    expect(t.code).to.equal(3);
    expect(t.out).to.match(/irqsim internal error \(a bug in irqsim's model, not a kernel finding\)/);
    expect(t.out).to.match(/\nreplay: npx irqsim replay fixture-crash-lib /);
    // Its replay reproduces it, with the same exit code.
    const r = await cli(['replay', LIB, f.shrunk ?? f.schedule, '--variant', 'buggy', '--json']);
    expect(r.code).to.equal(3);
    expect((JSON.parse(r.out) as { findings: FindingOut[] }).findings.map((x) => x.fingerprint)).to.deep.equal([f.fingerprint]);
  });

  it('an exception thrown by the scenario itself is a scenario_error: exit 1, not 3', async () => {
    const o = await cli(['hunt', SCEN, '--json']);
    expect(o.code).to.equal(1);
    const [buggy, fixed] = runs(o);
    expect(buggy.findings.map((f) => f.kind)).to.deep.equal(['scenario_error']);
    expect(buggy.findings[0].headline).to.match(/^scenario error: RangeError: config table has no entry .*\(test\/fixtures\/crash-scenario\.ts:\d+\)$/);
    expect(buggy.findings[0].text).to.match(/at check_config \(test\/fixtures\/crash-scenario\.ts:\d+:\d+\)/);
    expect(fixed.verdict).to.equal('as-expected');
  });

  it('a thread stuck in a JavaScript loop is stopped within --yield-timeout, reported with its last step, and the hunt goes on', async () => {
    const t0 = Date.now();
    const o = await cli(['hunt', LOOP, '--yield-timeout', '1', '--seed', '0', '--iterations', '40', '--json']);
    expect(o.code).to.equal(1);
    const [buggy, fixed] = runs(o);
    expect(buggy.findings.map((f) => [f.kind, f.subkind])).to.deep.equal([['scenario_error', 'yield_timeout']]);
    const f = buggy.findings[0];
    // Seed 0: calibration runs finish; iteration 4 is the first whose race and workload make the loop spin.
    expect(f.iteration).to.equal(4);
    expect(buggy.schedulesRun).to.equal(5);
    expect(f.headline).to.equal('scenario error: thread kworker/0:1 did not yield within 1s (a loop in scenario code?)');
    expect(f.text).to.match(/last step: step \d+, thread kworker\/0:1; the op it last issued: access status/);
    expect(f.shrunk, 'a stuck schedule is not shrunk (every try would get stuck)').to.equal(undefined);
    expect(fixed.verdict).to.equal('as-expected');
    expect(fixed.schedulesRun).to.equal(40);
    // Its schedule replays under the same budget to the same finding (and does not hang).
    const r = await cli(['replay', LOOP, f.schedule, '--variant', 'buggy', '--yield-timeout', '1', '--json']);
    expect(r.code).to.equal(1);
    const rj = JSON.parse(r.out) as { schedule: string; findings: FindingOut[] };
    expect(rj.findings.map((x) => x.fingerprint)).to.deep.equal([f.fingerprint]);
    expect(rj.schedule).to.equal(f.schedule);
    expect(rj.findings[0].text).to.equal(f.text);
    expect(Date.now() - t0).to.be.below(200_000);
  });

  it('with --all the hunt goes on past each stuck run (a replacement worker takes the rest of the unit)', async () => {
    const o = await cli(['hunt', LOOP, '--variant', 'buggy', '--yield-timeout', '0.5', '--seed', '0', '--iterations', '12', '--all', '--json']);
    expect(o.code).to.equal(1);
    const [buggy] = runs(o);
    expect(buggy.schedulesRun).to.equal(12);
    const f = buggy.findings[0];
    expect(f.iteration).to.equal(4);
    // The same fold as a hunt whose loop throws instead: iterations 4 and 9 of the first 12 hit it (see the fixture).
    expect((f as unknown as { count: number }).count).to.be.at.least(2);
  });

  it('a loop that every run hits (calibration included) is reported, and run reports it too', async () => {
    const o = await cli(['hunt', LOOP, '--variant', 'buggy', '--param', 'always=true', '--yield-timeout', '0.5', '--json']);
    expect(o.code).to.equal(1);
    const [buggy] = runs(o);
    expect(buggy.findings.map((f) => f.fingerprint)).to.deep.equal(['scenario_error:yield_timeout@kworker/0:1']);
    const r = await cli(['run', LOOP, '--variant', 'buggy', '--param', 'always=true', '--yield-timeout', '0.5', '--json']);
    expect(r.code).to.equal(1);
    const [run] = runs(r);
    expect(run.findings.map((f) => f.fingerprint)).to.deep.equal(['scenario_error:yield_timeout@kworker/0:1']);
    expect(run.findings[0].schedule).to.match(/^\d+:/);
    const rp = await cli(['replay', LOOP, run.findings[0].schedule, '--variant', 'buggy', '--param', 'always=true', '--yield-timeout', '0.5', '--json']);
    expect(rp.code).to.equal(1);
    expect((JSON.parse(rp.out) as { findings: FindingOut[] }).findings.map((f) => f.fingerprint)).to.deep.equal(['scenario_error:yield_timeout@kworker/0:1']);
  });

  it('supervision changes no output: the same JSON with --yield-timeout 0 and 5 (findings, shrunk schedules, exit code)', async () => {
    for (const argv of [['hunt', LIB, '--json'], ['hunt', 'abba', '--variant', 'buggy', '--iterations', '40', '--json']]) {
      const a = await cli([...argv, '--yield-timeout', '0']);
      const b = await cli([...argv, '--yield-timeout', '5']);
      expect(b.code, argv.join(' ')).to.equal(a.code);
      expect(b.out, argv.join(' ')).to.equal(a.out);
      expect(a.out).to.match(/"shrunk":/);
    }
  });

  it('without supervision a hunt stays synchronous; with it, it is a promise', async () => {
    // (A promise without it would mean a worker boot per CLI call in the rest of the suite.)
    const io: Io = { out: () => undefined, err: () => undefined };
    expect(main(['hunt', SCEN, '--variant', 'fixed', '--yield-timeout', '0'], io)).to.equal(0);
    const p = main(['hunt', SCEN, '--variant', 'fixed', '--yield-timeout', '2'], io);
    expect(p).to.be.instanceOf(Promise);
    expect(await p).to.equal(0);
  });
});
