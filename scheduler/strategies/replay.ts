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
import type { Deviation } from '../engine';
import { InputError } from '../errors';
import { deriveSeed } from '../rng';
import { describeDeviation } from '../schedule';
import { RandomWalk } from './random';

export type ReplayMode = 'strict' | 'lenient' | 'continue';
export const REPLAY_MODES: readonly ReplayMode[] = ['strict', 'lenient', 'continue'];

export class ReplayStrategy implements Strategy {
  /** Deviations sorted by step (stable, so each step's keep their recorded order). */
  private readonly devs: readonly Deviation[];
  private used: Uint8Array;
  /** First deviation whose step has not passed yet. */
  private pos = 0;
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
    this.devs = [...devs].sort((a, b) => a.step - b.step);
    this.used = new Uint8Array(this.devs.length);
  }

  begin(seed: number, expectedSteps: number): void {
    this.pos = 0;
    this.used.fill(0);
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
      if (this.mismatch === null) this.mismatch = `deviation #${i + 1} (${describeDeviation(this.devs[i])}) ${why}`;
    } else if (this.mode === 'continue' && this.divergedAt < 0) {
      this.divergedAt = step;
    }
  }

  /** Deviations of steps before `step` that were never applied do not fit. */
  private passTo(step: number): void {
    const devs = this.devs;
    while (this.pos < devs.length && devs[this.pos].step < step) {
      if (this.used[this.pos] === 0) this.miss(this.pos, 'was never reached as a choice point', step);
      this.pos++;
    }
  }

  choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, weights: Float64Array | null): number {
    if (this.divergedAt < 0) this.passTo(view.step);
    if (this.divergedAt >= 0) return this.fallback!.choose(kind, ids, n, def, view, weights);
    const devs = this.devs;
    for (let i = this.pos; i < devs.length && devs[i].step === view.step; i++) {
      const d = devs[i];
      if (this.used[i] !== 0 || d.kind !== kind || d.sub !== view.sub) continue;
      this.used[i] = 1;
      for (let k = 0; k < n; k++) {
        if (ids[k] === d.id) {
          this.applied++;
          return k;
        }
      }
      this.miss(i, `picks ${d.id}, which is not among the ${KIND_NAMES[kind]} candidates [${Array.from(ids.subarray(0, n)).join(', ')}] there`, view.step);
      if (this.divergedAt >= 0) return this.fallback!.choose(kind, ids, n, def, view, weights);
      break;
    }
    return def;
  }

  end(steps: number): void {
    const devs = this.devs;
    for (; this.pos < devs.length; this.pos++) {
      if (this.used[this.pos] !== 0) continue;
      const why = devs[this.pos].step >= steps ? `lies beyond the end of the run (${steps} steps)` : 'was never reached as a choice point';
      this.miss(this.pos, why, steps);
    }
  }

  exhausted(): boolean {
    return false;
  }
}
