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
 * Kept packed as bytes, three varints a deviation (the step as the delta from the last one,
 * sub and kind together, the id zigzagged): usually 3 bytes instead of 16. A timed run with a
 * tie at every other step records ~10^6 deviations, and most runs of a hunt never unpack theirs.
 */

export interface Deviation {
  step: number;
  sub: number;
  kind: number;
  id: number;
}

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

/** Bytes per full chunk of recorded deviations. */
const CHUNK = 1 << 16;
/** Room one deviation may need: three varints of up to 5 bytes. */
const MAX_DEV_BYTES = 15;

export class Path<B extends Branch = Branch> {
  /**
   * Deviations, encoded: `full` chunks, then `buf[0..len)`. The current chunk doubles up to
   * CHUNK bytes, then a new one starts, so a long run never copies what it recorded. A
   * deviation never straddles two chunks.
   */
  private buf = new Uint8Array(256);
  private len = 0;
  private full: Uint8Array[] = [];
  private count = 0;
  /** Step of the last deviation recorded (the next one is stored as the delta). */
  private lastStep = 0;
  /** Per kind: the step its ordinal counts belong to, and the count so far in that step. */
  private readonly subStep = new Float64Array(KINDS).fill(-1);
  private readonly subCount = new Int32Array(KINDS);

  /** Forget the last run's path. */
  reset(): void {
    this.len = 0;
    this.count = 0;
    this.lastStep = 0;
    if (this.full.length > 0) this.full = [];
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

  /** Record a choice that left the default. Steps never decrease within a run. */
  record(step: number, sub: number, kind: number, id: number): void {
    if (this.len + MAX_DEV_BYTES > this.buf.length) this.spill();
    const b = this.buf;
    let k = this.len;
    let v = step - this.lastStep;
    this.lastStep = step;
    while (v > 0x7f) {
      b[k++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[k++] = v;
    v = ((sub << 3) | kind) >>> 0;
    while (v > 0x7f) {
      b[k++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[k++] = v;
    v = ((id << 1) ^ (id >> 31)) >>> 0;
    while (v > 0x7f) {
      b[k++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[k++] = v;
    this.len = k;
    this.count++;
  }

  /** The current chunk is full: double it, or past CHUNK bytes keep it and start another. */
  private spill(): void {
    if (this.buf.length < CHUNK) {
      const d = new Uint8Array(this.buf.length * 2);
      d.set(this.buf);
      this.buf = d;
      return;
    }
    this.full.push(this.buf.subarray(0, this.len));
    this.buf = new Uint8Array(CHUNK);
    this.len = 0;
  }

  /** Deviations recorded so far. */
  get size(): number {
    return this.count;
  }

  /**
   * The encoded deviations in chunks, handed over at the end of a run (the path is empty
   * afterwards; unpackDeviations reads them). Long lists are handed over as recorded, without
   * a copy, and the path starts a fresh buffer; short ones are copied, keeping the buffer for
   * the next run of a hunt.
   */
  take(): Uint8Array[] {
    const len = this.len;
    let out: Uint8Array[];
    if (this.full.length === 0 && len <= 1024) {
      out = len === 0 ? [] : [this.buf.slice(0, len)];
    } else {
      out = this.full;
      if (len > 0) out.push(this.buf.subarray(0, len));
      this.full = [];
      this.buf = new Uint8Array(256);
    }
    this.len = 0;
    this.count = 0;
    this.lastStep = 0;
    return out;
  }

  /** The deviations recorded so far, unpacked. */
  deviations(): Deviation[] {
    return unpackDeviations(this.len > 0 ? [...this.full, this.buf.subarray(0, this.len)] : this.full);
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

/** Decode chunks of encoded deviations (what Path.take hands over). */
export function unpackDeviations(chunks: readonly Uint8Array[]): Deviation[] {
  const out: Deviation[] = [];
  let step = 0;
  for (const b of chunks) {
    let k = 0;
    while (k < b.length) {
      const vals = [0, 0, 0];
      for (let f = 0; f < 3; f++) {
        let v = 0, shift = 0, byte: number;
        do {
          byte = b[k++];
          v += (byte & 0x7f) * 2 ** shift;
          shift += 7;
        } while (byte & 0x80);
        vals[f] = v;
      }
      step += vals[0];
      const z = vals[2];
      out.push({ step, sub: Math.floor(vals[1] / 8), kind: vals[1] & 7, id: z % 2 === 0 ? z / 2 : -(z + 1) / 2 });
    }
  }
  return out;
}
