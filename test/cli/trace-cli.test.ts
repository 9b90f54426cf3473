/** irqsim run|replay --trace <out.json>: a Chrome trace file of the run, and the same findings as without it. */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { main } from '../../lib/cli/main';

function cli(...argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(argv, { out: (s) => (out += s.endsWith('\n') ? s : `${s}\n`), err: (s) => (err += s.endsWith('\n') ? s : `${s}\n`) });
  if (typeof code !== 'number') throw new Error('expected a synchronous command');
  return { code, out, err };
}

describe('irqsim --trace', function () {
  this.timeout(60000);
  let dir = '';
  before(() => (dir = mkdtempSync(join(tmpdir(), 'irqsim-trace-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('run --trace writes a Chrome trace with per-CPU tracks and the finding', () => {
    const file = join(dir, 'run.json');
    const r = cli('run', 'irq-self-deadlock', '--variant', 'buggy', '--trace', file);
    expect(r.err).to.match(/wrote .*run\.json \(\d+ events/);
    const t = JSON.parse(readFileSync(file, 'utf8'));
    expect(t.traceEvents).to.be.an('array').that.is.not.empty;
    const names = t.traceEvents.filter((e: { ph: string; name: string }) => e.ph === 'M' && e.name === 'thread_name').map((e: { args: { name: string } }) => e.args.name);
    expect(names).to.include('CPU 0');
    const ts = t.traceEvents.filter((e: { ph: string }) => e.ph !== 'M').map((e: { ts: number }) => e.ts);
    expect(ts).to.deep.equal([...ts].sort((a, b) => a - b));
  });

  it('--trace into a folder that does not exist is one line of bad input (exit 2), not an internal error', () => {
    const file = join(dir, 'no-such-folder', 'out.json');
    const run = cli('run', 'irq-self-deadlock', '--variant', 'buggy', '--trace', file);
    expect(run.code, run.err).to.equal(2);
    expect(run.err).to.equal(`irqsim: cannot write ${file}: ENOENT\n`);
    const h = JSON.parse(cli('hunt', 'irq-self-deadlock', '--variant', 'buggy', '--iterations', '50', '--no-shrink', '--json').out);
    const r = cli('replay', 'irq-self-deadlock', h.runs[0].findings[0].schedule, '--variant', 'buggy', '--trace', file);
    expect(r.code, r.err).to.equal(2);
    expect(r.err).to.equal(`irqsim: cannot write ${file}: ENOENT\n`);
    expect(r.out).to.equal('');
  });

  it('replay --trace follows a hunt schedule in strict mode and reports the same findings', () => {
    const h = JSON.parse(cli('hunt', 'irq-self-deadlock', '--variant', 'buggy', '--iterations', '50', '--json').out);
    const f = h.runs[0].findings[0];
    const schedule = f.shrunk ?? f.schedule;
    const plain = JSON.parse(cli('replay', 'irq-self-deadlock', schedule, '--variant', 'buggy', '--json').out);
    const file = join(dir, 'replay.json');
    const traced = cli('replay', 'irq-self-deadlock', schedule, '--variant', 'buggy', '--json', '--trace', file);
    const j = JSON.parse(traced.out);
    expect(j.findings.map((x: { fingerprint: string }) => x.fingerprint)).to.deep.equal(plain.findings.map((x: { fingerprint: string }) => x.fingerprint));
    expect(j.trace).to.equal(file);
    const t = JSON.parse(readFileSync(file, 'utf8'));
    expect(t.traceEvents.some((e: { ph: string; s?: string; args?: { text?: string } }) => e.ph === 'i' && typeof e.args?.text === 'string')).to.equal(true);
  });
});
