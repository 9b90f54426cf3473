/**
 * Property tests of the schedule codec (scheduler/schedule.ts): any schedule survives an
 * encode/decode round trip, and any single-character change of an encoded string is refused
 * (the checksum, or the field checks before it). Seeded, so a run is the same on every machine.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { KIND_LETTERS } from '../../scheduler/choice';
import { ScheduleError } from '../../scheduler/errors';
import { decodeSchedule, encodeSchedule, eventHash, type Schedule } from '../../scheduler/schedule';

const SEED = 0x1e9;

/** Deviations in step order with distinct (step, kind, sub) keys, as a recorder makes them. */
const deviations = fc
  .array(
    fc.record({
      gap: fc.nat({ max: 400 }),
      sub: fc.oneof(fc.constant(0), fc.nat({ max: 3 })),
      kind: fc.nat({ max: KIND_LETTERS.length - 1 }),
      id: fc.nat({ max: 1000 }),
    }),
    { maxLength: 30 },
  )
  .map((raw) => {
    let step = 0;
    const seen = new Set<string>();
    const devs: Schedule['devs'] = [];
    for (const r of raw) {
      step += r.gap;
      const key = `${step}/${r.kind}/${r.sub}`;
      if (seen.has(key)) continue;
      seen.add(key);
      devs.push({ step, sub: r.sub, kind: r.kind, id: r.id });
    }
    return devs;
  });

const schedules: fc.Arbitrary<Schedule> = fc.record({
  hash: fc.stringMatching(/^[0-9a-f]{8}$/),
  // a run's event hash, or none (a run the watchdog stopped)
  events: fc.option(fc.nat({ max: 0xffffffff }).map(eventHash), { nil: null }),
  strategy: fc.stringMatching(/^[a-z0-9-]{1,12}$/),
  seed: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  steps: fc.nat({ max: 1_000_000 }),
  devs: deviations,
});

describe('property: schedule codec', () => {
  it('decode(encode(s)) is s', () => {
    fc.assert(
      fc.property(schedules, (s) => {
        expect(decodeSchedule(encodeSchedule(s))).to.deep.equal(s);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('a string changed in any one character is refused with a ScheduleError', () => {
    // Replacement characters: the codec's own alphabet (digits, kind letters, separators) and
    // a few that never occur, so both near misses and garbage are tried.
    const chars = fc.constantFrom(...'0123456789abcdefsiwjf:.,-xZ ');
    fc.assert(
      fc.property(schedules, fc.nat(), chars, (s, at, c) => {
        const str = encodeSchedule(s);
        const i = at % str.length;
        fc.pre(str[i] !== c);
        const bad = str.slice(0, i) + c + str.slice(i + 1);
        expect(() => decodeSchedule(bad)).to.throw(ScheduleError);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('any truncation of a string is refused', () => {
    fc.assert(
      fc.property(schedules, fc.nat(), (s, at) => {
        const str = encodeSchedule(s);
        const cut = str.slice(0, at % str.length);
        expect(() => decodeSchedule(cut)).to.throw(ScheduleError);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});
