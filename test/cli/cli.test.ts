import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { spawnSync } from 'child_process';
import { join } from 'path';
import { main, type Io } from '../../lib/cli/main';
import { metricsTable } from '../../lib/report/text';

function cli(...argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) };
  const code = main(argv, io);
  if (typeof code !== 'number') throw new Error('cli() runs synchronous commands only: use mainAsync for --workers');
  return { code, out, err };
}

describe('irqsim command line', () => {
  it('list --json gives every scenario with its variants and expectations', () => {
    const r = cli('list', '--json');
    expect(r.code).to.equal(0);
    const doc = JSON.parse(r.out);
    expect(doc.version).to.equal(2);
    const list = doc.scenarios;
    const ids = list.map((s: { id: string }) => s.id);
    expect(ids).to.include.members(['abba', 'irq-self-deadlock', 'sleep-in-atomic', 'ipi-irqs-off']);
    for (const s of list) {
      expect(s.variants.map((v: { name: string }) => v.name)).to.include.members(['buggy', 'fixed']);
      expect(s.file).to.match(/^scenarios\/.*\.ts$/);
    }
  });

  it('hunt --json prints one JSON object with runs, verdicts, findings and a replay command', () => {
    const r = cli('hunt', 'abba', '--json', '--seed', '3');
    expect(r.code).to.equal(0);
    const j = JSON.parse(r.out);
    expect(j.scenario.id).to.equal('abba');
    const buggy = j.runs.find((x: { variant: string }) => x.variant === 'buggy');
    expect(buggy.verdict).to.equal('as-expected');
    // lockdep predicts the inversion; the buggy variant declares confirm, so the prediction names
    // the schedule that deadlocks
    const ld = buggy.findings.find((x: { kind: string }) => x.kind === 'lockdep');
    expect(ld.subkind).to.equal('circular');
    expect(ld.text).to.contain('WARNING: possible circular locking dependency detected');
    expect(ld.confirmed).to.match(/^confirmed by schedule 2:[0-9a-f]{8}:/);
    const f = buggy.findings.find((x: { kind: string }) => x.kind === 'deadlock');
    expect(f.replay).to.match(/^npx irqsim replay abba 2:[0-9a-f]{8}:\S+ --variant buggy$/);
    expect(f.cpuStates).to.have.length(2);
    // the replay command replays to the same finding
    const schedule = f.replay.split(' ')[4];
    const rep = cli('replay', 'abba', schedule, '--variant', 'buggy', '--json');
    expect(rep.code).to.equal(0);
    expect(JSON.parse(rep.out).findings.find((x: { kind: string }) => x.kind === 'deadlock').text).to.equal(f.text);
  });

  it('--lockdep off: no lockdep findings, and the replay command says so', () => {
    const r = cli('hunt', 'abba', '--variant', 'buggy', '--lockdep', 'off', '--json', '--seed', '3');
    const j = JSON.parse(r.out);
    expect(j.runs[0].findings.map((f: { kind: string }) => f.kind)).to.deep.equal(['deadlock']);
    expect(j.runs[0].findings[0].replay).to.match(/ --lockdep off$/);
    expect(j.runs[0].verdict).to.equal('unexpected'); // the variant expects lockdep too
    expect(r.code).to.equal(1);
  });

  it('exit code 1 when a run is not as expected (a budget too small to reach the bug)', () => {
    const r = cli('hunt', 'abba', '--variant', 'buggy', '--strategy', 'dfs', '--preemption-bound', '0', '--json');
    const j = JSON.parse(r.out);
    expect(j.runs[0].verdict).to.equal('unexpected');
    expect(r.code).to.equal(1);
  });

  it('bad input gives one line on stderr and exit code 2', () => {
    const cases: [string[], RegExp][] = [
      [['hunt', 'nope'], /unknown scenario "nope"/],
      [['hunt', 'abba', '--seed', '-1'], /bad value for --seed/],
      [['hunt', 'abba', '--seed=1.5'], /bad seed "1.5"/],
      [['hunt', 'abba', '--iterations', '0'], /bad iteration count/],
      [['hunt', 'abba', '--frobnicate'], /unknown option '--frobnicate'/],
      [['hunt', 'abba', '--param', 'cpus=-2'], /must not be negative/],
      [['hunt', 'abba', '--param', 'nope=1'], /unknown parameter "nope"/],
      [['hunt', 'abba', '--variant', 'odd'], /no variant "odd"/],
      [['hunt', 'abba', '--strategy', 'bfs'], /unknown strategy "bfs"/],
      [['hunt', 'abba', '--mode', 'fast'], /bad mode "fast"/],
      [['hunt', 'abba', '--horizon', 'soon'], /bad horizon "soon"/],
      [['hunt', 'abba', '--lockdep', 'maybe'], /bad --lockdep "maybe": expected on or off/],
      [['replay', 'abba', '2:00000000:000000:random:0:0::zzzzz'], /checksum mismatch/],
      [['replay', 'abba', '1:00000000:random:0:0::zzzzz'], /recorded by an older format/],
      [['replay', 'abba'], /needs a scenario and a schedule/],
      [['frob'], /unknown command "frob"/],
      [['hunt', 'abba', '--perturb', 'warp'], /has no perturbation "warp"/],
      [['hunt', 'all', '--perturb', 'warp'], /--perturb needs a single scenario/],
      [['hunt', 'abba', '--html', 'x.html'], /--html belongs to irqsim report/],
      [['report', '/nonexistent/r.json', '--html', 'x.html'], /cannot read \/nonexistent\/r.json: ENOENT/],
      [['report', 'package.json', '--html', 'x.html'], /package.json is not the output of irqsim hunt/],
      [['report', 'README.md', '--html', 'x.html'], /README.md is not JSON/],
      [['report', 'package.json'], /report needs --html/],
    ];
    for (const [argv, msg] of cases) {
      const r = cli(...argv);
      expect(r.code, argv.join(' ')).to.equal(2);
      expect(r.out, argv.join(' ')).to.equal('');
      expect(r.err.trim().split('\n'), argv.join(' ')).to.have.length(1);
      expect(r.err, argv.join(' ')).to.match(msg);
    }
  });

  it('IRQSIM_SEED and IRQSIM_ITERATIONS set a hunt\'s seed and budget; the flags win; a bad value is one line, exit 2', () => {
    const saved = { s: process.env.IRQSIM_SEED, i: process.env.IRQSIM_ITERATIONS };
    try {
      process.env.IRQSIM_SEED = '5';
      process.env.IRQSIM_ITERATIONS = '3';
      const j = JSON.parse(cli('hunt', 'abba', '--variant', 'fixed', '--json').out);
      expect(j.options.seed).to.equal(5);
      expect(j.runs[0].schedulesRun).to.equal(3);
      const k = JSON.parse(cli('hunt', 'abba', '--variant', 'fixed', '--json', '--iterations', '4').out);
      expect(k.runs[0].schedulesRun).to.equal(4);
      process.env.IRQSIM_ITERATIONS = 'many';
      const bad = cli('hunt', 'abba');
      expect(bad.code).to.equal(2);
      expect(bad.err.trim().split('\n')).to.have.length(1);
      expect(bad.err).to.match(/IRQSIM_ITERATIONS: bad iteration count/);
    } finally {
      for (const [k, v] of [['IRQSIM_SEED', saved.s], ['IRQSIM_ITERATIONS', saved.i]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('report --html writes a self-contained page of a hunt\'s JSON, with each finding\'s headline and replay command', () => {
    const dir = mkdtempSync(join(tmpdir(), 'irqsim-report-'));
    try {
      const hunted = cli('hunt', 'abba', '--json', '--seed', '3');
      const results = join(dir, 'abba.json');
      writeFileSync(results, hunted.out);
      const out = join(dir, 'abba.html');
      const r = cli('report', results, '--html', out);
      expect(r.code, r.err).to.equal(0);
      const html = readFileSync(out, 'utf8');
      const j = JSON.parse(hunted.out);
      expect(html).to.match(/^<!DOCTYPE html>/);
      expect(html).to.not.match(/https?:\/\//);
      for (const f of j.runs.flatMap((x: { findings: { headline: string; replay: string }[] }) => x.findings)) {
        expect(html).to.include(f.replay.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
      }
      expect(html.match(/<svg/g)?.length ?? 0).to.be.at.least(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('metricsTable puts each variant\'s metrics side by side', () => {
    const run = (variant: string, metrics: Record<string, number>) => ({ variant, expect: {}, verdict: 'as-expected' as const, schedulesRun: 1, findings: [], metrics, coverage: {} });
    const t = metricsTable([run('buggy', { 'swiotlb.hypercalls': 2000, rate: 0.125 }), run('fixed', { 'swiotlb.hypercalls': 1 })], ['swiotlb.hypercalls', 'rate']);
    expect(t.split('\n')).to.deep.equal(['metric              buggy  fixed', 'swiotlb.hypercalls   2000      1', 'rate                0.125      -']);
  });

  it('a scenario file runs itself as `irqsim hunt <file>` (through npx ts-node)', function () {
    this.timeout(120_000);
    const r = spawnSync('npx', ['ts-node', 'scenarios/sleep-in-atomic.ts', '--json', '--variant', 'buggy'], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const j = JSON.parse(r.stdout);
    expect(j.runs[0].findings[0].kind).to.equal('might_sleep');
  });
});
