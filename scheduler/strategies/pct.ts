/**
 * PCT (Burckhardt et al., "A Randomized Scheduler with Probabilistic Guarantees of Finding
 * Bugs", ASPLOS 2010) with depth d: every thread gets a random priority above d; d-1 change
 * points are drawn uniformly over the expected run length k (learned from calibration runs, as
 * Coyote does); at the i-th drawn change point the thread that would run next drops to priority
 * i. The highest-priority enabled thread always runs. A bug of depth d is then found with
 * probability at least 1/(n * k^(d-1)) per run.
 *
 * Interrupt sources get priorities in the same space: a pending interrupt is delivered at a
 * delivery point when its priority is above its target thread's, so change points that lower
 * the target also decide where the interrupt lands.
 */
import { FAULT, IRQ, JITTER, NONE, SCHED, type ChoiceView, type Strategy } from '../choice';
import { Rng } from '../rng';
import { weightedPick } from './weighted';

export class Pct implements Strategy {
  readonly name: string;
  protected rng = new Rng(0);
  private prio: Float64Array = new Float64Array(16);
  private irqPrio: Float64Array = new Float64Array(16);
  private readonly changeStep: Float64Array;
  private readonly changeVal: Float64Array;
  private readonly applied: Uint8Array;

  /**
   * `steps`: PCT's step estimate k (change points fall in 1..k); default: the hunt's calibrated
   * expected steps.
   */
  constructor(
    readonly depth: number,
    readonly steps?: number,
  ) {
    this.name = `pct${depth}`;
    this.changeStep = new Float64Array(Math.max(0, depth - 1));
    this.changeVal = new Float64Array(Math.max(0, depth - 1));
    this.applied = new Uint8Array(Math.max(0, depth - 1));
  }

  begin(seed: number, expectedSteps: number): void {
    this.rng = new Rng(seed);
    this.prio.fill(0);
    this.irqPrio.fill(0);
    const k = Math.max(1, this.steps ?? expectedSteps);
    for (let j = 0; j < this.changeStep.length; j++) {
      this.changeStep[j] = 1 + this.rng.int(k);
      this.changeVal[j] = j + 1;
      this.applied[j] = 0;
    }
  }

  notePending(_src: number, _view: ChoiceView): void {}

  /** Priority of thread `id`, drawn on first sight in (d, d+1). */
  protected threadPrio(id: number): number {
    if (id >= this.prio.length) this.prio = grow(this.prio, id);
    let p = this.prio[id];
    if (p === 0) p = this.prio[id] = this.depth + 1e-9 + this.rng.double();
    return p;
  }

  private sourcePrio(id: number): number {
    if (id >= this.irqPrio.length) this.irqPrio = grow(this.irqPrio, id);
    let p = this.irqPrio[id];
    if (p === 0) p = this.irqPrio[id] = this.depth + 1e-9 + this.rng.double();
    return p;
  }

  private best(ids: Int32Array, from: number, n: number, src: boolean): number {
    let bi = from;
    let bp = -1;
    for (let i = from; i < n; i++) {
      const p = src ? this.sourcePrio(ids[i]) : this.threadPrio(ids[i]);
      if (p > bp) {
        bp = p;
        bi = i;
      }
    }
    return bi;
  }

  choose(kind: number, ids: Int32Array, n: number, _def: number, view: ChoiceView, weights: Float64Array | null): number {
    if (kind === SCHED) return this.chooseSched(ids, n, view);
    if (kind === IRQ) {
      if (ids[0] !== NONE) return this.best(ids, 0, n, true);
      // A change point that falls due here lowers the thread the interrupt would land on.
      for (let j = 0; j < this.changeStep.length; j++) {
        if (this.applied[j] === 0 && this.changeStep[j] <= view.step) {
          this.applied[j] = 1;
          this.threadPrio(view.target);
          this.prio[view.target] = this.changeVal[j];
        }
      }
      const s = this.best(ids, 1, n, true);
      return this.sourcePrio(ids[s]) > this.threadPrio(view.target) ? s : 0;
    }
    if (kind === JITTER || kind === FAULT) return weightedPick(this.rng, n, weights);
    return this.best(ids, 0, n, false); // WAKE: the highest-priority waiter
  }

  protected chooseSched(ids: Int32Array, n: number, view: ChoiceView): number {
    let b = this.best(ids, 0, n, false);
    for (let j = 0; j < this.changeStep.length; j++) {
      if (this.applied[j] === 0 && this.changeStep[j] <= view.step) {
        this.applied[j] = 1;
        this.prio[ids[b]] = this.changeVal[j];
        b = this.best(ids, 0, n, false);
      }
    }
    return b;
  }

  end(_steps: number): void {}

  exhausted(): boolean {
    return false;
  }
}

function grow(a: Float64Array, id: number): Float64Array {
  const b = new Float64Array(Math.max(id + 1, a.length * 2));
  b.set(a);
  return b;
}
