/**
 * The ready set: the threads that can take a step now. Interleave mode (and a finite window)
 * keeps them in a run queue sorted by id (the stable order choices are offered in); timed mode
 * keeps them in a heap keyed by clock (and readyClass), so the earliest come out first.
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
 * change of a ready thread's op kind or clock goes through an update with this class.
 */
export function readyClass(t: Thread): number {
  return t.opKind === P_CONT ? 0 : 1;
}

export class ReadySet {
  /** Interleave mode: ready thread ids, ascending; `runqLen` are used. */
  runq = new Int32Array(64);
  runqLen = 0;
  /** Timed mode: ready thread ids keyed by clock. */
  readonly heap = new ClockHeap(64);
  /** Candidates of the next step when they are a subset (timed mode, finite window). */
  cand = new Int32Array(64);

  constructor(readonly timed: boolean) {}

  clear(): void {
    this.runqLen = 0;
    this.heap.clear();
  }

  insert(t: Thread): void {
    t.inReady = true;
    if (this.timed) {
      this.heap.push(t.id, t.clock, readyClass(t));
      return;
    }
    if (this.runqLen === this.runq.length) {
      const r = new Int32Array(this.runq.length * 2);
      r.set(this.runq);
      this.runq = r;
    }
    const rq = this.runq;
    let i = this.runqLen++;
    const id = t.id;
    while (i > 0 && rq[i - 1] > id) {
      rq[i] = rq[i - 1];
      i--;
    }
    rq[i] = id;
  }

  remove(t: Thread): void {
    t.inReady = false;
    if (this.timed) {
      this.heap.remove(t.id);
      return;
    }
    const rq = this.runq;
    const id = t.id;
    let i = 0;
    while (rq[i] !== id) i++;
    this.runqLen--;
    for (; i < this.runqLen; i++) rq[i] = rq[i + 1];
  }

  /** Room for `n` candidates. */
  candCapacity(n: number): Int32Array {
    if (this.cand.length < n) this.cand = new Int32Array(n * 2);
    return this.cand;
  }
}
