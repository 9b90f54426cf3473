/**
 * Random walk: every scheduling choice uniform over the candidates.
 *
 * Interrupts are not a coin flip per delivery point (that would deliver almost every interrupt
 * at its first chance): when a source becomes pending we sample the step at which it should
 * land, uniform over the run's remaining expected steps, and deliver it at the target's first
 * delivery point from that step on (or earlier where the engine forces it).
 */
import { FAULT, IRQ, JITTER, NONE, type ChoiceView, type Strategy } from '../choice';
import { Rng } from '../rng';
import { weightedPick } from './weighted';

export class RandomWalk implements Strategy {
  readonly name: string = 'random';
  /** choose() never reads view.sub. */
  readonly ignoresSub: boolean = true;
  private rng = new Rng(0);
  /** plan[src] = step from which src's pending interrupt is delivered. */
  private plan = new Float64Array(16);

  begin(seed: number, _expectedSteps: number): void {
    this.rng = new Rng(seed);
    this.plan.fill(0);
  }

  notePending(src: number, view: ChoiceView): void {
    if (src >= this.plan.length) {
      const p = new Float64Array(Math.max(src + 1, this.plan.length * 2));
      p.set(this.plan);
      this.plan = p;
    }
    const remaining = Math.max(1, view.expectedSteps - view.step);
    this.plan[src] = view.step + this.rng.int(remaining + 1);
  }

  choose(kind: number, ids: Int32Array, n: number, _def: number, view: ChoiceView, weights: Float64Array | null): number {
    if (kind === IRQ && ids[0] === NONE) {
      for (let i = 1; i < n; i++) if (this.plan[ids[i]] <= view.step) return i;
      return 0;
    }
    if (kind === JITTER || kind === FAULT) return weightedPick(this.rng, n, weights);
    return this.rng.int(n);
  }

  end(_steps: number): void {}

  exhausted(): boolean {
    return false;
  }
}
