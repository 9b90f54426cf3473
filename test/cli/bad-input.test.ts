/**
 * docs/contract.md, exit codes: bad input gives exit code 2 and one line on stderr naming the
 * problem, no stack trace unless --debug, nothing on stdout. A table over every command and
 * option, run in-process (each case fails before any hunt), plus a few through the real binary
 * and a scenario file.
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { main, mainAsync, type Io } from '../../lib/cli/main';

const ROOT = join(__dirname, '..', '..');
/** The environment the CLI reads; cleared around every case so the caller's cannot leak in. */
const ENV_KEYS = ['JOB_COMPLETION_INDEX', 'IRQSIM_SHARD_COUNT', 'IRQSIM_SEED', 'IRQSIM_ITERATIONS', 'IRQSIM_YIELD_TIMEOUT'] as const;

function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const saved = ENV_KEYS.map((k) => [k, process.env[k]] as const);
  try {
    for (const k of ENV_KEYS) delete process.env[k];
    // In-process cases run unsupervised (synchronously) unless the case sets the variable.
    Object.assign(process.env, { IRQSIM_YIELD_TIMEOUT: '0' }, env);
    return fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function cli(argv: string[], env: Record<string, string> = {}): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) };
  const code = withEnv(env, () => main(argv, io));
  if (typeof code !== 'number') throw new Error(`${argv.join(' ')}: expected to fail synchronously, got a promise`);
  return { code, out, err };
}

/** Exit 2, nothing on stdout, one `irqsim: ` line naming the problem, no stack. */
function expectBad(r: { code: number; out: string; err: string }, msg: RegExp, what: string): void {
  expect(r.code, `${what}: exit code (stderr: ${r.err})`).to.equal(2);
  expect(r.out, `${what}: stdout`).to.equal('');
  const lines = r.err.replace(/\n$/, '').split('\n');
  expect(lines, `${what}: stderr lines`).to.have.length(1);
  expect(lines[0], what).to.match(/^irqsim: /);
  expect(lines[0], what).to.match(msg);
  expect(lines[0], what).to.not.match(/internal error|scenario error/);
}

/** Files the cases refer to as @name; made once in before(). */
const F: Record<string, string> = {};

type Case = [argv: string[], msg: RegExp, env?: Record<string, string>];

const SCHED = '@sched'; // a schedule of abba/buggy that deadlocks
const CASES: Case[] = [
  // commands and positionals
  [[], /no command given: expected list, run, hunt/],
  [['frob'], /unknown command "frob": expected list, run, hunt, replay, shrink, merge or report/],
  [['list', 'extra'], /unexpected argument "extra": irqsim list takes none/],
  [['run'], /run needs a scenario/],
  [['run', 'abba', 'extra'], /unexpected argument "extra"/],
  [['hunt'], /hunt needs a scenario/],
  [['hunt', 'abba', 'extra'], /unexpected argument "extra"/],
  [['hunt', 'abba', '--kernel', '5.4'], /bad --kernel "5.4": expected 3.x-arm, 6.3, 6.6, 6.8, 6.12/],
  [['hunt', 'abba', '--param', 'kernel=7.0'], /bad --param kernel "7.0": expected 3.x-arm/],
  [['replay'], /replay needs a scenario and a schedule/],
  [['replay', 'abba'], /replay needs a scenario and a schedule/],
  [['replay', 'abba', SCHED, 'extra'], /unexpected argument "extra"/],
  [['shrink', 'abba'], /shrink needs a scenario and a schedule/],
  [['shrink', 'abba', SCHED, 'extra'], /unexpected argument "extra"/],
  [['merge'], /merge needs the shard files/],
  [['report'], /report needs a results file/],
  [['report', '@abba', 'extra', '--html', '@html'], /unexpected argument "extra"/],
  // unknown scenario / variant / perturbation
  [['hunt', 'nope'], /unknown scenario "nope": not a file, and not one of .*abba/],
  [['run', 'scenarios/nope.ts'], /unknown scenario "scenarios\/nope.ts"/],
  [['replay', 'nope', SCHED], /unknown scenario "nope"/],
  [['shrink', 'nope', SCHED], /unknown scenario "nope"/],
  [['hunt', 'lib/cli/progress.ts'], /does not default-export a scenario definition/],
  [['hunt', 'README.md'], /cannot load scenario file README.md/],
  [['hunt', 'abba', '--variant', 'odd'], /scenario abba has no variant "odd": it has buggy, fixed/],
  [['run', 'abba', '--variant', 'odd'], /no variant "odd"/],
  [['replay', 'abba', SCHED, '--variant', 'odd'], /no variant "odd"/],
  [['hunt', 'abba', '--perturb', 'warp'], /scenario abba has no perturbation "warp": it has \(none\)/],
  [['hunt', 'S7', '--perturb', 'warp'], /scenario S7 has no perturbation "warp": it has cpus-2/],
  [['hunt', 'all', '--perturb', 'cpus-2'], /--perturb needs a single scenario/],
  // options: unknown, missing value, value on a flag
  [['hunt', 'abba', '--frobnicate'], /unknown option '--frobnicate'/],
  [['hunt', 'abba', '-x'], /unknown option '-x'/],
  [['hunt', 'abba', '--variant'], /--variant needs a value/],
  [['hunt', 'abba', '--seed'], /--seed needs a value/],
  [['hunt', 'abba', '--json=yes'], /--json takes no value/],
  // --param
  [['hunt', 'abba', '--param', 'nope=1'], /unknown parameter "nope" for abba: declared are cpus, holdNs, rounds/],
  [['hunt', 'abba', '--param', 'cpus'], /bad --param "cpus": expected key=value/],
  [['hunt', 'abba', '--param', '=2'], /bad --param "=2": expected key=value/],
  [['hunt', 'abba', '--param', 'cpus=two'], /bad --param cpus=two: expected a number/],
  [['hunt', 'abba', '--param', 'cpus='], /bad --param cpus=: expected a number/],
  [['hunt', 'abba', '--param', 'cpus=Infinity'], /bad --param cpus=Infinity: expected a number/],
  [['hunt', 'abba', '--param', 'cpus=-2'], /bad --param cpus=-2: must not be negative/],
  [['hunt', 'S7', '--param', 'dynamicFirst=yes'], /bad --param dynamicFirst=yes: expected true or false/],
  [['replay', 'abba', SCHED, '--param', 'holdNs=x'], /bad --param holdNs=x: expected a number/],
  [['shrink', 'abba', SCHED, '--param', 'nope=1'], /unknown parameter "nope"/],
  [['hunt', 'all', '--param', 'cpus=2'], /--param needs a single scenario/],
  // --seed
  [['hunt', 'abba', '--seed', '-1'], /bad value for --seed: a value starting with '-'/],
  [['hunt', 'abba', '--seed=-1'], /bad seed "-1": expected a non-negative integer/],
  [['hunt', 'abba', '--seed', '1.5'], /bad seed "1.5"/],
  [['hunt', 'abba', '--seed', 'x'], /bad seed "x"/],
  [['hunt', 'abba', '--seed', ''], /bad seed ""/],
  // above 2^32-1 is a valid seed (deriveSeed mixes the high bits); above 2^53-1 is not an exact integer
  [['hunt', 'abba', '--seed', '9007199254740992'], /bad seed "9007199254740992"/],
  [['hunt', 'abba', '--seed', '99999999999999999999'], /bad seed "99999999999999999999"/],
  // --iterations
  [['hunt', 'abba', '--iterations', '0'], /bad iteration count "0": expected a positive integer/],
  [['hunt', 'abba', '--iterations', '-3'], /bad value for --iterations/],
  [['hunt', 'abba', '--iterations=-3'], /bad iteration count "-3"/],
  [['hunt', 'abba', '--iterations', 'many'], /bad iteration count "many"/],
  [['hunt', 'abba', '--iterations', '2.5'], /bad iteration count "2.5"/],
  // strategy and its bounds
  [['hunt', 'abba', '--strategy', 'bfs'], /unknown strategy "bfs": expected one of random, pct, fair-pct, dfs/],
  [['run', 'abba', '--strategy', ''], /unknown strategy ""/],
  [['hunt', 'abba', '--strategy', 'pct', '--depth', 'deep'], /bad depth "deep": expected a non-negative integer/],
  [['hunt', 'abba', '--depth', '-1'], /bad value for --depth/],
  [['hunt', 'abba', '--depth', '1.5'], /bad depth "1.5"/],
  [['hunt', 'abba', '--strategy', 'dfs', '--preemption-bound', 'x'], /bad preemption bound "x"/],
  [['hunt', 'abba', '--preemption-bound=-1'], /bad preemption bound "-1"/],
  [['hunt', 'abba', '--irq-bound', '1.5'], /bad irq bound "1.5"/],
  [['hunt', 'abba', '--irq-bound', '-2'], /bad value for --irq-bound/],
  [['hunt', 'abba', '--portfolio', '--strategy', 'pct'], /--portfolio picks the strategy per iteration: it does not go with --strategy pct/],
  [['hunt', 'abba', '--strategy', 'dfs', '--portfolio'], /--portfolio .* does not go with --strategy dfs/],
  // mode, window, horizon, step budget, lockdep
  [['hunt', 'abba', '--mode', 'fast'], /bad mode "fast": expected interleave or timed/],
  [['hunt', 'abba', '--window', 'soon'], /bad window "soon": expected a virtual time/],
  [['hunt', 'abba', '--window=-5'], /bad window "-5"/],
  [['hunt', 'abba', '--window', '10 parsecs'], /bad window "10 parsecs"/],
  [['hunt', 'abba', '--horizon', 'soon'], /bad horizon "soon": expected a virtual time/],
  [['replay', 'abba', SCHED, '--horizon', '-1s'], /bad value for --horizon/],
  [['hunt', 'abba', '--max-steps', '0'], /bad step budget "0": expected a positive integer/],
  [['hunt', 'abba', '--max-steps', 'lots'], /bad step budget "lots"/],
  [['shrink', 'abba', SCHED, '--max-steps', '-1'], /bad value for --max-steps/],
  [['hunt', 'abba', '--lockdep', 'maybe'], /bad --lockdep "maybe": expected on or off/],
  [['hunt', 'abba', '--lockdep'], /--lockdep needs a value/],
  // --workers, --shard, --shard-count, JOB_COMPLETION_INDEX
  [['hunt', 'abba', '--workers', '0'], /bad --workers "0": expected an integer from 1 to 256, or auto/],
  [['hunt', 'abba', '--workers', '257'], /bad --workers "257"/],
  [['hunt', 'abba', '--workers', 'many'], /bad --workers "many"/],
  [['hunt', 'abba', '--workers', '-1'], /bad value for --workers/],
  [['hunt', 'abba', '--shard', '0/3'], /bad --shard "0\/3": i runs from 1 to n/],
  [['hunt', 'abba', '--shard', '4/3'], /bad --shard "4\/3": i runs from 1 to n/],
  [['hunt', 'abba', '--shard', '1/0'], /bad --shard "1\/0"/],
  [['hunt', 'abba', '--shard', 'x'], /bad --shard "x": expected i\/n, such as 2\/3/],
  [['hunt', 'abba', '--shard', '2'], /bad --shard "2": expected i\/n/],
  [['hunt', 'abba', '--shard', '1/3', '--shard-count', '3'], /--shard-count goes with JOB_COMPLETION_INDEX; --shard i\/n already says n/],
  [['hunt', 'abba', '--shard-count', '3'], /--shard-count needs JOB_COMPLETION_INDEX/],
  [['hunt', 'abba'], /JOB_COMPLETION_INDEX is set: give the number of completions with --shard-count/, { JOB_COMPLETION_INDEX: '0' }],
  [['hunt', 'abba', '--shard-count', '3'], /JOB_COMPLETION_INDEX 3 is not below the shard count 3/, { JOB_COMPLETION_INDEX: '3' }],
  [['hunt', 'abba', '--shard-count', '3'], /bad JOB_COMPLETION_INDEX "x": expected a non-negative integer/, { JOB_COMPLETION_INDEX: 'x' }],
  [['hunt', 'abba', '--shard-count', '3'], /bad JOB_COMPLETION_INDEX "-1"/, { JOB_COMPLETION_INDEX: '-1' }],
  [['hunt', 'abba', '--shard-count', '0'], /bad shard count "0": expected a positive integer/, { JOB_COMPLETION_INDEX: '0' }],
  [['hunt', 'abba', '--shard-count', 'x'], /bad shard count "x"/, { JOB_COMPLETION_INDEX: '0' }],
  [['hunt', 'abba'], /bad shard count "two"/, { JOB_COMPLETION_INDEX: '0', IRQSIM_SHARD_COUNT: 'two' }],
  [['run', 'abba', '--shard-count', '2'], /--shard belongs to irqsim hunt/, { JOB_COMPLETION_INDEX: '0' }],
  // IRQSIM_SEED, IRQSIM_ITERATIONS
  [['hunt', 'abba'], /IRQSIM_SEED: bad seed "-1"/, { IRQSIM_SEED: '-1' }],
  [['hunt', 'abba'], /IRQSIM_SEED: bad seed "x"/, { IRQSIM_SEED: 'x' }],
  [['hunt', 'abba', '--seed', '1'], /IRQSIM_SEED: bad seed "1.5"/, { IRQSIM_SEED: '1.5' }],
  [['hunt', 'abba'], /IRQSIM_ITERATIONS: bad iteration count "0"/, { IRQSIM_ITERATIONS: '0' }],
  [['hunt', 'abba'], /IRQSIM_ITERATIONS: bad iteration count "many"/, { IRQSIM_ITERATIONS: 'many' }],
  // --yield-timeout, IRQSIM_YIELD_TIMEOUT
  [['hunt', 'abba', '--yield-timeout', 'soon'], /bad --yield-timeout "soon": expected seconds >= 0, such as 10 or 0.5 \(0 turns the watchdog off\)/],
  [['hunt', 'abba', '--yield-timeout', ''], /bad --yield-timeout "": expected seconds >= 0/],
  [['hunt', 'abba', '--yield-timeout', '-1'], /bad value for --yield-timeout: a value starting with '-'/],
  [['hunt', 'abba', '--yield-timeout=-1'], /bad --yield-timeout "-1": expected seconds >= 0/],
  [['run', 'abba', '--yield-timeout', '1e3'], /bad --yield-timeout "1e3"/],
  [['hunt', 'abba', '--yield-timeout', '0.01'], /bad --yield-timeout "0.01": below 0.05 s a busy machine would stop healthy runs/],
  [['hunt', 'abba', '--yield-timeout', '100000'], /bad --yield-timeout "100000": at most 86400 seconds/],
  [['hunt', 'abba', '--yield-timeout'], /--yield-timeout needs a value/],
  [['replay', 'abba', SCHED, '--yield-timeout', 'x'], /bad --yield-timeout "x"/],
  [['hunt', 'abba'], /IRQSIM_YIELD_TIMEOUT "ten": expected seconds >= 0/, { IRQSIM_YIELD_TIMEOUT: 'ten' }],
  [['list', '--yield-timeout', '5'], /--yield-timeout does not apply to irqsim list: it takes --json/],
  [['shrink', 'abba', SCHED, '--yield-timeout', '5'], /--yield-timeout does not apply to irqsim shrink/],
  [['merge', '@shard1', '--yield-timeout', '5'], /--yield-timeout does not apply to irqsim merge/],
  // --out, --resume
  [['hunt', 'abba', '--resume'], /--resume continues the hunt recorded in --out <results.json>: give --out/],
  [['hunt', 'abba', '--resume', '--out', '@missing'], /cannot read .*missing.json: ENOENT/],
  [['hunt', 'abba', '--resume', '--out', '@text'], /text.txt is not JSON \(expected a results file written by irqsim hunt --out\)/],
  [['hunt', 'abba', '--resume', '--out', '@other'], /other.json is not a results file written by irqsim hunt --out/],
  [['hunt', 'abba', '--variant', 'fixed', '--iterations', '2', '--seed', '9', '--resume', '--out', '@out'], /cannot resume from .*out.json: it records a hunt with seed \(unset\), this one has 9/],
  [['hunt', 'sleep-in-atomic', '--resume', '--out', '@out'], /cannot resume from .*out.json: it has no hunt of sleep-in-atomic/],
  [['hunt', 'abba', '--variant', 'fixed', '--iterations', '1', '--out', '@nodir'], /cannot write .*no-such-dir\/x.json: ENOENT/],
  [['hunt', 'abba', '--variant', 'fixed', '--iterations', '1', '--out', '@dir'], /cannot write .*: EISDIR/],
  // options that belong to another command
  [['hunt', 'abba', '--trace', 't.json'], /--trace writes one run: use it with irqsim run/],
  [['run', 'abba', '--workers', '2'], /--workers belongs to irqsim hunt/],
  [['run', 'abba', '--shard', '1/2'], /--shard belongs to irqsim hunt/],
  [['run', 'abba', '--out', 'x.json'], /--out belongs to irqsim hunt/],
  [['run', 'abba', '--portfolio'], /--portfolio belongs to irqsim hunt/],
  [['run', 'abba', '--continue'], /--continue does not apply to irqsim run: --continue belongs to irqsim replay/],
  [['hunt', 'abba', '--continue'], /--continue does not apply to irqsim hunt/],
  [['hunt', 'abba', '--html', 'x.html'], /--html belongs to irqsim report <results.json> --html <out.html>/],
  [['list', '--html', 'x.html'], /--html belongs to irqsim report/],
  [['list', '--seed', '1'], /--seed does not apply to irqsim list: it takes --json/],
  [['replay', 'abba', SCHED, '--seed', '1'], /--seed does not apply to irqsim replay: it takes --variant/],
  [['replay', 'abba', SCHED, '--workers', '2'], /--workers does not apply to irqsim replay/],
  [['replay', 'abba', SCHED, '--out', 'x.json'], /--out does not apply to irqsim replay/],
  [['shrink', 'abba', SCHED, '--trace', 't.json'], /--trace does not apply to irqsim shrink/],
  [['shrink', 'abba', SCHED, '--continue'], /--continue does not apply to irqsim shrink/],
  [['merge', '@shard1', '--all'], /--all does not apply to irqsim merge: it takes --out, --json/],
  [['merge', '@shard1', '--resume', '--out', 'x.json'], /--resume does not apply to irqsim merge/],
  [['report', '@abba', '--html', '@html', '--json'], /--json does not apply to irqsim report: it takes --html/],
  // report
  [['report', '@abba'], /report needs --html <out.html>/],
  [['report', '@missing', '--html', '@html'], /cannot read .*missing.json: ENOENT/],
  [['report', '@text', '--html', '@html'], /text.txt is not JSON \(expected the output of irqsim hunt --json\)/],
  [['report', '@other', '--html', '@html'], /other.json is not the output of irqsim hunt --json/],
  [['report', '@abba', '--html', '@nodir'], /cannot write .*no-such-dir\/x.json: ENOENT/],
  // replay and shrink: bad schedules
  [['replay', 'abba', 'garbage'], /bad schedule "garbage": expected 8 ':'-separated fields, found 1/],
  [['replay', 'abba', '@corrupt'], /bad schedule ".*": checksum mismatch \(the string is corrupt or truncated\)/],
  [['replay', 'abba', '@truncated'], /bad schedule ".*": expected 8 ':'-separated fields, found 7 \(truncated/],
  [['replay', 'sleep-in-atomic', SCHED], /schedule was recorded for program hash \w+, but sleep-in-atomic\/buggy .* hashes to \w+/],
  [['replay', 'abba', SCHED, '--variant', 'fixed'], /schedule was recorded for program hash \w+, but abba\/fixed/],
  [['shrink', 'abba', '@corrupt'], /checksum mismatch/],
  [['shrink', 'abba', '@clean', '--variant', 'fixed'], /the schedule gives no finding: there is nothing to keep while shrinking/],
  // merge
  [['merge', '@missing'], /cannot read .*missing.json: ENOENT/],
  [['merge', '@text'], /text.txt is not JSON \(expected a shard output/],
  [['merge', '@other'], /other.json is not a shard output/],
  [['merge', '@out'], /out.json: abba is not a shard output \(no options.shard\)/],
  [['merge', '@shard1'], /shard 2\/2 of abba is missing/],
  [['merge', '@shard1', '@shard1'], /shard 1\/2 of abba is given twice/],
  [['merge', '@dir'], /cannot read .*: EISDIR/],
];

function resolve(argv: string[]): string[] {
  return argv.map((a) => (a.startsWith('@') ? (F[a.slice(1)] ?? a) : a));
}

describe('bad input: exit code 2 and one line on stderr (docs/contract.md)', function () {
  this.timeout(60_000);
  let dir = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'irqsim-bad-input-'));
    F.dir = dir;
    F.missing = join(dir, 'missing.json');
    F.nodir = join(dir, 'no-such-dir', 'x.json');
    F.html = join(dir, 'out.html');
    F.text = join(dir, 'text.txt');
    writeFileSync(F.text, 'not json\n');
    F.other = join(dir, 'other.json');
    writeFileSync(F.other, JSON.stringify({ name: 'irqsim', version: '1' }));
    // a deadlocking schedule of abba/buggy, and the same choices on abba/fixed (which give nothing)
    const hunted = cli(['hunt', 'abba', '--variant', 'buggy', '--lockdep', 'off', '--seed', '3', '--json']);
    F.abba = join(dir, 'abba.json');
    writeFileSync(F.abba, hunted.out);
    F.sched = JSON.parse(hunted.out).runs[0].findings.find((f: { kind: string }) => f.kind === 'deadlock').schedule as string;
    F.corrupt = F.sched.slice(0, -1) + (F.sched.endsWith('a') ? 'b' : 'a');
    F.truncated = F.sched.slice(0, F.sched.lastIndexOf(':'));
    const clean = cli(['replay', 'abba', F.sched, '--variant', 'fixed', '--continue', '--json']);
    expect(JSON.parse(clean.out).findings).to.deep.equal([]);
    F.clean = JSON.parse(clean.out).schedule as string;
    // a (non-shard) --out file and one shard of two
    F.out = join(dir, 'out.json');
    expect(cli(['hunt', 'abba', '--variant', 'fixed', '--iterations', '2', '--out', F.out, '--json']).code).to.equal(0);
    F.shard1 = join(dir, 'shard1.json');
    const shard = cli(['hunt', 'abba', '--variant', 'fixed', '--iterations', '4', '--shard', '1/2', '--json']);
    expect(shard.code).to.equal(0);
    writeFileSync(F.shard1, shard.out);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [argv, msg, env] of CASES) {
    const name = `${env ? `${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''}irqsim ${argv.join(' ')}`;
    it(`${name}  ->  ${msg.source}`, () => {
      const args = resolve(argv);
      expectBad(cli(args, env), msg, name);
      // --debug: still exit 2 and nothing on stdout; the first line is the same, a stack may follow
      const d = cli(['--debug', ...args], env);
      expect(d.code, `${name} --debug`).to.equal(2);
      expect(d.out, `${name} --debug: stdout`).to.equal('');
      expect(d.err.split('\n')[0], `${name} --debug`).to.match(msg);
    });
  }

  it('supervised (--yield-timeout > 0), an error found on the worker thread is the same one line, exit 2', async function () {
    this.timeout(120_000);
    for (const [argv, msg] of [
      [['replay', 'abba', F.sched, '--variant', 'fixed', '--yield-timeout', '5'], /^irqsim: schedule was recorded for program hash \w+, but abba\/fixed/],
      [['hunt', 'abba', '--strategy', 'bfs', '--yield-timeout', '5'], /^irqsim: unknown strategy "bfs"/],
    ] as const) {
      let out = '';
      let err = '';
      const code = await mainAsync([...argv], { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
      expect(code, argv.join(' ')).to.equal(2);
      expect(out).to.equal('');
      expect(err.replace(/\n$/, '').split('\n')).to.have.length(1);
      expect(err).to.match(msg);
    }
  });

  it('--help prints the usage on stdout and exits 0', () => {
    const r = cli(['--help']);
    expect(r.code).to.equal(0);
    expect(r.out).to.match(/^usage: irqsim </);
    expect(r.err).to.equal('');
    // each command's help has the line (test/cli/help.test.ts checks every option)
    expect(cli(['hunt', '--help']).out).to.match(/--yield-timeout <s> +stop a thread running s seconds without yielding/);
  });

  describe('end to end: the exit code of the process and its one stderr line', () => {
    const cases: [cmd: string[], msg: RegExp, env?: Record<string, string>][] = [
      [['bin/irqsim.js'], /no command given/],
      // fails in the worker-thread path (a promise), before any worker starts
      [['bin/irqsim.js', 'hunt', 'abba', '--workers', '2', '--variant', 'fixed', '--iterations', '4', '--out', '/nonexistent-irqsim-dir/x.json'], /cannot write \/nonexistent-irqsim-dir\/x.json: ENOENT/],
      [['-r', 'ts-node/register/transpile-only', 'scenarios/abba.ts', '--shard-count', '2'], /JOB_COMPLETION_INDEX 5 is not below the shard count 2/, { JOB_COMPLETION_INDEX: '5' }],
    ];
    const results = new Map<string, Promise<{ code: number; out: string; err: string }>>();
    // the processes run side by side: each spends a couple of seconds loading ts-node
    before(() => {
      const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !(ENV_KEYS as readonly string[]).includes(k)));
      for (const [cmd, , env] of cases) {
        results.set(
          cmd.join(' '),
          new Promise((res) => {
            const p = spawn(process.execPath, cmd, { cwd: ROOT, env: { ...base, ...env } });
            let out = '';
            let err = '';
            p.stdout.on('data', (b: Buffer) => (out += b.toString()));
            p.stderr.on('data', (b: Buffer) => (err += b.toString()));
            // a checkout whose dist/ is not built says so first (bin/root.js): not the command's output
            p.on('close', (code) => res({ code: code ?? -1, out, err: err.split('\n').filter((l) => !l.startsWith('irqsim: dist/')).join('\n') }));
          }),
        );
      }
    });
    for (const [cmd, msg, env] of cases) {
      it(`${env ? `${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} ` : ''}node ${cmd.join(' ')}`, async () => {
        expectBad(await results.get(cmd.join(' '))!, msg, cmd.join(' '));
      });
    }
  });
});
