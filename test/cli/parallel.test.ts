/**
 * Parallel, sharded and resumed hunts through the command line: `--workers n`, `--shard i/n`
 * (or JOB_COMPLETION_INDEX with --shard-count) then `irqsim merge`, and `--out` killed then
 * `--resume` give byte for byte the JSON of one uninterrupted process; `irqsim shrink`.
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { mainAsync, type Io } from '../../lib/cli/main';

const ROOT = join(__dirname, '..', '..');
const ENV_KEYS = ['JOB_COMPLETION_INDEX', 'IRQSIM_SHARD_COUNT', 'IRQSIM_SEED', 'IRQSIM_ITERATIONS'] as const;

interface Out {
  code: number;
  out: string;
  err: string;
}

/** The command in this process, with exactly `env` of the variables the CLI reads. */
async function cli(argv: string[], env: Record<string, string> = {}): Promise<Out> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) };
  const saved = ENV_KEYS.map((k) => [k, process.env[k]] as const);
  try {
    for (const k of ENV_KEYS) delete process.env[k];
    Object.assign(process.env, env);
    const code = await mainAsync(argv, io);
    return { code, out, err };
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Bad input: exit 2, one line on stderr, nothing on stdout. */
function expectBad(r: Out, re: RegExp): void {
  expect(r.code, r.err).to.equal(2);
  expect(r.out).to.equal('');
  expect(r.err.trimEnd().split('\n'), r.err).to.have.length(1);
  expect(r.err).to.match(re);
}

interface RunLike {
  variant: string;
  findings: { kind: string; schedule: string; fingerprint: string }[];
  state?: { complete: boolean; units: unknown[] };
}

/** A results document without the runs' records (`state`). */
function withoutState(text: string): string {
  const j = JSON.parse(text) as { runs: RunLike[] };
  for (const r of j.runs) delete r.state;
  return JSON.stringify(j);
}

describe('irqsim parallel, sharded and resumed hunts', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'irqsim-parallel-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('--workers 1, 2 and 3 print byte-identical JSON', async function () {
    this.timeout(120_000);
    for (const argv of [['hunt', 'S3', '--variant', 'fixed', '--iterations', '40', '--json']]) {
      const one = await cli(argv);
      expect(one.code, one.err).to.equal(0);
      for (const w of ['1', '2', '3']) {
        const r = await cli([...argv, '--workers', w]);
        expect(r.code, r.err).to.equal(0);
        expect(r.out, `--workers ${w}`).to.equal(one.out);
      }
    }
  });

  describe('shards and merge', () => {
    const cases: [string, string[]][] = [
      // buggy stops early on its expectation, fixed spends the budget
      ['irq-self-deadlock', ['hunt', 'irq-self-deadlock', '--json', '--seed', '4', '--iterations', '120']],
      ['abba --all', ['hunt', 'abba', '--all', '--json', '--iterations', '100', '--no-shrink']],
    ];
    const shardFiles = new Map<string, string[]>();

    for (const [name, argv] of cases) {
      it(`${name}: --shard 1/3, 2/3, 3/3 merged give the single run's JSON`, async function () {
        this.timeout(60_000);
        const one = await cli(argv);
        expect(one.code, one.err).to.equal(0);
        const files: string[] = [];
        for (let i = 1; i <= 3; i++) {
          const r = await cli([...argv, '--shard', `${i}/3`]);
          expect(r.code, r.err).to.be.oneOf([0, 1]);
          const j = JSON.parse(r.out) as { options: { shard: string }; runs: RunLike[] };
          expect(j.options.shard).to.equal(`${i}/3`);
          for (const run of j.runs) expect(run.state?.complete).to.equal(true);
          files.push(write(`${name.replace(/\W+/g, '-')}-${i}.json`, r.out));
        }
        shardFiles.set(name, files);
        // in any order
        const m = await cli(['merge', files[2], files[0], files[1], '--json']);
        expect(m.code, m.err).to.equal(0);
        expect(m.out).to.equal(one.out);
      });
    }

    it('JOB_COMPLETION_INDEX=0..2 with --shard-count 3 is --shard 1/3..3/3', async function () {
      this.timeout(60_000);
      const [, argv] = cases[0];
      const files = shardFiles.get(cases[0][0]) as string[];
      expect(files).to.have.length(3);
      for (let i = 0; i < 3; i++) {
        const r = await cli([...argv, '--shard-count', '3'], { JOB_COMPLETION_INDEX: String(i) });
        expect(r.out, `JOB_COMPLETION_INDEX=${i}`).to.equal(readFileSync(files[i], 'utf8'));
        // the count may come from the environment too
        if (i === 0) {
          const e = await cli(argv, { JOB_COMPLETION_INDEX: '0', IRQSIM_SHARD_COUNT: '3' });
          expect(e.out).to.equal(r.out);
        }
      }
      expectBad(await cli(argv, { JOB_COMPLETION_INDEX: '1' }), /JOB_COMPLETION_INDEX is set: give the number of completions with --shard-count/);
      expectBad(await cli([...argv, '--shard-count', '3'], { JOB_COMPLETION_INDEX: '3' }), /JOB_COMPLETION_INDEX 3 is not below the shard count 3/);
      expectBad(await cli([...argv, '--shard-count', '3'], { JOB_COMPLETION_INDEX: 'x' }), /bad JOB_COMPLETION_INDEX "x"/);
      expectBad(await cli([...argv, '--shard-count', '3']), /--shard-count needs JOB_COMPLETION_INDEX/);
    });

    it('merge refuses a missing shard, one given twice, shards of different hunts, a non-shard file and an unfinished shard', async function () {
      this.timeout(60_000);
      const [, argv] = cases[0];
      const [a, b, c] = shardFiles.get(cases[0][0]) as string[];
      expectBad(await cli(['merge', a, b, '--json']), /shard 3\/3 of irq-self-deadlock is missing/);
      expectBad(await cli(['merge', a, b, c, b, '--json']), /shard 2\/3 of irq-self-deadlock is given twice/);
      // another seed
      const other = await cli([...argv.filter((x, i) => argv[i - 1] !== '--seed' && x !== '--seed'), '--seed', '5', '--shard', '2/3']);
      const o = write('other-seed-2.json', other.out);
      expectBad(await cli(['merge', a, o, c, '--json']), /other options than/);
      // another shard count
      const four = await cli([...argv, '--shard', '2/4']);
      const f = write('four-2.json', four.out);
      expectBad(await cli(['merge', a, f, c, '--json']), /does not go with/);
      // not a shard output: a plain hunt's, and not a results file at all
      const plain = write('plain.json', (await cli(argv)).out);
      expectBad(await cli(['merge', a, b, plain, '--json']), /not a shard output/);
      expectBad(await cli(['merge', a, b, write('junk.json', '{"hello": 1}'), '--json']), /is not a shard output/);
      expectBad(await cli(['merge', a, b, write('text.json', 'not json'), '--json']), /is not JSON/);
      expectBad(await cli(['merge', a, b, join(dir, 'absent.json'), '--json']), /cannot read .*absent\.json/);
      // a shard that did not finish (a killed hunt's --out file)
      const j = JSON.parse(readFileSync(c, 'utf8')) as { runs: RunLike[] };
      (j.runs[0].state as { complete: boolean }).complete = false;
      expectBad(await cli(['merge', a, b, write('unfinished-3.json', JSON.stringify(j)), '--json']), /shard 3\/3 of irq-self-deadlock\/\S+ did not finish/);
    });
  });

  describe('--out, kill, --resume', () => {
    const ARGV = ['hunt', 'S3', '--variant', 'fixed', '--seed', '5', '--iterations', '400', '--all', '--json'];

    it('a hunt killed mid-way resumes to the uninterrupted JSON; the file is valid JSON whenever read', async function () {
      this.timeout(180_000);
      const file = join(dir, 'o.json');
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'irqsim.js'), ...ARGV, '--out', file], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      let reads = 0;
      let killedAt = -1;
      try {
        const deadline = Date.now() + 120_000;
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
          if (child.exitCode !== null) break;
          if (!existsSync(file)) continue;
          const j = JSON.parse(readFileSync(file, 'utf8')) as { runs: RunLike[] }; // throws on a torn file
          reads++;
          const st = j.runs[0]?.state;
          if (st && !st.complete && st.units.length >= 2) {
            child.kill('SIGKILL');
            killedAt = st.units.length;
            break;
          }
        }
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await exited;
      expect(killedAt, `the hunt ended before it could be killed (${stderr})`).to.be.greaterThan(0);
      expect(reads).to.be.greaterThan(0);
      const killed = JSON.parse(readFileSync(file, 'utf8')) as { runs: (RunLike & { verdict: string })[] };
      expect(killed.runs[0].verdict).to.equal('incomplete');
      expect(killed.runs[0].state?.complete).to.equal(false);

      // --resume against another hunt (another seed) is refused and names the difference
      const bad = await cli([...ARGV.map((x, i) => (ARGV[i - 1] === '--seed' ? '6' : x)), '--out', file, '--resume']);
      expectBad(bad, /cannot resume from .*o\.json: it records a hunt with seed 5, this one has 6/);

      const resumed = await cli([...ARGV, '--out', file, '--resume']);
      expect(resumed.code, resumed.err).to.equal(0);
      const whole = await cli(ARGV);
      expect(whole.code, whole.err).to.equal(0);
      expect(withoutState(resumed.out)).to.equal(whole.out.trimEnd());
      // the file holds the finished hunt
      const final = JSON.parse(readFileSync(file, 'utf8')) as { runs: RunLike[] };
      expect(final.runs[0].state?.complete).to.equal(true);
      expect(withoutState(readFileSync(file, 'utf8'))).to.equal(whole.out.trimEnd());
    });
  });

  it('irqsim shrink: no more deviations, and the shrunk schedule replays to the same fingerprint', async function () {
    this.timeout(60_000);
    // shrink keeps the schedule's fatal finding (the deadlock), with lockdep on or off: lockdep's
    // earlier warning must not be what is kept
    for (const [id, seed, lockdep] of [
      ['abba', '3', 'off'],
      ['irq-self-deadlock', '4', 'off'],
      ['abba', '3', 'on'],
      ['irq-self-deadlock', '4', 'on'],
    ]) {
      const h = await cli(['hunt', id, '--variant', 'buggy', '--no-shrink', '--json', '--seed', seed, '--lockdep', lockdep]);
      const f = (JSON.parse(h.out) as { runs: RunLike[] }).runs[0].findings.find((x) => x.kind === 'deadlock');
      expect(f, `${id}: a deadlock`).to.not.equal(undefined);
      const s = await cli(['shrink', id, f!.schedule, '--variant', 'buggy', '--json', '--lockdep', lockdep]);
      expect(s.code, s.err).to.equal(0);
      const j = JSON.parse(s.out) as { fingerprint: string; schedule: string; shrunk: string; deviations: { before: number; after: number } };
      expect(j.schedule).to.equal(f!.schedule);
      expect(j.deviations.before).to.be.greaterThan(0);
      expect(j.deviations.after).to.be.at.most(j.deviations.before);
      expect(j.fingerprint).to.equal(f!.fingerprint);
      const r = await cli(['replay', id, j.shrunk, '--variant', 'buggy', '--json', '--lockdep', lockdep]);
      expect((JSON.parse(r.out) as { findings: { fingerprint: string }[] }).findings.map((x) => x.fingerprint)).to.include(j.fingerprint);
    }
  });
});
