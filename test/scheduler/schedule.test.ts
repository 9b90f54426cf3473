import { expect } from 'chai';
import {
  Engine,
  InputError,
  eventHash,
  fnv1a,
  makeStrategy,
  programHash,
  type Thread,
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
    events: '0q5x3k' as string | null,
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
    for (const junk of ['', 'hello', '1:2:3', '2:0badc0de:0q5x3k:pct3:42:118::xxxxx', 42, null]) {
      expect(() => decodeSchedule(junk)).to.throw(ScheduleError, /bad schedule/);
    }
  });

  it('carries no event hash for a run that did not end, and refuses a malformed one', () => {
    const none = { ...sample, events: null };
    const s = encodeSchedule(none);
    expect(s.split(':')[2]).to.equal('');
    expect(decodeSchedule(s)).to.deep.equal(none);
    expect(() => encodeSchedule({ ...sample, events: 'XYZ' })).to.throw(ScheduleError, /bad event hash/);
  });

  it('refuses a version-2 string from before the event hash with advice to hunt again', () => {
    // the 7-field layout this round's development builds wrote, with its own valid checksum
    const body = '2:0badc0de:pct3:42:118:4s1';
    const old = `${body}:${(fnv1a(body) % 60466176).toString(36).padStart(5, '0')}`;
    expect(() => decodeSchedule(old)).to.throw(ScheduleError, /did not carry an event hash yet\. Hunt again/);
  });

  it('the event hash is the run\'s: a hunt\'s schedule carries eventHash of its run', () => {
    const p = lostUpdate(2, 2);
    const h = hunt(p, { seed: 4, iterations: 100 });
    const s = decodeSchedule(h.findings[0].schedule);
    const r = replay(p, h.findings[0].schedule);
    expect(s.events).to.equal(eventHash(r.hash));
    expect(r.reproduced).to.equal(true);
    expect(decodeSchedule(r.ran).events).to.equal(s.events);
  });

  it('a strict replay that takes another path with the same program hash and steps is refused', () => {
    // Code the program hash cannot see: setup calls a helper whose cost lives outside it.
    // Changing that cost keeps the hash and the step count but moves every clock.
    const cost = { ns: 10 };
    const body = function* (t: Thread, o: number) {
      yield t.work(cost.ns);
      yield t.write(o);
    };
    const p: Program = {
      name: 'hidden-cost',
      setup(sim) {
        const o = sim.object('o');
        for (let i = 0; i < 2; i++) sim.spawn(`w${i}`, (t) => body(t, o));
      },
    };
    const r = new Engine().run(p, makeStrategy({ strategy: 'random' }), 3, 20);
    const s = encodeSchedule({ hash: programHash(p, {}), events: eventHash(r.hash), strategy: 'random', seed: 3, steps: r.metrics.steps, devs: r.deviations });
    expect(replay(p, s).reproduced).to.equal(true);
    cost.ns = 2000;
    expect(programHash(p, {})).to.equal(decodeSchedule(s).hash);
    expect(() => replay(p, s)).to.throw(ScheduleError, /took another path \(event hash [0-9a-z]{6}, recorded [0-9a-z]{6}\)/);
    // continue mode runs it anyway and says it is not the recorded run, without an error
    const c = replay(p, s, { mode: 'continue' });
    expect(c.reproduced).to.equal(false);
    expect(c.metrics.steps).to.equal(r.metrics.steps);
    // a schedule without an event hash (a stuck run's) is not checked
    const unchecked = encodeSchedule({ ...decodeSchedule(s), events: null });
    expect(replay(p, unchecked).reproduced).to.equal(true);
  });

  it('a program\'s code identity, when given, replaces the text of setup and finish in its hash', () => {
    const a: Program = { ...lostUpdate(2, 1), code: 'file-text-1' };
    const reprinted: Program = { ...a, setup: (sim) => lostUpdate(2, 1).setup(sim) };
    expect(programHash(reprinted)).to.equal(programHash(a));
    expect(programHash({ ...a, code: 'file-text-2' })).to.not.equal(programHash(a));
    // without one, the setup text still counts
    expect(programHash({ ...reprinted, code: undefined })).to.not.equal(programHash({ ...lostUpdate(2, 1) }));
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
