/** The hunt progress bar: only on a terminal, never with --json or in CI; it draws what a hunt reports. */
import { expect } from 'chai';
import { PassThrough } from 'stream';
import { progressBar, wantProgressBar } from '../../lib/cli/progress';

function fakeTty(isTTY: boolean): NodeJS.WriteStream & { text: () => string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & { text: () => string };
  let buf = '';
  (s as unknown as PassThrough).on('data', (d: Buffer) => (buf += d.toString()));
  Object.assign(s, { isTTY, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, text: () => buf });
  return s;
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
    const bar = progressBar(true, tty);
    const on = bar.start('S3/buggy');
    on({ done: 1, total: 40, findings: 0 });
    on({ done: 20, total: 40, findings: 2 });
    bar.stop();
    const out = tty.text();
    expect(out).to.match(/S3\/buggy \[/);
    expect(out).to.match(/\d+\/40 schedules/);
    expect(out).to.match(/findings \d/);
    expect(out).to.match(/ETA/);
  });

  it('disabled, it writes nothing', () => {
    const tty = fakeTty(true);
    const bar = progressBar(false, tty);
    bar.start('x')({ done: 1, total: 2, findings: 0 });
    bar.stop();
    expect(tty.text()).to.equal('');
  });
});
