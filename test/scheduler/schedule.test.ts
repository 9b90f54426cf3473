import { expect } from 'chai';
import {
  InputError,
  ScheduleError,
  decodeSchedule,
  encodeSchedule,
  hunt,
  replay,
  checkSeed,
  type Program,
} from '../../scheduler';
import { lostUpdate } from '../../scheduler/examples/toys';

describe('schedule strings', () => {
  const sample = {
    hash: '0badc0de',
    strategy: 'pct3',
    seed: 42,
    steps: 118,
    devs: [
      { step: 4, sub: 0, kind: 0, id: 1 },
      { step: 9, sub: 1, kind: 1, id: 0 },
      { step: 9, sub: 2, kind: 2, id: 12 },
      { step: 40, sub: 0, kind: 4, id: 1 },
    ],
  };

  it('round-trips and stays short and shell-safe', () => {
    const s = encodeSchedule(sample);
    expect(decodeSchedule(s)).to.deep.equal(sample);
    expect(s).to.match(/^[0-9a-z:,.-]+$/);
    expect(s.length).to.be.lessThan(60);
  });

  it('refuses a corrupt string with a clear error', () => {
    const s = encodeSchedule(sample);
    const corrupt = s.replace('4s1', '4s2');
    expect(() => decodeSchedule(corrupt)).to.throw(ScheduleError, /checksum mismatch/);
  });

  it('refuses truncated strings', () => {
    const s = encodeSchedule(sample);
    for (let n = 1; n < s.length; n++) {
      expect(() => decodeSchedule(s.slice(0, n)), s.slice(0, n)).to.throw(ScheduleError);
    }
  });

  it('refuses junk', () => {
    for (const junk of ['', 'hello', '1:2:3', '2:0badc0de:pct3:42:118::xxxxx', 42, null]) {
      expect(() => decodeSchedule(junk)).to.throw(ScheduleError, /bad schedule/);
    }
  });

  it('a replay against another program says so clearly', () => {
    const h = hunt(lostUpdate(2, 1), { seed: 1, iterations: 100 });
    const s = h.findings[0].schedule;
    expect(() => replay(lostUpdate(3, 1), s)).to.throw(ScheduleError, /recorded for program hash .* changed/);
  });

  it('continue mode replays the valid prefix of a changed program and goes on with seeded choices', () => {
    const h = hunt(lostUpdate(2, 2), { seed: 4, iterations: 100 });
    const s = h.findings[0].schedule;
    const changed: Program = { ...lostUpdate(2, 2), name: 'toy-lost-update-v2' };
    const a = replay(changed, s, { mode: 'continue' });
    const b = replay(changed, s, { mode: 'continue' });
    expect(a.hash).to.equal(b.hash); // continuing is itself deterministic
    expect(a.events!.length).to.be.greaterThan(0);
    // The same program under continue mode follows the schedule to the end
    const same = replay(lostUpdate(2, 2), s, { mode: 'continue' });
    expect(same.divergedAt).to.equal(-1);
    expect(same.findings.map((f) => f.fingerprint)).to.deep.equal([h.findings[0].fingerprint]);
  });

  it('a strict replay whose deviation no longer fits reports where', () => {
    const p = lostUpdate(2, 1);
    const h = hunt(p, { seed: 1, iterations: 100 });
    const s = decodeSchedule(h.findings[0].schedule);
    const bogus = encodeSchedule({ ...s, devs: [...s.devs, { step: s.steps + 5, sub: 0, kind: 0, id: 1 }] });
    expect(() => replay(p, bogus)).to.throw(ScheduleError, /beyond the end of the run/);
    const wrongId = encodeSchedule({ ...s, devs: [{ ...s.devs[0], id: 7 }] });
    expect(() => replay(p, wrongId)).to.throw(ScheduleError, /picks 7, which is not among the sched candidates/);
  });
});

describe('bad inputs', () => {
  it('negative, fractional or non-numeric seeds', () => {
    for (const bad of [-1, 1.5, NaN, '12x', '-3', Infinity]) {
      expect(() => checkSeed(bad), String(bad)).to.throw(InputError, /bad seed .*non-negative integer/);
      expect(() => hunt(lostUpdate(), { seed: bad as number, iterations: 1 })).to.throw(InputError, /bad seed/);
    }
    expect(checkSeed('17')).to.equal(17);
  });

  it('zero or negative iterations', () => {
    for (const bad of [0, -5, 2.5]) expect(() => hunt(lostUpdate(), { iterations: bad })).to.throw(InputError, /bad iteration count/);
  });

  it('unknown strategy, bad depth, bad bounds', () => {
    expect(() => hunt(lostUpdate(), { strategy: 'bfs' })).to.throw(InputError, /unknown strategy "bfs"/);
    expect(() => hunt(lostUpdate(), { strategy: 'pct', depth: 0 })).to.throw(InputError, /bad depth/);
    expect(() => hunt(lostUpdate(), { strategy: 'dfs', preemptionBound: -1 })).to.throw(InputError, /bad preemption bound/);
    expect(() => hunt(lostUpdate(), { stepBudget: 0 })).to.throw(InputError, /bad step budget/);
  });
});
