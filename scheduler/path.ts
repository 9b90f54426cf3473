/**
 * The path of one run: the choices it made that differ from the default, keyed so a later run
 * can make them again (tokio loom's rt/path.rs plays this part). The engine records into it at
 * its one choice point; a run's result hands it out as deviations; replays (strategies/replay.ts),
 * the shrinker and the crash locator read those deviations back.
 *
 * A deviation is (step, sub, kind, id): at step `step`, the `sub`-th choice of `kind` in that
 * step picked stable id `id`. Choices are keyed per kind, and every choice counts toward `sub`
 * (even one with a single candidate), so deleting a deviation that changes how many candidates
 * one choice has, or whether a choice of another kind happens, never shifts a later key.
 *
 * Kept packed as int quadruples: most runs of a hunt never unpack theirs.
 */

export interface Deviation {
  step: number;
  sub: number;
  kind: number;
  id: number;
}

export const NO_DEVIATIONS = new Int32Array(0);

/** Number of choice kinds (choice.ts: SCHED, IRQ, WAKE, FAULT, JITTER). */
const KINDS = 5;

export class Path {
  /** Deviations as (step, sub, kind, id) quadruples; `len` ints are used. */
  private dev = new Int32Array(256);
  private len = 0;
  /** Per kind: the step its ordinal counts belong to, and the count so far in that step. */
  private readonly subStep = new Float64Array(KINDS).fill(-1);
  private readonly subCount = new Int32Array(KINDS);

  /** Forget the last run's path. */
  reset(): void {
    this.len = 0;
    this.subStep.fill(-1);
  }

  /** Ordinal of the next choice of `kind` in step `step` (a deviation's `sub`). */
  nextSub(kind: number, step: number): number {
    if (this.subStep[kind] !== step) {
      this.subStep[kind] = step;
      this.subCount[kind] = 0;
    }
    return this.subCount[kind]++;
  }

  /** Record a choice that left the default. */
  record(step: number, sub: number, kind: number, id: number): void {
    if (this.len + 4 > this.dev.length) {
      const d = new Int32Array(this.dev.length * 2);
      d.set(this.dev);
      this.dev = d;
    }
    const d = this.dev, k = this.len;
    d[k] = step;
    d[k + 1] = sub;
    d[k + 2] = kind;
    d[k + 3] = id;
    this.len = k + 4;
  }

  /** Deviations recorded so far. */
  get size(): number {
    return this.len >> 2;
  }

  /** A copy of the packed deviations (a shared empty array when there are none). */
  packed(): Int32Array {
    if (this.len === 0) return NO_DEVIATIONS;
    // An element loop beats TypedArray.prototype.slice for the short lists a run has.
    const out = new Int32Array(this.len);
    const d = this.dev;
    for (let i = 0; i < out.length; i++) out[i] = d[i];
    return out;
  }

  /** The deviations recorded so far, unpacked. */
  deviations(): Deviation[] {
    return unpackDeviations(this.dev, this.len);
  }
}

/** Unpack `len` ints of packed (step, sub, kind, id) quadruples. */
export function unpackDeviations(p: Int32Array, len = p.length): Deviation[] {
  const out: Deviation[] = [];
  for (let i = 0; i < len; i += 4) out.push({ step: p[i], sub: p[i + 1], kind: p[i + 2], id: p[i + 3] });
  return out;
}
