/**
 * PCT (Burckhardt et al., "A Randomized Scheduler with Probabilistic Guarantees of Finding
 * Bugs", ASPLOS 2010) with depth d: every thread gets a distinct random priority above d;
 * d-1 distinct change points are drawn uniformly over the expected run length k (learned from
 * calibration runs, as Coyote does); at the i-th drawn change point the thread that would run next drops to priority
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
  /** choose() never reads view.sub. */
  readonly ignoresSub: boolean = true;
  protected rng = new Rng(0);
  /**
   * Priorities of threads and of interrupt sources, 0 until first seen. They share one space:
   * the entities seen so far hold distinct integers depth, depth+1, ... (a random permutation,
   * built by inserting each newcomer at a uniformly drawn rank), and an entity a change point
   * lowered holds its change value 1..depth-1. Distinct by construction, as Shuttle asserts.
   */
  private prio: Float64Array = new Float64Array(16);
  private irqPrio: Float64Array = new Float64Array(16);
  /** Entities that received a priority this run (ranks handed out). */
  private ranked = 0;
  private readonly changeStep: Float64Array;
  private readonly changeVal: Float64Array;
  private readonly applied: Uint8Array;
  /** Change points drawn this run (d-1, or k when the run is shorter than that). */
  private changes = 0;

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
    this.ranked = 0;
    const k = Math.max(1, this.steps ?? expectedSteps);
    // d-1 distinct change points in 1..k, drawn without replacement (rejecting repeats keeps
    // the draw order uniform, which decides which point gets which change value).
    const m = Math.min(this.changeStep.length, k);
    for (let j = 0; j < m; j++) {
      let c: number;
      do c = 1 + this.rng.int(k);
      while (this.drawn(c, j));
      this.changeStep[j] = c;
      this.changeVal[j] = j + 1;
      this.applied[j] = 0;
    }
    this.changes = m;
  }

  private drawn(c: number, upTo: number): boolean {
    for (let i = 0; i < upTo; i++) if (this.changeStep[i] === c) return true;
    return false;
  }

  notePending(_src: number, _view: ChoiceView): void {}

  /** This run's change points (steps), in draw order: for tests and reports. */
  changePoints(): number[] {
    return Array.from(this.changeStep.subarray(0, this.changes));
  }

  /** Priorities given so far this run: threads and sources by id, 0 where not seen yet. */
  priorities(): { threads: number[]; sources: number[] } {
    return { threads: Array.from(this.prio), sources: Array.from(this.irqPrio) };
  }

  /**
   * A newcomer's priority: a rank drawn uniformly among the ranked+1 slots of the order so far;
   * everyone at or above it moves up one (relative order kept, so no past decision changes).
   */
  private newPrio(): number {
    const p = this.depth + this.rng.int(this.ranked + 1);
    this.ranked++;
    const a = this.prio, b = this.irqPrio;
    for (let i = 0; i < a.length; i++) if (a[i] >= p) a[i]++;
    for (let i = 0; i < b.length; i++) if (b[i] >= p) b[i]++;
    return p;
  }

  /** Priority of thread `id`, given on first sight (>= depth until a change point lowers it). */
  protected threadPrio(id: number): number {
    if (id >= this.prio.length) this.prio = grow(this.prio, id);
    let p = this.prio[id];
    if (p === 0) p = this.prio[id] = this.newPrio();
    return p;
  }

  private sourcePrio(id: number): number {
    if (id >= this.irqPrio.length) this.irqPrio = grow(this.irqPrio, id);
    let p = this.irqPrio[id];
    if (p === 0) p = this.irqPrio[id] = this.newPrio();
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
      for (let j = 0; j < this.changes; j++) {
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
    for (let j = 0; j < this.changes; j++) {
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
