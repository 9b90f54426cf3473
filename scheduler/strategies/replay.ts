/**
 * Replays a schedule: the default policy plus the recorded deviations, each applied at its
 * (step, sub-choice) when its id is among the candidates there.
 *
 * Modes:
 *  - strict: the first deviation that does not fit (never reached, another kind of choice, id
 *    not a candidate, left over at the end) is remembered as `mismatch`; the caller refuses the
 *    replay with that message. Nothing is thrown through the engine.
 *  - lenient: deviations that do not fit are skipped (the shrinker uses this).
 *  - continue: at the first deviation that does not fit, the rest of the run continues with
 *    seeded random choices.
 */
import { KIND_NAMES, type ChoiceView, type Strategy } from '../choice';
import type { Deviation } from '../engine';
import { deriveSeed } from '../rng';
import { describeDeviation } from '../schedule';
import { RandomWalk } from './random';

export type ReplayMode = 'strict' | 'lenient' | 'continue';

export class ReplayStrategy implements Strategy {
  private pos = 0;
  mismatch: string | null = null;
  /** Step where a continue-mode replay left the recorded schedule, or -1. */
  divergedAt = -1;
  /** Deviations applied in the last run. */
  applied = 0;
  private fallback: RandomWalk | null = null;

  constructor(
    private readonly devs: readonly Deviation[],
    readonly mode: ReplayMode,
    readonly name = 'replay',
  ) {}

  begin(seed: number, expectedSteps: number): void {
    this.pos = 0;
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

  private miss(d: Deviation, why: string, view: ChoiceView): void {
    if (this.mode === 'strict') {
      if (this.mismatch === null) this.mismatch = `deviation #${this.pos + 1} (${describeDeviation(d)}) ${why}`;
    } else if (this.mode === 'continue' && this.divergedAt < 0) {
      this.divergedAt = view.step;
    }
  }

  choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, weights: Float64Array | null): number {
    if (this.divergedAt >= 0) return this.fallback!.choose(kind, ids, n, def, view, weights);
    const devs = this.devs;
    while (this.pos < devs.length) {
      const d = devs[this.pos];
      if (d.step > view.step || (d.step === view.step && d.sub > view.sub)) break;
      if (d.step === view.step && d.sub === view.sub) {
        if (d.kind === kind) {
          for (let i = 0; i < n; i++) {
            if (ids[i] === d.id) {
              this.pos++;
              this.applied++;
              return i;
            }
          }
          this.miss(d, `picks ${d.id}, which is not among the candidates [${Array.from(ids.subarray(0, n)).join(', ')}] there`, view);
        } else {
          this.miss(d, `is a ${KIND_NAMES[d.kind]} choice, but the program makes a ${KIND_NAMES[kind]} choice there`, view);
        }
        this.pos++;
        if (this.divergedAt >= 0) return this.fallback!.choose(kind, ids, n, def, view, weights);
        break;
      }
      this.miss(d, 'was never reached as a choice point', view);
      this.pos++;
      if (this.divergedAt >= 0) return this.fallback!.choose(kind, ids, n, def, view, weights);
    }
    return def;
  }

  end(steps: number): void {
    if (this.pos < this.devs.length) {
      const d = this.devs[this.pos];
      this.miss(d, `lies beyond the end of the run (${steps} steps)`, { step: steps } as ChoiceView);
    }
  }

  exhausted(): boolean {
    return false;
  }
}
