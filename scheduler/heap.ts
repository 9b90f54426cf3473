/**
 * Binary min-heaps for the engine's hot path, keyed by (time, tiebreak) with no per-operation
 * allocation: keys live in typed arrays, payload ids in an Int32Array.
 *
 * - ClockHeap orders runnable threads by (clock, thread id) for timed mode and supports
 *   decrease-key (an interrupt splitting a thread's local work moves its clock back).
 * - TimerHeap orders timer events by (time, sequence) so equal times fire in creation order.
 */

export class ClockHeap {
  private ids: Int32Array;
  private keys: Float64Array;
  /** pos[id] = index in heap or -1. */
  private pos: Int32Array;
  private todo: Int32Array;
  size = 0;

  constructor(capacity = 64) {
    this.ids = new Int32Array(capacity);
    this.keys = new Float64Array(capacity);
    this.pos = new Int32Array(capacity).fill(-1);
    this.todo = new Int32Array(capacity);
  }

  clear(): void {
    for (let i = 0; i < this.size; i++) this.pos[this.ids[i]] = -1;
    this.size = 0;
  }

  has(id: number): boolean {
    return id < this.pos.length && this.pos[id] >= 0;
  }

  private grow(minId: number): void {
    let cap = this.ids.length;
    while (cap <= minId || cap <= this.size) cap *= 2;
    const ids = new Int32Array(cap);
    ids.set(this.ids);
    const keys = new Float64Array(cap);
    keys.set(this.keys);
    const pos = new Int32Array(cap).fill(-1);
    pos.set(this.pos);
    this.ids = ids;
    this.keys = keys;
    this.pos = pos;
    this.todo = new Int32Array(cap);
  }

  /**
   * Sift with a hole: elements move into the hole and the moving element is written once at
   * the end (fewer writes than swapping, and pos[] is updated once per move).
   */
  private up(i: number, id: number, key: number): void {
    const ids = this.ids, keys = this.keys, pos = this.pos;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = keys[p];
      if (pk < key || (pk === key && ids[p] < id)) break;
      keys[i] = pk;
      ids[i] = ids[p];
      pos[ids[i]] = i;
      i = p;
    }
    keys[i] = key;
    ids[i] = id;
    pos[id] = i;
  }

  private down(i: number, id: number, key: number): void {
    const ids = this.ids, keys = this.keys, pos = this.pos;
    const n = this.size;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let ck = keys[c];
      const r = c + 1;
      if (r < n) {
        const rk = keys[r];
        if (rk < ck || (rk === ck && ids[r] < ids[c])) {
          c = r;
          ck = rk;
        }
      }
      if (key < ck || (key === ck && id < ids[c])) break;
      keys[i] = ck;
      ids[i] = ids[c];
      pos[ids[i]] = i;
      i = c;
    }
    keys[i] = key;
    ids[i] = id;
    pos[id] = i;
  }

  push(id: number, key: number): void {
    if (id >= this.pos.length || this.size >= this.ids.length) this.grow(id);
    this.up(this.size++, id, key);
  }

  peekId(): number {
    return this.ids[0];
  }

  /** True when no other element shares the minimum key (an equal key would be a child of the root). */
  minIsUnique(): boolean {
    const k = this.keys[0];
    return !((this.size > 1 && this.keys[1] === k) || (this.size > 2 && this.keys[2] === k));
  }

  /**
   * Write the ids of every element whose key equals the minimum into out[0..) in ascending id
   * order, without changing the heap. Equal minima form a subtree at the root, so the walk
   * only visits them and their direct children.
   */
  gatherMin(out: Int32Array): number {
    const k = this.keys[0];
    const ids = this.ids, keys = this.keys, n = this.size;
    let m = 0;
    let stack = 0;
    const todo = this.todo;
    todo[stack++] = 0;
    while (stack > 0) {
      const i = todo[--stack];
      const id = ids[i];
      // insertion into sorted position
      let j = m++;
      while (j > 0 && out[j - 1] > id) {
        out[j] = out[j - 1];
        j--;
      }
      out[j] = id;
      const l = 2 * i + 1;
      if (l < n && keys[l] === k) todo[stack++] = l;
      if (l + 1 < n && keys[l + 1] === k) todo[stack++] = l + 1;
    }
    return m;
  }

  keyOf(id: number): number {
    return this.keys[this.pos[id]];
  }

  peekKey(): number {
    return this.keys[0];
  }

  pop(): number {
    const top = this.ids[0];
    this.pos[top] = -1;
    const n = --this.size;
    if (n > 0) this.down(0, this.ids[n], this.keys[n]);
    return top;
  }

  /** Change the key of an element already in the heap. */
  update(id: number, key: number): void {
    const i = this.pos[id];
    if (key < this.keys[i]) this.up(i, id, key);
    else this.down(i, id, key);
  }

  remove(id: number): void {
    const i = this.pos[id];
    if (i < 0) return;
    const n = --this.size;
    this.pos[id] = -1;
    if (i === n) return;
    const mid = this.ids[n], mk = this.keys[n];
    const p = (i - 1) >> 1;
    if (i > 0 && (mk < this.keys[p] || (mk === this.keys[p] && mid < this.ids[p]))) this.up(i, mid, mk);
    else this.down(i, mid, mk);
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
