/**
 * Bounded depth-first search over the choice tree, stateless (each run replays a prefix of
 * choices from the start), as in CHESS: a preemption bound caps switches away from a thread
 * that could have gone on, and a separate interrupt bound caps interrupts delivered before the
 * point where the engine would force them. Without bounds it enumerates every interleaving of
 * the program's visible steps and interrupt delivery points.
 *
 * Scheduling, interrupt and wake choices are enumerated; jitter and fault choices keep their
 * default (bounded separately by the engine's fault budget; enumerate them with a random or
 * PCT hunt instead).
 *
 * Iteration i of a hunt is the i-th path in this order; the seed is not used.
 *
 * Paths come in lexicographic order of their choice positions, so the tree splits into
 * subtrees by schedule prefix and the paths of a hunt are the subtrees' paths concatenated in
 * prefix order. Parallel and sharded hunts use that: `discoverPrefixes` lists the prefixes of
 * the first `cut` choice points, and `restrict(prefix)` makes a Dfs walk one subtree only.
 */
import { FAULT, IRQ, JITTER, NONE, SCHED, type ChoiceView, type Strategy } from '../choice';
import { Path, type Branch } from '../path';

interface Point extends Branch {
  /** Candidate indices in exploration order: the default first, then the rest ascending. */
  order: Int32Array;
  /** Position in `order` (not a candidate index). */
  pos: number;
  /** Cost of each alternative (by index): preemption for SCHED, delivery for IRQ. */
  cost: Uint8Array;
  preBefore: number;
  irqBefore: number;
  /** Delays spent before this point (delay bounding). */
  delBefore: number;
}

export class Dfs implements Strategy {
  readonly name = 'dfs';
  /** The choice points of the path being walked (path.ts's branch stack). */
  private readonly path = new Path<Point>();
  private pre = 0;
  private irq = 0;
  private delays = 0;
  private done = false;
  /** Alternatives left out because they would exceed a bound (0 at the end: the bound never bit). */
  cutByBound = 0;
  /** Paths cut short by a choice point whose shape differed from the recorded one. */
  divergences = 0;
  /** Positions of the first choice points, fixed (restrict), or -1: none. */
  private fixed: Int32Array = new Int32Array(0);
  /** Discovery: backtrack only among the first `cut` points (Infinity: a normal search). */
  private cut = Infinity;
  /** Positions taken at the first choice points of the last run (discovery reads them). */
  private lastPrefix: number[] = [];

  constructor(
    readonly preemptionBound = Infinity,
    readonly irqBound = Infinity,
    /**
     * Delay bounding (Emmi, Qadeer, Rakamarić, POPL 2011): the deterministic scheduler is
     * non-preemptive round robin (the thread that ran last goes on; when it cannot, the next
     * id after it, cyclically). Taking the candidate k places further along that cycle costs k
     * delays; delivering an interrupt before it is forced costs one. Paths with more than
     * `delayBound` delays are not explored.
     */
    readonly delayBound = Infinity,
  ) {}

  /** Delay bounding is on. */
  get delaying(): boolean {
    return this.delayBound !== Infinity;
  }

  /** Walk only the subtree under `prefix` (positions at the first choice points). */
  restrict(prefix: readonly number[]): this {
    this.fixed = Int32Array.from(prefix);
    return this;
  }

  /** Discovery mode: each run yields the next distinct prefix of `cut` choice points. */
  cutAt(cut: number): this {
    this.cut = cut;
    return this;
  }

  /** The positions the last run took at its first `cut` choice points (discovery mode). */
  prefixOfLastRun(): number[] {
    return this.lastPrefix;
  }

  begin(_seed: number, _expectedSteps: number): void {
    this.path.restart();
    this.pre = 0;
    this.irq = 0;
    this.delays = 0;
  }

  notePending(_src: number, _view: ChoiceView): void {}

  choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, _w: Float64Array | null): number {
    if (kind === JITTER || kind === FAULT) return def;
    const path = this.path;
    let p = path.replayed();
    if (p !== null && (p.kind !== kind || p.n !== n)) {
      // The program is not deterministic under this prefix: drop the rest of the recorded path.
      this.divergences++;
      path.diverge();
      p = null;
    }
    if (p === null) p = this.newPoint(kind, ids, n, def, view);
    else path.next();
    const idx = p.order[p.pos];
    if (p.cost[idx]) {
      if (this.delaying) this.delays += p.cost[idx];
      else if (kind === SCHED) this.pre++;
      else this.irq++;
    }
    return idx;
  }

  private newPoint(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView): Point {
    const order = new Int32Array(n);
    const cost = new Uint8Array(n);
    if (this.delaying && kind === SCHED) {
      // Round robin from the thread that ran last (or the next id after it): k places on costs k.
      let base = 0;
      while (base < n && ids[base] < view.current) base++;
      if (base === n) base = 0;
      for (let k = 0; k < n; k++) {
        const i = (base + k) % n;
        order[k] = i;
        cost[i] = Math.min(k, 255);
      }
    } else {
      order[0] = def;
      for (let i = 0, k = 1; i < n; i++) if (i !== def) order[k++] = i;
      for (let i = 0; i < n; i++) {
        if (kind === SCHED) cost[i] = view.currentEnabled && ids[i] !== view.current ? 1 : 0;
        else if (kind === IRQ) cost[i] = ids[0] === NONE && ids[i] !== NONE ? 1 : 0;
      }
    }
    const p: Point = { kind, n, order, pos: 0, cost, preBefore: this.pre, irqBefore: this.irq, delBefore: this.delays };
    const at = this.path.branches.length;
    if (at < this.fixed.length) {
      const want = this.fixed[at];
      if (want < 0 || want >= n) throw new Error(`DFS prefix does not fit the program: position ${want} at choice point ${at} of ${n} candidates`);
      p.pos = want;
    }
    this.path.push(p);
    return p;
  }

  private allowed(p: Point, idx: number): boolean {
    if (!p.cost[idx]) return true;
    if (this.delaying) return p.delBefore + p.cost[idx] <= this.delayBound;
    if (p.kind === SCHED) return p.preBefore + 1 <= this.preemptionBound;
    return p.irqBefore + 1 <= this.irqBound;
  }

  /** Backtrack: advance the deepest point that has an alternative within the bounds. */
  end(_steps: number): void {
    const path = this.path;
    path.settle(this.cut);
    if (this.cut !== Infinity) this.lastPrefix = path.branches.map((p) => p.pos);
    if (!path.backtrack(this.advance, this.fixed.length)) this.done = true;
  }

  /** Move a point to its next alternative within the bounds; false when it has none. */
  private readonly advance = (p: Point): boolean => {
    p.pos++;
    while (p.pos < p.n && !this.allowed(p, p.order[p.pos])) {
      p.pos++;
      this.cutByBound++;
    }
    return p.pos < p.n;
  };

  exhausted(): boolean {
    return this.done;
  }
}
