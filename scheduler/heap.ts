/**
 * Binary min-heaps for the engine's hot path, keyed by (time, tiebreak) with no per-operation
 * allocation: keys live in typed arrays, payload ids in an Int32Array.
 *
 * - ClockHeap orders runnable threads by (clock, class, thread id) for timed mode and supports
 *   decrease-key (an interrupt splitting a thread's local work moves its clock back). The class
 *   (0 or 1) puts the threads resuming local work first among equal clocks: the run loop takes
 *   those without a choice, so the top of the heap is the next step whenever one is there.
 *   Equal (clock, class) pop in ascending id order: ReadySet.takeNow relies on it.
 * - TimerHeap orders timer events by (time, sequence) so equal times fire in creation order.
 */

/** Ids are below 2^24; the class is the bit above them in a rank. */
const ID_BITS = 24;
const ID_MASK = (1 << ID_BITS) - 1;

export class ClockHeap {
  /** Per heap position: (class << ID_BITS) | id, the tiebreak after the key. */
  private ranks: Int32Array;
  private keys: Float64Array;
  /** pos[id] = index in heap or -1. */
  private pos: Int32Array;
  size = 0;
  constructor(capacity = 64) {
    this.ranks = new Int32Array(capacity);
    this.keys = new Float64Array(capacity);
    this.pos = new Int32Array(capacity).fill(-1);
  }

  clear(): void {
    for (let i = 0; i < this.size; i++) this.pos[this.ranks[i] & ID_MASK] = -1;
    this.size = 0;
  }

  has(id: number): boolean {
    return id < this.pos.length && this.pos[id] >= 0;
  }

  private grow(minId: number): void {
    if (minId > ID_MASK) throw new RangeError(`ClockHeap: id ${minId} past ${ID_MASK}`);
    let cap = this.ranks.length;
    while (cap <= minId || cap <= this.size) cap *= 2;
    const ranks = new Int32Array(cap);
    ranks.set(this.ranks);
    const keys = new Float64Array(cap);
    keys.set(this.keys);
    const pos = new Int32Array(cap).fill(-1);
    pos.set(this.pos);
    this.ranks = ranks;
    this.keys = keys;
    this.pos = pos;
  }

  /**
   * Sift with a hole: elements move into the hole and the moving element is written once at
   * the end (fewer writes than swapping, and pos[] is updated once per move).
   */
  private up(i: number, rank: number, key: number): void {
    const ranks = this.ranks, keys = this.keys, pos = this.pos;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = keys[p];
      if (pk < key || (pk === key && ranks[p] < rank)) break;
      keys[i] = pk;
      ranks[i] = ranks[p];
      pos[ranks[i] & ID_MASK] = i;
      i = p;
    }
    keys[i] = key;
    ranks[i] = rank;
    pos[rank & ID_MASK] = i;
  }

  private down(i: number, rank: number, key: number): void {
    const ranks = this.ranks, keys = this.keys, pos = this.pos;
    const n = this.size;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let ck = keys[c];
      const r = c + 1;
      if (r < n) {
        const rk = keys[r];
        if (rk < ck || (rk === ck && ranks[r] < ranks[c])) {
          c = r;
          ck = rk;
        }
      }
      if (key < ck || (key === ck && rank < ranks[c])) break;
      keys[i] = ck;
      ranks[i] = ranks[c];
      pos[ranks[i] & ID_MASK] = i;
      i = c;
    }
    keys[i] = key;
    ranks[i] = rank;
    pos[rank & ID_MASK] = i;
  }

  /** Add `id` with `key`; class 1 sorts after class 0 among equal keys. */
  push(id: number, key: number, cls = 0): void {
    if (id >= this.pos.length || this.size >= this.ranks.length) this.grow(id);
    this.up(this.size++, (cls << ID_BITS) | id, key);
  }

  peekId(): number {
    return this.ranks[0] & ID_MASK;
  }

  keyOf(id: number): number {
    return this.keys[this.pos[id]];
  }

  /** The class `id` was pushed or last updated with. */
  classOf(id: number): number {
    return this.ranks[this.pos[id]] >> ID_BITS;
  }

  peekKey(): number {
    return this.keys[0];
  }

  pop(): number {
    const top = this.ranks[0] & ID_MASK;
    this.pos[top] = -1;
    const n = --this.size;
    if (n > 0) this.down(0, this.ranks[n], this.keys[n]);
    return top;
  }

  /** Change the key (and class) of an element already in the heap. */
  update(id: number, key: number, cls = 0): void {
    const i = this.pos[id];
    const rank = (cls << ID_BITS) | id;
    const k = this.keys[i];
    if (key < k || (key === k && rank < this.ranks[i])) this.up(i, rank, key);
    else this.down(i, rank, key);
  }

  remove(id: number): void {
    const i = this.pos[id];
    if (i < 0) return;
    const n = --this.size;
    this.pos[id] = -1;
    if (i === n) return;
    const mr = this.ranks[n], mk = this.keys[n];
    const p = (i - 1) >> 1;
    if (i > 0 && (mk < this.keys[p] || (mk === this.keys[p] && mr < this.ranks[p]))) this.up(i, mr, mk);
    else this.down(i, mr, mk);
  }
}

export class TimerHeap<T> {
  private times: Float64Array;
  private seqs: Float64Array;
  private items: (T | undefined)[];
  size = 0;
  private seq = 0;

  constructor(capacity = 16) {
    this.times = new Float64Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.items = new Array(capacity);
  }

  clear(): void {
    for (let i = 0; i < this.size; i++) this.items[i] = undefined;
    this.size = 0;
    this.seq = 0;
  }

  private less(i: number, j: number): boolean {
    const a = this.times[i], b = this.times[j];
    return a < b || (a === b && this.seqs[i] < this.seqs[j]);
  }

  private swap(i: number, j: number): void {
    const t = this.times[i], s = this.seqs[i], x = this.items[i];
    this.times[i] = this.times[j];
    this.seqs[i] = this.seqs[j];
    this.items[i] = this.items[j];
    this.times[j] = t;
    this.seqs[j] = s;
    this.items[j] = x;
  }

  push(time: number, item: T): void {
    if (this.size === this.times.length) {
      const cap = this.size * 2;
      const t = new Float64Array(cap);
      t.set(this.times);
      const s = new Float64Array(cap);
      s.set(this.seqs);
      this.times = t;
      this.seqs = s;
      this.items.length = cap;
    }
    let i = this.size++;
    this.times[i] = time;
    this.seqs[i] = this.seq++;
    this.items[i] = item;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  peekTime(): number {
    return this.size > 0 ? this.times[0] : Infinity;
  }

  pop(): T {
    const top = this.items[0] as T;
    const n = --this.size;
    this.times[0] = this.times[n];
    this.seqs[0] = this.seqs[n];
    this.items[0] = this.items[n];
    this.items[n] = undefined;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && this.less(r, l) ? r : l;
      if (!this.less(m, i)) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}
