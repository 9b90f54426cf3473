/**
 * Error classes the engine throws. Callers (the CLI, tests) map InputError and its
 * subclasses to a one-line message and exit code 2; ProgramError means the simulated
 * program itself is malformed (a bug in a scenario, not a finding).
 */

/** Bad user input: a seed, an iteration count, an option value. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** A schedule string that is corrupt, truncated, or does not fit the program it is replayed on. */
export class ScheduleError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

/** The simulated program broke the engine's rules (yielded a non-op, negative work, threw). */
export class ProgramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProgramError';
  }
}

/** An exception from program code outside a thread body (timer, predicate): a ProgramError. */
export function wrapError(where: string, e: unknown): Error {
  if (e instanceof ProgramError || e instanceof InputError) return e;
  const err = new ProgramError(`${where} threw: ${e instanceof Error ? e.message : String(e)}`);
  if (e instanceof Error) err.stack = e.stack;
  return err;
}

/** A value a program passed where something else was expected, in words. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'object' && v !== null && typeof (v as { next?: unknown }).next === 'function') return 'a generator (use `yield*` to call a helper)';
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}
