/**
 * Replays a schedule: the default policy plus the recorded deviations. A deviation is keyed by
 * (step, kind, ordinal of that kind's choices in the step) and names the stable id to pick; it
 * applies where a choice with that key is made and the id is among its candidates.
 *
 * Modes:
 *  - strict: the first deviation that does not fit (its step passed without its choice being
 *    made, the id is not a candidate there, or it is left over at the end) is remembered as
 *    `mismatch`; the caller refuses the replay with that message. Nothing is thrown through the
 *    engine.
 *  - lenient: deviations that do not fit are skipped (the shrinker uses this).
 *  - continue: at the first deviation that does not fit, the rest of the run continues with
 *    seeded random choices.
 */
import { KIND_NAMES, type ChoiceView, type Strategy } from '../choice';
import { Path, type Deviation } from '../path';
import { InputError } from '../errors';
import { deriveSeed } from '../rng';
import { describeDeviation } from '../schedule';
import { RandomWalk } from './random';

export type ReplayMode = 'strict' | 'lenient' | 'continue';
export const REPLAY_MODES: readonly ReplayMode[] = ['strict', 'lenient', 'continue'];

export class ReplayStrategy implements Strategy {
  /** The schedule read back: keyed lookup of its deviations (path.ts). */
  private readonly path: Path;
  mismatch: string | null = null;
  /** Step where a continue-mode replay left the recorded schedule, or -1. */
  divergedAt = -1;
  /** Deviations applied in the last run. */
  applied = 0;
  private fallback: RandomWalk | null = null;

  constructor(
    devs: readonly Deviation[],
    readonly mode: ReplayMode,
    readonly name = 'replay',
  ) {
    if (!REPLAY_MODES.includes(mode)) throw new InputError(`unknown replay mode "${mode}": expected one of ${REPLAY_MODES.join(', ')}`);
    this.path = new Path().load(devs);
  }

  begin(seed: number, expectedSteps: number): void {
    this.path.rewind();
    this.applied = 0;
    this.mismatch = null;
    this.divergedAt = -1;
    this.fallback = null;
    if (this.mode === 'continue') {
      this.fallback = new RandomWalk();
      this.fallback.begin(deriveSeed(seed, 0xc0ffee), expectedSteps);
    }
  }

  notePending(src: number, view: ChoiceView): void {
    if (this.fallback !== null) this.fallback.notePending(src, view);
  }

  private miss(i: number, why: string, step: number): void {
    if (this.mode === 'strict') {
      if (this.mismatch === null) this.mismatch = `deviation #${i + 1} (${describeDeviation(this.path.wanted(i))}) ${why}`;
    } else if (this.mode === 'continue' && this.divergedAt < 0) {
      this.divergedAt = step;
    }
  }

  choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, weights: Float64Array | null): number {
    const path = this.path;
    if (this.divergedAt < 0) {
      // Deviations of steps before this one that were never applied do not fit.
      for (let i; (i = path.skipPassed(view.step)) >= 0; ) this.miss(i, 'was never reached as a choice point', view.step);
    }
    if (this.divergedAt >= 0) return this.fallback!.choose(kind, ids, n, def, view, weights);
    const i = path.lookup(view.step, kind, view.sub);
    if (i < 0) return def;
    const want = path.wanted(i).id;
    for (let k = 0; k < n; k++) {
      if (ids[k] === want) {
        this.applied++;
        return k;
      }
    }
    this.miss(i, `picks ${want}, which is not among the ${KIND_NAMES[kind]} candidates [${Array.from(ids.subarray(0, n)).join(', ')}] there`, view.step);
    if (this.divergedAt >= 0) return this.fallback!.choose(kind, ids, n, def, view, weights);
    return def;
  }

  end(steps: number): void {
    const path = this.path;
    for (let i; (i = path.skipPassed(Infinity)) >= 0; ) {
      const why = path.wanted(i).step >= steps ? `lies beyond the end of the run (${steps} steps)` : 'was never reached as a choice point';
      this.miss(i, why, steps);
    }
  }

  exhausted(): boolean {
    return false;
  }
}
