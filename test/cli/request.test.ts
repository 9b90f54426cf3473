/**
 * The CLI -> scenario layer converter (huntRequestOf) and the request a results file stores:
 * what merge and --resume read back must be what the command line asked, through JSON.
 */
import { expect } from 'chai';
import { huntRequestOf, parseCli } from '../../lib/cli/options';
import { requestFromJson, type HuntRequest } from '../../lib/report/json';

const roundTrip = (r: HuntRequest): HuntRequest => requestFromJson(JSON.parse(JSON.stringify(r)) as HuntRequest);

describe('hunt request: the command line through a results file', () => {
  it('comes back as asked, unbounded window included (JSON writes Infinity as null)', () => {
    const r = huntRequestOf(parseCli(['hunt', 'abba', '--mode', 'interleave', '--horizon', '2ms', '--seed', '7', '--all', '--confirm', '--lockdep', 'off', '--no-shrink']));
    expect(r.hunt?.window).to.equal(Infinity);
    const back = roundTrip(r);
    expect(back).to.deep.equal({ ...r, machine: { lockdep: false } });
    expect(back.hunt).to.deep.equal({ window: Infinity, horizon: 2_000_000, seed: 7 });
    expect(back.shrink).to.equal(false);
  });

  it('shrinking by default stores nothing, so the variant\'s own choice holds on merge', () => {
    const r = huntRequestOf(parseCli(['hunt', 'abba']));
    expect('shrink' in r).to.equal(false);
    expect(roundTrip(r).shrink).to.equal(undefined);
    // a file of an earlier version stored shrink: true for the default: read as the default too
    expect(requestFromJson({ hunt: {}, shrink: true }).shrink).to.equal(undefined);
  });

  it('a changed option changes the request (the round trip is not the identity by accident)', () => {
    const a = roundTrip(huntRequestOf(parseCli(['hunt', 'abba', '--seed', '1'])));
    const b = roundTrip(huntRequestOf(parseCli(['hunt', 'abba', '--seed', '2'])));
    expect(a).to.not.deep.equal(b);
  });
});
