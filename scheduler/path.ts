/**
 * The path of a run, one structure for every way the engine walks one (tokio loom's rt/path.rs):
 *  - recording: the choices a run made that differ from the default, keyed so a later run can
 *    make them again. The engine records into it at its one choice point; a run's result hands
 *    them out as deviations, which the shrinker and the crash locator read back;
 *  - replay: a recorded schedule loaded back (`load`) and looked up by key at each choice
 *    (`lookup`, `skipPassed`); strategies/replay.ts, and through it the shrinker, use it;
 *  - branches: the stack of choice points a stateless search replays from the start and
 *    backtracks (`replayed`, `push`, `diverge`, `backtrack`); strategies/dfs.ts and dpor.ts
 *    keep their own per-point data in it.
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

/** What the branch stack needs of a choice point; a search adds its own fields. */
export interface Branch {
  kind: number;
  /** Number of candidates. */
  n: number;
  /** Index of the candidate the next run takes here. */
  pos: number;
}

const byStep = (a: Deviation, b: Deviation): number => a.step - b.step;

export class Path<B extends Branch = Branch> {
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
    // An element loop beats TypedArray.prototype.slice for the short lists most runs have; a
    // long run (a timed run with a tie at every other step records ~10^6) wants the memcpy.
    if (this.len > 256) return this.dev.slice(0, this.len);
    const out = new Int32Array(this.len);
    const d = this.dev;
    for (let i = 0; i < out.length; i++) out[i] = d[i];
    return out;
  }

  /** The deviations recorded so far, unpacked. */
  deviations(): Deviation[] {
    return unpackDeviations(this.dev, this.len);
  }

  // ---- replay: a recorded schedule read back ----

  /** The loaded schedule's deviations, by step (stable: each step's keep their recorded order). */
  private want: readonly Deviation[] = [];
  private used = new Uint8Array(0);
  /** First loaded deviation whose step has not passed yet. */
  private wantPos = 0;

  /** Load a schedule to replay. */
  load(devs: readonly Deviation[]): this {
    this.want = [...devs].sort(byStep);
    this.used = new Uint8Array(this.want.length);
    this.wantPos = 0;
    return this;
  }

  /** Start replaying the loaded schedule from its beginning. */
  rewind(): void {
    this.wantPos = 0;
    this.used.fill(0);
  }

  /** Loaded deviation `i`. */
  wanted(i: number): Deviation {
    return this.want[i];
  }

  /**
   * Move past the loaded deviations of steps before `step`; returns the index of the next one
   * passed without being applied (it did not fit), or -1 when there is none. Call until -1.
   */
  skipPassed(step: number): number {
    const w = this.want;
    while (this.wantPos < w.length && w[this.wantPos].step < step) {
      const i = this.wantPos++;
      if (this.used[i] === 0) return i;
    }
    return -1;
  }

  /**
   * The loaded deviation keyed (step, kind, sub) not applied yet, marked as applied; its index,
   * or -1 when the schedule has none for this choice. Call skipPassed(step) first.
   */
  lookup(step: number, kind: number, sub: number): number {
    const w = this.want;
    for (let i = this.wantPos; i < w.length && w[i].step === step; i++) {
      const d = w[i];
      if (this.used[i] !== 0 || d.kind !== kind || d.sub !== sub) continue;
      this.used[i] = 1;
      return i;
    }
    return -1;
  }

  // ---- branches: the choice points of a stateless search ----

  /** Choice points of the path being walked, root first. */
  readonly branches: B[] = [];
  /** Choice points the current run has passed. */
  depth = 0;

  /** A new run from the root. */
  restart(): void {
    this.depth = 0;
  }

  /** The recorded point the current run is at, when it is still inside the recorded prefix, else null. */
  replayed(): B | null {
    return this.depth < this.branches.length ? this.branches[this.depth] : null;
  }

  /** Take the recorded point `replayed()` returned. */
  next(): void {
    this.depth++;
  }

  /** The run left the recorded prefix here: forget the recorded points from this one on. */
  diverge(): void {
    this.branches.length = this.depth;
  }

  /** A new point past the recorded prefix, taken by the current run. */
  push(b: B): void {
    this.branches.push(b);
    this.depth++;
  }

  /** After a run: drop the points it did not reach, and those past `cut`. */
  settle(cut = Infinity): void {
    const st = this.branches;
    st.length = Math.min(st.length, this.depth, cut);
  }

  /**
   * After a run: drop the points it did not reach (and those past `cut`), then advance the
   * deepest point above `floor` that `advance` says has an alternative left, popping those that
   * have none. False when none has (the tree is exhausted).
   */
  backtrack(advance: (b: B, at: number) => boolean, floor = 0, cut = Infinity): boolean {
    this.settle(cut);
    const st = this.branches;
    while (st.length > floor) {
      const at = st.length - 1;
      if (advance(st[at], at)) return true;
      st.pop();
    }
    return false;
  }
}

/** Unpack `len` ints of packed (step, sub, kind, id) quadruples. */
export function unpackDeviations(p: Int32Array, len = p.length): Deviation[] {
  const out: Deviation[] = [];
  for (let i = 0; i < len; i += 4) out.push({ step: p[i], sub: p[i + 1], kind: p[i + 2], id: p[i + 3] });
  return out;
}
