/**
 * A chai plugin over hunt reports (./hunt.ts):
 *   chai.use(irqsimChai);
 *   expect(report).to.report('deadlock');            // some schedule reported a deadlock
 *   expect(report).to.report('lockdep', 'inconsistent');
 *   expect(report).not.to.report('might_sleep');     // none did
 *   expect(report).to.be.clean;                      // no finding at all
 *   expect(report).to.be.asExpected;                 // the variant's declared expectation held
 * A failing assertion prints the findings' kernel-style text and replay commands, and the
 * environment that reruns the hunt.
 */
import type { FindingJson } from '../report/json';
import type { HuntReport } from './hunt';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Chai {
    interface Assertion {
      /** The hunt reported a finding of this kind (and subkind). */
      report(kind: string, subkind?: string): Assertion;
      /** The hunt reported no finding. */
      clean: Assertion;
      /** The variant's declared expectation held. */
      asExpected: Assertion;
    }
  }
}

const MAX_TEXT = 4000;

function isReport(x: unknown): x is HuntReport {
  return typeof x === 'object' && x !== null && Array.isArray((x as HuntReport).findings) && typeof (x as HuntReport).variant === 'string';
}

function describe(f: FindingJson): string {
  const text = f.text.length > MAX_TEXT ? `${f.text.slice(0, MAX_TEXT)}\n[... ${f.text.length - MAX_TEXT} more characters]` : f.text;
  return `--- ${f.kind}${f.subkind ? `/${f.subkind}` : ''} at schedule ${f.iteration} (x${f.count})\n${text}${f.confirmed ? `\nlockdep prediction ${f.confirmed}` : ''}${f.replay ? `\nreplay: ${f.replay}` : ''}`;
}

function where(r: HuntReport): string {
  return `${r.scenario}/${r.variant} (${r.schedulesRun} of ${r.iterations} schedules, seed ${r.seed}; rerun with ${r.rerun})`;
}

function summary(r: HuntReport): string {
  return r.findings.length === 0 ? 'no findings' : r.findings.map((f) => `${f.kind}${f.subkind ? `/${f.subkind}` : ''}`).join(', ');
}

export function irqsimChai(chai: Chai.ChaiStatic, utils: Chai.ChaiUtils): void {
  const { Assertion } = chai;
  const subject = (a: Chai.AssertionStatic | object): HuntReport => {
    const obj = utils.flag(a, 'object') as unknown;
    if (!isReport(obj)) throw new TypeError('irqsim assertions need the report of hunt() from irqsim/lib/testing');
    return obj;
  };

  Assertion.addMethod('report', function (this: Chai.AssertionStatic, kind: string, subkind?: string) {
    const r = subject(this);
    const hits = r.findings.filter((f) => f.kind === kind && (subkind === undefined || f.subkind === subkind));
    const what = subkind === undefined ? kind : `${kind}/${subkind}`;
    const negated = utils.flag(this, 'negate') === true;
    // chai builds the message lazily only for the failing side: ours carries the evidence.
    this.assert(
      hits.length > 0,
      `expected ${where(r)} to report ${what}; it reported ${summary(r)}${r.findings.length ? `\n${r.findings.map(describe).join('\n')}` : ''}`,
      `expected ${where(r)} not to report ${what}, but it did:\n${(negated ? hits : []).map(describe).join('\n')}`,
      what,
      summary(r),
    );
  });

  Assertion.addProperty('clean', function (this: Chai.AssertionStatic) {
    const r = subject(this);
    this.assert(r.findings.length === 0, `expected ${where(r)} to be clean, but it reported ${summary(r)}:\n${r.findings.map(describe).join('\n')}`, `expected ${where(r)} to report something; it was clean`);
  });

  Assertion.addProperty('asExpected', function (this: Chai.AssertionStatic) {
    const r = subject(this);
    this.assert(
      r.verdict === 'as-expected',
      `expected ${where(r)} to meet ${JSON.stringify(r.expect)}: ${r.why ?? r.verdict}${r.findings.length ? `\n${r.findings.map(describe).join('\n')}` : ''}`,
      `expected ${where(r)} not to meet ${JSON.stringify(r.expect)}`,
    );
  });
}
