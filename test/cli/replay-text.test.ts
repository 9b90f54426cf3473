/**
 * irqsim replay's output (issue 21 item 5): the report first, the event log only with
 * --events all|locks|tail=N, locks named in the log as the report names them, and the last line
 * `reproduced <fingerprint>` or what differs. Also the JSON `version` of every document, list's
 * perturbations, runs[].options and the result line the hunt prints as each variant finishes.
 */
import { expect } from 'chai';
import { main, type Io } from '../../lib/cli/main';
import type { Progress } from '../../lib/cli/progress';
import { replayOutcome, selectEvents } from '../../lib/report/text';
import { decodeSchedule, encodeSchedule } from '../../scheduler';

function cli(argv: string[], progress?: Progress): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`), ...(progress ? { progress } : {}) };
  const code = main(argv, io);
  if (typeof code !== 'number') throw new Error('synchronous commands only');
  return { code, out, err };
}

interface Finding {
  kind: string;
  fingerprint: string;
  text: string;
  schedule: string;
  shrunk?: string;
}

describe('cli: replay text, events, reproduced', function () {
  this.timeout(120_000);
  let deadlock: Finding;
  before(() => {
    const j = JSON.parse(cli(['hunt', 'abba', '--variant', 'buggy', '--seed', '3', '--json']).out);
    deadlock = j.runs[0].findings.find((f: Finding) => f.kind === 'deadlock');
  });
  const replay = (...extra: string[]) => cli(['replay', 'abba', deadlock.shrunk ?? deadlock.schedule, '--variant', 'buggy', ...extra]);

  it('prints the report first, no event log, and ends with reproduced <fingerprint>', () => {
    const r = replay();
    expect(r.code).to.equal(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).to.match(/^== replay abba\/buggy /);
    expect(lines[lines.length - 1]).to.equal(`reproduced ${deadlock.fingerprint}`);
    expect(r.out).to.include(deadlock.text);
    // no engine event line ("<step> @<time> ...") without --events
    expect(lines.filter((l) => /^\s*\d+ @\d+ /.test(l))).to.deep.equal([]);
  });

  it('--events all|locks|tail=N: the log after the report, before the last line', () => {
    const all = replay('--events', 'all').out.trimEnd().split('\n');
    const events = all.filter((l) => /^\s+\d+ @\d+ /.test(l));
    expect(events.length).to.be.greaterThan(5);
    const head = all.findIndex((l) => l.startsWith('-- events'));
    expect(head).to.be.greaterThan(all.findIndex((l) => l.includes('DEADLOCK') || l.includes('deadlock')));
    expect(all[all.length - 1]).to.equal(`reproduced ${deadlock.fingerprint}`);
    const locks = replay('--events', 'locks').out.split('\n').filter((l) => /^\s+\d+ @\d+ /.test(l));
    expect(locks.length).to.be.lessThan(events.length);
    for (const l of locks) expect(l).to.match(/ (acquire|release) |finding /);
    const tail = replay('--events', 'tail=3').out.split('\n').filter((l) => /^\s+\d+ @\d+ /.test(l));
    expect(tail).to.deep.equal(events.slice(-3));
    expect(cli(['replay', 'abba', deadlock.schedule, '--events', 'tail=0']).err).to.match(/bad --events "tail=0"/);
  });

  it('--json: version, reproduced, and the events only when asked', () => {
    const j = JSON.parse(replay('--json').out);
    expect(j.version).to.equal(2);
    expect(j.reproduced).to.equal(deadlock.fingerprint);
    expect(j).to.not.have.property('events');
    expect(JSON.parse(replay('--json', '--events', 'tail=2').out).events).to.have.length(2);
  });

  it('says what differs when the replay does not reproduce (another variant, continued)', () => {
    const r = cli(['replay', 'abba', deadlock.shrunk ?? deadlock.schedule, '--variant', 'fixed', '--continue']);
    const last = r.out.trimEnd().split('\n').pop();
    expect(last).to.match(/^not reproduced: /);
    expect(r.out).to.not.match(/^reproduced /m);
  });

  it("a schedule of another variant or scenario names the one it belongs to (else the usual advice)", () => {
    const sched = deadlock.shrunk ?? deadlock.schedule;
    for (const argv of [['replay', 'abba', sched, '--variant', 'fixed'], ['replay', 'sleep-in-atomic', sched]]) {
      const r = cli(argv);
      expect(r.code).to.equal(2);
      expect(r.err.trim()).to.match(/^irqsim: this schedule belongs to abba\/buggy with its default parameters \(\S*abba\.ts\), not \S+: replay it with npx irqsim replay abba \S+ --variant buggy$/);
      expect(r.err).to.not.include('--continue');
    }
    // a hash no program of the catalog has: no owner to name
    const orphan = encodeSchedule({ ...decodeSchedule(sched), hash: 'deadbeef' });
    const r = cli(['replay', 'abba', orphan, '--variant', 'buggy']);
    expect(r.code).to.equal(2);
    expect(r.err).to.match(/recorded for program hash deadbeef/).and.not.match(/belongs to/);
  });

  it('one lock name everywhere: the log names a lock by the class the report uses', function () {
    // S1's swiotlb areas: one lock class (&area->lock) with an instance per area
    const j = JSON.parse(cli(['hunt', 'S1', '--variant', 'buggy', '--iterations', '1', '--no-shrink', '--json']).out);
    const f: Finding = j.runs[0].findings[0];
    const r = cli(['replay', 'S1', f.schedule, '--variant', 'buggy', '--events', 'locks']);
    const lockLines = r.out.split('\n').filter((l) => / (acquire|release) /.test(l) && /^\s+\d+ @/.test(l));
    expect(lockLines.length).to.be.greaterThan(0);
    expect(lockLines.some((l) => / (acquire|release) &area->lock \(io_tlb_default_mem:area\d\)$/.test(l))).to.equal(true);
    // the raw engine instance name never stands alone
    expect(lockLines.filter((l) => / (acquire|release) io_tlb_default_mem:area/.test(l))).to.deep.equal([]);
  });

  it('selectEvents names by class, adds the instance only where a class has several (and says no without the names)', () => {
    const ev = ['1 @0 t1 acquire ata1:ap->lock', '2 @5 t1 release ata1:ap->lock', '3 @5 t2 acquire rq0', '4 @6 t2 acquire a0', '5 @7 t3 acquire a1', '6 @7 finding deadlock: x'];
    const names = new Map([
      ['ata1:ap->lock', '&ap->lock'],
      ['a0', '&area->lock'],
      ['a1', '&area->lock'],
    ]);
    expect(selectEvents(ev, { kind: 'all' }, names)).to.deep.equal([
      '1 @0 t1 acquire &ap->lock',
      '2 @5 t1 release &ap->lock',
      '3 @5 t2 acquire rq0',
      '4 @6 t2 acquire &area->lock (a0)',
      '5 @7 t3 acquire &area->lock (a1)',
      '6 @7 finding deadlock: x',
    ]);
    expect(selectEvents(ev, { kind: 'locks' }, names)).to.have.length(5);
    expect(selectEvents(ev, { kind: 'tail', n: 2 }, names)).to.deep.equal(['5 @7 t3 acquire &area->lock (a1)', '6 @7 finding deadlock: x']);
    expect(selectEvents(ev, { kind: 'all' }, new Map())[0]).to.equal(ev[0]);
  });

  it('replayOutcome: reproduced only on the recorded path with a finding', () => {
    const f = [{ fingerprint: 'lockdep:x', fatal: false }, { fingerprint: 'deadlock:y', fatal: true }];
    expect(replayOutcome(10, { findings: f, divergedAt: -1, metrics: { steps: 10 }, endReason: 'fatal' })).to.deep.equal({ reproduced: 'deadlock:y' });
    expect(replayOutcome(10, { findings: f.slice(0, 1), divergedAt: -1, metrics: { steps: 10 }, endReason: 'done' })).to.deep.equal({ reproduced: 'lockdep:x' });
    expect(replayOutcome(10, { findings: [], divergedAt: -1, metrics: { steps: 10 } }).reproduced).to.equal(null);
    expect(replayOutcome(10, { findings: f, divergedAt: 4, metrics: { steps: 12 } }).differs).to.match(/left the recorded schedule at step 4.*deadlock:y/);
    expect(replayOutcome(10, { findings: f, divergedAt: -1, metrics: { steps: 12 } }).differs).to.match(/ran 12 steps where the recording ran 10/);
  });
});

describe('cli: JSON version, list perturbations, runs[].options, result lines', function () {
  this.timeout(120_000);

  it('every JSON document has version 2; list names each perturbation with a description', () => {
    const list = JSON.parse(cli(['list', '--json']).out);
    expect(list.version).to.equal(2);
    const s3 = list.scenarios.find((s: { id: string }) => s.id === 'S3');
    expect(s3.perturbations.length).to.be.greaterThan(0);
    for (const p of s3.perturbations) expect(p.name).to.be.a('string') && expect(p.description).to.be.a('string').and.not.equal('');
    expect(s3.perturbations.find((p: { name: string }) => p.name === 'cpus-8').description).to.match(/cpus=8.*budget x2/);
    const hunt = JSON.parse(cli(['hunt', 'abba', '--iterations', '5', '--json']).out);
    expect(hunt.version).to.equal(2);
    const f = hunt.runs.find((r: { variant: string }) => r.variant === 'buggy').findings[0];
    const shrink = JSON.parse(cli(['shrink', 'abba', f.schedule, '--variant', 'buggy', '--json']).out);
    expect(shrink.version).to.equal(2);
    const run = JSON.parse(cli(['run', 'abba', '--json']).out);
    expect(run.version).to.equal(2);
  });

  it('options records only what was asked; runs[].options what each variant ran', () => {
    const j = JSON.parse(cli(['hunt', 'abba', '--iterations', '7', '--json']).out);
    expect(j.options).to.not.have.property('strategy');
    expect(j.options.iterations).to.equal(7);
    for (const r of j.runs) {
      expect(r.options.strategy).to.be.a('string');
      expect(r.options.seed).to.be.a('number');
      expect(r.options.iterations).to.equal(7);
    }
    const plain = JSON.parse(cli(['hunt', 'abba', '--json']).out);
    expect(plain.options).to.not.have.property('iterations');
    expect(plain.runs[0].options.iterations).to.be.a('number');
    const pct = JSON.parse(cli(['hunt', 'abba', '--variant', 'buggy', '--strategy', 'pct', '--depth', '2', '--iterations', '3', '--json']).out);
    expect(pct.runs[0].options).to.include({ strategy: 'pct2', depth: 2, iterations: 3 });
  });

  it("hunt prints each variant's result line as it finishes, before the next starts", () => {
    const calls: string[] = [];
    const progress: Progress = { start: (l) => (calls.push(`start ${l}`), () => {}), stop: () => calls.push('stop'), result: (line) => calls.push(`result ${line}`) };
    const r = cli(['hunt', 'abba', '--iterations', '5'], progress);
    expect(r.code).to.be.oneOf([0, 1]);
    const starts = calls.filter((c) => c.startsWith('start')).map((c) => calls.indexOf(c));
    const results = calls.filter((c) => c.startsWith('result'));
    expect(results).to.have.length(2);
    expect(results[0]).to.match(/^result abba\/buggy: (as-expected|unexpected) after \d+ schedule\(s\): /);
    expect(calls.indexOf(results[0])).to.be.lessThan(starts[1]);
    expect(results[1]).to.match(/^result abba\/fixed: /);
  });
});
