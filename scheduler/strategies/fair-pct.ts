/**
 * Fair PCT (as in Coyote): PCT's priorities and change points over a prefix of the run, then a
 * fair random suffix. Spin-heavy programs (retry loops, polling) can run forever
 * under strict priorities — the highest-priority spinner starves the thread it waits for — so
 * after the prefix every enabled thread gets its turn, and every pending interrupt lands, with
 * probability one.
 *
 * The prefix is the calibrated run length (the engine's spin_until already keeps pure spinners
 * off the run queue).
 */
import { IRQ, SCHED, type ChoiceView } from '../choice';
import { Pct } from './pct';

export class FairPct extends Pct {
  override readonly name: string;
  readonly fair = true;
  private prefix = 100;

  constructor(depth: number, steps?: number) {
    super(depth, steps);
    this.name = `fairpct${depth}`;
  }

  override begin(seed: number, expectedSteps: number): void {
    super.begin(seed, expectedSteps);
    this.prefix = Math.max(1, expectedSteps);
  }

  override choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, weights: Float64Array | null): number {
    // Past the prefix every scheduling and interrupt choice is uniform: a thread polling for
    // its own device's interrupt gets it with probability one.
    if ((kind === SCHED || kind === IRQ) && view.step >= this.prefix) return this.rng.int(n);
    return super.choose(kind, ids, n, def, view, weights);
  }
}
