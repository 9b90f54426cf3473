/**
 * Schedules as short printable strings:
 *
 *   2:<program hash>:<event hash>:<strategy>:<seed>:<steps>:<deviations>:<check>
 *
 * The program hash says which program (and path-shaping options) the run belongs to; the event
 * hash is a short digest of the run's own event sequence (RunResult.hash, which the engine
 * folds every step, thread start, timer and interrupt into, light runs included), so a strict
 * replay that takes another path for any reason (code the program hash cannot see, a
 * nondeterministic program) is refused instead of reported as reproduced. An empty event hash
 * means the run did not end (a run stopped by the watchdog) and is not checked.
 *
 * The deviations are the run's choices that differ from the default policy (no preemption,
 * no early interrupt, FIFO wake, no jitter, no fault), in the order they were made, each keyed
 * by (step, kind, ordinal of that kind's choices in the step) and the stable id picked:
 * "12s1" = at step 12 pick thread 1; "3.1w4" = 3 steps after the previous deviation, the
 * second wake choice of that step, wake thread 4. Steps are delta-encoded in decimal (never
 * negative), so kind letters are unambiguous. A deviation means the same thing whatever other
 * deviations are deleted, which is what the shrinker and `continue` replays rely on.
 * <check> is a checksum of everything before it: a corrupt or truncated string is refused.
 */
import { KIND_LETTERS, KIND_NAMES } from './choice';
import type { Deviation } from './engine';
import { ScheduleError } from './errors';
import { fnv1a } from './hash';

/**
 * 2: ops carry their effects, spawned threads start in a step of their own and the kernel's
 * shared effects are steps (issue 9): every step count and deviation key moved. Version 2 also
 * carries the event hash (issue 14, same unreleased round, so the number stayed 2).
 */
export const SCHEDULE_VERSION = 2;

export interface Schedule {
  hash: string;
  /** eventHash() of the recorded run, or null when the run did not end (not checked on replay). */
  events: string | null;
  strategy: string;
  seed: number;
  /** Steps the recorded run took (a replay that ends elsewhere did not follow it). */
  steps: number;
  devs: Deviation[];
}

const EVENT_MOD = 36 ** 6;

/** The short (6 base-36 digits, ~31 bits) form of a run's event hash that a schedule carries. */
export function eventHash(runHash: number): string {
  return ((runHash >>> 0) % EVENT_MOD).toString(36).padStart(6, '0');
}

function checksum(body: string): string {
  return (fnv1a(body) % 60466176).toString(36).padStart(5, '0');
}

export function encodeDeviations(devs: readonly Deviation[]): string {
  let prev = 0;
  for (let i = 1; i < devs.length; i++) {
    if (devs[i].step < devs[i - 1].step) throw new ScheduleError('deviations must be in step order');
  }
  const out: string[] = [];
  for (const d of devs) {
    out.push(`${d.step - prev}${d.sub ? `.${d.sub}` : ''}${KIND_LETTERS[d.kind]}${d.id}`);
    prev = d.step;
  }
  return out.join(',');
}

export function encodeSchedule(s: Schedule): string {
  if (!/^[a-z0-9-]+$/.test(s.strategy)) throw new ScheduleError(`bad strategy name in schedule: ${JSON.stringify(s.strategy)}`);
  if (s.events !== null && !/^[0-9a-z]{6}$/.test(s.events)) throw new ScheduleError(`bad event hash in schedule: ${JSON.stringify(s.events)}`);
  const body = `${SCHEDULE_VERSION}:${s.hash}:${s.events ?? ''}:${s.strategy}:${s.seed}:${s.steps}:${encodeDeviations(s.devs)}`;
  return `${body}:${checksum(body)}`;
}

const DEV_RE = /^(\d+)(?:\.(\d+))?([siwjf])(\d+)$/;

export function decodeSchedule(str: unknown): Schedule {
  if (typeof str !== 'string' || str.trim() === '') throw new ScheduleError('bad schedule: empty string');
  const s = str.trim();
  const fields = s.split(':');
  const [ver] = fields;
  if (/^\d+$/.test(ver) && Number(ver) < SCHEDULE_VERSION) {
    throw new ScheduleError(`bad schedule "${clip(s)}": recorded by an older format (version ${ver}; this irqsim reads version ${SCHEDULE_VERSION}): its steps do not match this engine's. Hunt again to get a new schedule`);
  }
  if (fields.length === 7 && ver === String(SCHEDULE_VERSION) && checksum(s.slice(0, s.lastIndexOf(':'))) === fields[6]) {
    throw new ScheduleError(`bad schedule "${clip(s)}": recorded by a development build whose schedules did not carry an event hash yet. Hunt again to get a new schedule`);
  }
  if (fields.length !== 8) {
    throw new ScheduleError(`bad schedule "${clip(s)}": expected 8 ':'-separated fields, found ${fields.length} (truncated or not a schedule?)`);
  }
  const [, hash, events, strategy, seedS, stepsS, devsS, check] = fields;
  if (ver !== String(SCHEDULE_VERSION)) {
    throw new ScheduleError(`bad schedule "${clip(s)}": format version ${ver} is not supported (this irqsim reads version ${SCHEDULE_VERSION})`);
  }
  const body = s.slice(0, s.lastIndexOf(':'));
  if (checksum(body) !== check) throw new ScheduleError(`bad schedule "${clip(s)}": checksum mismatch (the string is corrupt or truncated)`);
  if (!/^[0-9a-f]{8}$/.test(hash)) throw new ScheduleError(`bad schedule: program hash "${hash}" is not 8 hex digits`);
  if (events !== '' && !/^[0-9a-z]{6}$/.test(events)) throw new ScheduleError(`bad schedule: event hash "${events}" is not 6 base-36 digits`);
  if (!/^[a-z0-9-]+$/.test(strategy)) throw new ScheduleError(`bad schedule: strategy "${strategy}" is not a strategy name`);
  if (!/^\d+$/.test(seedS) || !Number.isSafeInteger(Number(seedS))) throw new ScheduleError(`bad schedule: seed "${seedS}" is not a non-negative integer`);
  if (!/^\d+$/.test(stepsS)) throw new ScheduleError(`bad schedule: step count "${stepsS}" is not a non-negative integer`);
  const devs: Deviation[] = [];
  let step = 0;
  if (devsS !== '') {
    for (const tok of devsS.split(',')) {
      const m = DEV_RE.exec(tok);
      if (!m) throw new ScheduleError(`bad schedule: deviation "${tok}" is not <step>[.<sub>]<kind><id>`);
      step += Number(m[1]);
      const sub = m[2] ? Number(m[2]) : 0;
      const kind = KIND_LETTERS.indexOf(m[3]);
      if (devs.some((d) => d.step === step && d.kind === kind && d.sub === sub)) {
        throw new ScheduleError(`bad schedule: deviation "${tok}" repeats a choice already in the list`);
      }
      devs.push({ step, sub, kind, id: Number(m[4]) });
    }
  }
  return { hash, events: events === '' ? null : events, strategy, seed: Number(seedS), steps: Number(stepsS), devs };
}

export function describeDeviation(d: Deviation): string {
  const what = KIND_NAMES[d.kind];
  return `step ${d.step}${d.sub ? `.${d.sub}` : ''}: ${what} -> ${d.id}`;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
