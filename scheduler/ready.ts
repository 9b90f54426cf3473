/**
 * The ready set: the threads that can take a step now. Interleave mode (and a finite window)
 * keeps them in a run queue sorted by id (the stable order choices are offered in); timed mode
 * keeps them by clock, so the earliest come out first.
 *
 * Timed mode splits them in two. The threads at the earliest clock that issue a visible op
 * (class 1, see readyClass) are the candidates of the next choice: they sit in `now`, ascending
 * by id, offered as they are. Every other ready thread is in a heap keyed by (clock, class, id).
 * A step takes one thread out of `now` and puts it back in the heap at its next clock; threads
 * join `now` as they become candidates, and it is refilled from the heap when it runs empty.
 * Half the steps of a contended run are such ties: gathering them from the heap at every step
 * instead cost 6% of the bench's (b) (docs/benchmarks.md).
 *
 * Which of them are candidates for the next step is the run loop's business (engine.ts); this
 * file only keeps the set.
 */
import { ClockHeap } from './heap';
import { P_CONT } from './ops';
import type { Thread } from './thread';

/**
 * Timed mode's tiebreak class among equal clocks: 0 for a thread resuming local work (the run
 * loop takes it without a choice: it commutes with everything), 1 for any other op. Every
 * change of a ready thread's op kind or clock goes through rekey() with this class.
 */
export function readyClass(t: Thread): number {
  return t.opKind === P_CONT ? 0 : 1;
}

export class ReadySet {
  /** Interleave mode: ready thread ids, ascending; `runqLen` are used. */
  runq = new Int32Array(64);
  runqLen = 0;
  /** Timed mode: the ready threads not in `now`, keyed by (clock, class, id). */
  readonly heap = new ClockHeap(64);
  /**
   * Timed mode: ready threads at clock `nowKey` with a visible op (class 1), ascending ids;
   * `nowLen` are used. While it is not empty no thread in the heap has a clock below `nowKey`;
   * others of class 1 at `nowKey` may wait in the heap until takeNow() moves them in.
   */
  now = new Int32Array(64);
  nowLen = 0;
  nowKey = 0;
  /** Candidates of the next step when they are a subset (timed mode, finite window). */
  cand = new Int32Array(64);

  constructor(readonly timed: boolean) {}

  clear(): void {
    this.runqLen = 0;
    this.heap.clear();
    this.nowLen = 0;
  }

  insert(t: Thread): void {
    t.inReady = true;
    if (this.timed) {
      this.place(t.id, t.clock, readyClass(t));
      return;
    }
    this.runq = insertSorted(this.runq, this.runqLen++, t.id);
  }

  remove(t: Thread): void {
    t.inReady = false;
    if (this.timed) {
      if (this.heap.has(t.id)) this.heap.remove(t.id);
      else this.nowRemove(t.id);
      return;
    }
    removeSorted(this.runq, this.runqLen--, t.id);
  }

  /** Timed mode: ready thread t has a new clock or op kind; move it to where it now belongs. */
  rekey(t: Thread): void {
    const id = t.id, c = t.clock, cls = readyClass(t);
    const h = this.heap;
    if (!h.has(id)) {
      if (c === this.nowKey && cls === 1) return; // still a candidate at the same instant
      this.nowRemove(id);
      this.place(id, c, cls);
      return;
    }
    if (cls === 1 && this.nowLen === 0 && h.peekId() === id && h.peekKey() === c) {
      // Most often: the thread at the front resumed its local work and now issues an op at the
      // same instant. It opens `now` (the others tied with it join at the next takeNow).
      h.pop();
      this.now[0] = id;
      this.nowLen = 1;
      this.nowKey = c;
    } else if (this.nowLen > 0 && (c < this.nowKey || (c === this.nowKey && cls === 1))) {
      h.remove(id);
      this.place(id, c, cls);
    } else h.update(id, c, cls);
  }

  /** Timed mode: the earliest clock of a ready thread, Infinity when there is none. */
  minKey(): number {
    return this.nowLen > 0 ? this.nowKey : this.heap.size > 0 ? this.heap.peekKey() : Infinity;
  }

  /**
   * Timed mode, when no thread resumes local work at the earliest clock: the candidates of the
   * next step, `now`, with every thread of the heap tied with them (class 1 at the same clock)
   * moved in first. The heap gives those up in ascending id order. Returns their count.
   */
  takeNow(): number {
    const h = this.heap;
    if (this.nowLen === 0) this.nowKey = h.peekKey();
    const k = this.nowKey;
    while (h.size > 0 && h.peekKey() === k) this.nowInsert(h.pop());
    return this.nowLen;
  }

  /** Timed mode: id goes into the heap, or into `now` when it is a candidate at nowKey. */
  private place(id: number, c: number, cls: number): void {
    if (this.nowLen > 0) {
      if (c === this.nowKey && cls === 1) {
        this.nowInsert(id);
        return;
      }
      // An earlier clock (an interrupt split a thread's work): `now` is no longer the front.
      if (c < this.nowKey) this.flushNow();
    }
    this.heap.push(id, c, cls);
  }

  private nowInsert(id: number): void {
    this.now = insertSorted(this.now, this.nowLen++, id);
  }

  private nowRemove(id: number): void {
    removeSorted(this.now, this.nowLen--, id);
  }

  /** Put `now` back into the heap. */
  private flushNow(): void {
    for (let i = 0; i < this.nowLen; i++) this.heap.push(this.now[i], this.nowKey, 1);
    this.nowLen = 0;
  }

  /** Room for `n` candidates. */
  candCapacity(n: number): Int32Array {
    if (this.cand.length < n) this.cand = new Int32Array(n * 2);
    return this.cand;
  }
}

/** Insert `id` into arr[0..len), kept ascending; returns the array, grown when it was full. */
function insertSorted(arr: Int32Array<ArrayBuffer>, len: number, id: number): Int32Array<ArrayBuffer> {
  if (len === arr.length) {
    const grown = new Int32Array(len * 2);
    grown.set(arr);
    arr = grown;
  }
  let i = len;
  while (i > 0 && arr[i - 1] > id) {
    arr[i] = arr[i - 1];
    i--;
  }
  arr[i] = id;
  return arr;
}

/** Remove `id` (present) from arr[0..len), keeping the order of the rest. */
function removeSorted(arr: Int32Array, len: number, id: number): void {
  let i = 0;
  while (arr[i] !== id) i++;
  for (; i < len - 1; i++) arr[i] = arr[i + 1];
}
