/**
 * Per-command help, --version, and "did you mean" wired into the command line. The option list
 * comes from the parser (OPTION_NAMES), so adding an option without a help line fails here.
 */
import { expect } from 'chai';
import { readFileSync } from 'fs';
import { join } from 'path';
import { main, type Io } from '../../lib/cli/main';
import { OPTION_NAMES, appliesTo } from '../../lib/cli/options';
import { COMMANDS, COMMAND_OPTIONS, OPTION_HELP, commandUsage } from '../../lib/cli/usage';

function cli(...argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) };
  const code = main(argv, io);
  if (typeof code !== 'number') throw new Error('synchronous commands only');
  return { code, out, err };
}

const VERSION = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')).version as string;
const SCHED = '2:00000000:random:1:1::00000';

/** A value the parser accepts for option k (only whether the command takes it is checked). */
function argsFor(k: string): string[] {
  const values: Record<string, string> = { events: 'all', lockdep: 'on', mode: 'timed', kernel: '6.12', param: 'x=1', shard: '1/2', workers: '2', 'yield-timeout': '0', window: '0', horizon: '10ms' };
  const booleans = ['all', 'json', 'debug', 'check-determinism', 'continue', 'no-shrink', 'confirm', 'portfolio', 'resume', 'help', 'version'];
  // --resume needs --out (the parser says so first)
  if (k === 'resume') return ['--resume', '--out', 'x.json'];
  return booleans.includes(k) ? [`--${k}`] : [`--${k}`, values[k] ?? '1'];
}

describe('cli: help and did-you-mean', () => {
  it('every option the parser accepts has a help line and belongs to some command', () => {
    for (const k of OPTION_NAMES) {
      expect(OPTION_HELP[k], `--${k} has no line in lib/cli/usage.ts OPTION_HELP`).to.be.an('array');
      expect(COMMANDS.some((c) => appliesTo(c, k)), `--${k} applies to no command`).to.equal(true);
    }
  });

  it('each command help lists every option it reads, one line each', () => {
    for (const c of COMMANDS) {
      const r = cli(c, '--help');
      expect(r.code).to.equal(0);
      expect(r.out).to.equal(`${commandUsage(c)}\n`);
      expect(r.out).to.match(new RegExp(`^usage: irqsim ${c} `));
      const lines = r.out.split('\n');
      for (const k of OPTION_NAMES.filter((x) => appliesTo(c, x))) {
        const syntax = OPTION_HELP[k][0];
        expect(lines.filter((l) => l.trimStart().startsWith(`${syntax} `)), `irqsim ${c} --help: --${k}`).to.have.length(1);
      }
      for (const l of lines) expect(l.length, l).to.be.at.most(100);
    }
    // the options the issue found hidden
    const hunt = cli('hunt', '--help').out;
    for (const k of ['--param', '--perturb', '--mode', '--depth', '--lockdep', '--confirm', '--no-shrink', '--check-determinism', '--debug']) expect(hunt).to.include(k);
    expect(cli('replay', '--help').out).to.include('--events all|locks|tail=N');
  });

  it('an option a command does not list in its help is refused by that command (help and parser agree)', () => {
    const positional: Record<string, string[]> = { list: [], hunt: ['abba'], run: ['abba'], replay: ['abba', SCHED], shrink: ['abba', SCHED], merge: ['x.json'], report: ['x.json'] };
    for (const c of COMMANDS) {
      for (const k of OPTION_NAMES.filter((x) => !appliesTo(c, x))) {
        // --shard-count goes with a Kubernetes Indexed Job's JOB_COMPLETION_INDEX
        if (k === 'shard-count') process.env.JOB_COMPLETION_INDEX = '0';
        let r;
        try {
          r = cli(c, ...positional[c], ...argsFor(k));
        } finally {
          delete process.env.JOB_COMPLETION_INDEX;
        }
        expect(r.code, `irqsim ${c} --${k}: ${r.err}`).to.equal(2);
        expect(r.err, `irqsim ${c} --${k}`).to.match(new RegExp(`--${k === 'shard-count' ? 'shard' : k === 'resume' ? '(resume|out)' : k}[^ ]* (does not apply to irqsim ${c}|belongs to irqsim|writes one run)`));
      }
    }
    expect(COMMAND_OPTIONS.list).to.deep.equal(['json']);
  });

  it('--version prints the package version, in-process and after a command', () => {
    for (const argv of [['--version'], ['hunt', '--version']]) {
      const r = cli(...argv);
      expect([r.code, r.out]).to.deep.equal([0, `${VERSION}\n`]);
    }
  });

  it('suggests the command, option, scenario, variant and perturbation meant', () => {
    const cases: [string[], RegExp][] = [
      [['hnut', 'abba'], /unknown command "hnut": .* \(did you mean hunt\?\)$/],
      [['hunt', 'abba', '--iteration', '5'], /unknown option '--iteration' \(did you mean --iterations\?\)$/],
      [['hunt', 'abab'], /unknown scenario "abab": .* \(did you mean abba\?\)$/],
      [['replay', 'abab', SCHED], /unknown scenario "abab": .* \(did you mean abba\?\)$/],
      [['hunt', 'abba', '--variant', 'bugy'], /has no variant "bugy": it has buggy, fixed \(did you mean buggy\?\)$/],
      [['hunt', 'S3', '--perturb', 'nic-46'], /has no perturbation "nic-46": .* \(did you mean nic-64\?\)$/],
    ];
    for (const [argv, re] of cases) {
      const r = cli(...argv);
      expect(r.code, argv.join(' ')).to.equal(2);
      expect(r.err.trim(), argv.join(' ')).to.match(re);
    }
  });

  it('says nothing when no word is clearly meant', () => {
    for (const argv of [['zzzz'], ['hunt', 'abba', '--zzzzzz'], ['hunt', 'qqqq'], ['hunt', 'abba', '--variant', 'zzz']]) {
      const r = cli(...argv);
      expect(r.code).to.equal(2);
      expect(r.err).to.not.include('did you mean');
    }
  });
});
