/**
 * The hunt progress bar: only on a terminal, never with --json or in CI; it draws what a hunt
 * reports in one line that fits the terminal (ETA always kept), with one rate the ETA follows;
 * "preparing" at once; result lines kept; Ctrl-C restores the cursor and says "interrupted".
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import { join } from 'path';
import { PassThrough } from 'stream';
import { liveLines } from '../../demo/catalog';
import { formatEta, progressBar, progressLine, resultLine, wantProgressBar } from '../../lib/cli/progress';

function fakeTty(isTTY: boolean, columns = 120): NodeJS.WriteStream & { text: () => string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & { text: () => string };
  let buf = '';
  (s as unknown as PassThrough).on('data', (d: Buffer) => (buf += d.toString()));
  Object.assign(s, { isTTY, columns, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, text: () => buf });
  return s;
}

/** The text a terminal shows last on the bar's line: after the last carriage return, escapes removed. */
function lastLine(out: string): string {
  // eslint-disable-next-line no-control-regex
  const plain = out.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
  const lines = plain.split(/\r|\n/).filter((l) => l.trim().length > 0);
  return lines[lines.length - 1] ?? '';
}

describe('progress bar', () => {
  it('is wanted only on a terminal, without --json, outside CI', () => {
    expect(wantProgressBar(false, fakeTty(true), {})).to.equal(true);
    expect(wantProgressBar(true, fakeTty(true), {})).to.equal(false);
    expect(wantProgressBar(false, fakeTty(false), {})).to.equal(false);
    expect(wantProgressBar(false, fakeTty(true), { CI: 'true' })).to.equal(false);
    expect(wantProgressBar(false, fakeTty(true), { TERM: 'dumb' })).to.equal(false);
  });

  it('draws schedules done, rate, findings and ETA', () => {
    const tty = fakeTty(true);
    let t = 0;
    const bar = progressBar(true, tty, { now: () => t });
    const on = bar.start('S3/buggy');
    on({ done: 1, total: 40, findings: 0 });
    t = 1900;
    on({ done: 20, total: 40, findings: 2 });
    bar.stop();
    const out = tty.text();
    expect(out).to.match(/S3\/buggy \[/);
    expect(out).to.match(/\d+\/40 schedules/);
    expect(out).to.match(/findings \d/);
    expect(out).to.match(/ETA/);
  });

  it('fits the terminal: fields drop, the ETA and done/total never do', () => {
    const long = 'S14-coco-sizing-with-a-long-file-name/variant-with-a-long-name';
    for (const columns of [30, 40, 60, 80, 100, 200]) {
      for (const label of ['abba/buggy', long]) {
        const line = progressLine({ label, done: 123456, total: 1000000, findings: 12, rate: 987.6 }, columns);
        expect(line.length, `${columns} columns: ${line}`).to.be.at.most(columns - 1);
        expect(line, `${columns} columns`).to.match(/ETA \S+$/);
        expect(line).to.include('123456/1000000');
      }
    }
    // at 80 columns the long label's full line would not fit: something had to drop
    const full = progressLine({ label: long, done: 123456, total: 1000000, findings: 12, rate: 987.6 }, 1000);
    expect(full.length).to.be.greaterThan(79);
    expect(progressLine({ label: long, done: 123456, total: 1000000, findings: 12, rate: 987.6 }, 80)).to.not.equal(full);
    // a wide terminal keeps everything
    expect(full).to.match(/\[.*\] 123456\/1000000 schedules \| 988\/s \| findings 12 \| ETA 14m48s$/);
  });

  it('one rate, from the first schedule on (preparation excluded), and the ETA is what it implies', () => {
    const tty = fakeTty(true, 200);
    let t = 0;
    const bar = progressBar(true, tty, { now: () => t });
    const on = bar.start('abba/buggy');
    t = 20_000; // 20 s of calibration before the first report
    on({ done: 0, total: 400, findings: 0 });
    t = 30_000;
    on({ done: 100, total: 400, findings: 1 });
    const line = progressLine({ label: 'abba/buggy', done: 100, total: 400, findings: 1, rate: 10 }, 200);
    expect(line).to.include('10/s').and.include('ETA 30s');
    bar.stop();
    expect(tty.text()).to.include('10/s').and.include('ETA 30s');
    expect(tty.text()).to.not.match(/ETA 1m/); // what a rate counting the preparation would give
    expect(formatEta(30)).to.equal('30s');
    expect(formatEta(185)).to.equal('3m05s');
    expect(formatEta(7620)).to.equal('2h07m');
  });

  it('prints a "preparing" line at once, before the hunt reports anything', () => {
    const tty = fakeTty(true);
    const bar = progressBar(true, tty);
    bar.start('S2/buggy');
    expect(lastLine(tty.text())).to.equal('S2/buggy preparing…');
    bar.stop();
  });

  it("keeps each variant's result line as it finishes, the bar cleared first", () => {
    const tty = fakeTty(true);
    let t = 0;
    const bar = progressBar(true, tty, { now: () => t });
    const on = bar.start('abba/buggy');
    on({ done: 3, total: 10, findings: 1 });
    t = 1000;
    on({ done: 9, total: 10, findings: 2 });
    const line = resultLine('abba', { variant: 'buggy', verdict: 'as-expected', schedulesRun: 9, findings: [{ kind: 'lockdep' }, { kind: 'deadlock' }, { kind: 'lockdep' }] });
    expect(line).to.equal('abba/buggy: as-expected after 9 schedule(s): lockdep, deadlock');
    bar.result(line);
    bar.start('abba/fixed');
    bar.result(resultLine('abba', { variant: 'fixed', verdict: 'as-expected', schedulesRun: 500, findings: [] }));
    const out = tty.text();
    expect(out).to.include(`${line}\n`);
    expect(out).to.include('abba/fixed: as-expected after 500 schedule(s): clean\n');
    expect(out.indexOf(line)).to.be.below(out.indexOf('abba/fixed'));
    expect(resultLine('S3', { variant: 'x', verdict: 'unexpected', schedulesRun: 1, findings: [], why: 'expected lockdep not seen in 1 schedules' })).to.match(/\(expected lockdep not seen in 1 schedules\)$/);
  });

  it('disabled, it writes nothing', () => {
    const tty = fakeTty(true);
    const bar = progressBar(false, tty);
    bar.start('x')({ done: 1, total: 2, findings: 0 });
    bar.result('line');
    bar.stop();
    expect(tty.text()).to.equal('');
  });

  it('on SIGINT (a child process): the cursor comes back, "interrupted" is printed, the process ends by the signal', async function () {
    this.timeout(60_000);
    const lib = join(__dirname, '../../lib/cli/progress');
    const child = `
      Object.assign(process.stderr, { isTTY: true, columns: 80 });
      const { progressBar } = require(${JSON.stringify(lib)});
      const bar = progressBar(true, process.stderr);
      const on = bar.start('abba/buggy');
      on({ done: 1, total: 100, findings: 0 });
      on({ done: 2, total: 100, findings: 0 });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);`;
    const p = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', child], { cwd: join(__dirname, '../..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      p.stdout.on('data', (d: Buffer) => (d.toString().includes('ready') ? resolve() : undefined));
      p.on('exit', () => reject(new Error(`child ended early: ${err}`)));
    });
    const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
    p.kill('SIGINT');
    const { code, signal } = await ended;
    expect(err, 'the bar hid the cursor').to.include('\x1b[?25l');
    const shown = err.lastIndexOf('\x1b[?25h');
    expect(shown, 'the cursor-show escape after the bar hid it').to.be.greaterThan(err.lastIndexOf('\x1b[?25l'));
    expect(err.slice(shown)).to.include('abba/buggy: interrupted\n');
    expect(signal === 'SIGINT' || code === 130, `ended by SIGINT (code ${code}, signal ${signal})`).to.equal(true);
  });

  it('the demo: each scenario\'s rows as it finishes, numbered of the total', () => {
    const run = (variant: string, kinds: string[]) => ({ variant, expect: {}, verdict: 'as-expected' as const, schedulesRun: 12, findings: kinds.map((kind) => ({ kind, iteration: 0, replay: 'irqsim replay abba x' })), metrics: {}, coverage: {} });
    const reply = { index: 0, id: 'abba', name: 'ABBA', keyMetrics: [], runs: [run('buggy', ['lockdep', 'deadlock']), run('fixed', [])], claims: [], key: null } as unknown as Parameters<typeof liveLines>[0];
    expect(liveLines(reply, 3, 21)).to.deep.equal(['[ 3/21] abba buggy: as-expected, 12 schedule(s), lockdep, deadlock', '[ 3/21] abba fixed: as-expected, 12 schedule(s), clean']);
    const broken = { ...reply, runs: [], error: 'SyntaxError at x.ts:3:1' } as Parameters<typeof liveLines>[0];
    expect(liveLines(broken, 21, 21)).to.deep.equal(['[21/21] abba -: error: SyntaxError at x.ts:3:1']);
  });
});
