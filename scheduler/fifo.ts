/**
 * A FIFO with O(1) removal at the head, for wait queues: Array.prototype.shift moves every
 * element (about 30 ns a call on a queue of 60 waiters, measured), and a contended resource
 * hands over at every release. A ring buffer whose capacity is a power of two.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = new Array(8).fill(undefined);
  private mask = 7;
  private head = 0;
  private len = 0;

  get length(): number {
    return this.len;
  }

  push(x: T): void {
    if (this.len > this.mask) this.grow();
    this.items[(this.head + this.len++) & this.mask] = x;
  }

  /** Remove and return the head (undefined when empty). */
  shift(): T | undefined {
    if (this.len === 0) return undefined;
    const h = this.head;
    const x = this.items[h];
    this.items[h] = undefined;
    this.head = (h + 1) & this.mask;
    this.len--;
    return x;
  }

  /** Put x at the head. */
  unshift(x: T): void {
    if (this.len > this.mask) this.grow();
    this.head = (this.head - 1) & this.mask;
    this.items[this.head] = x;
    this.len++;
  }

  /** Element i from the head (undefined past the end). */
  at(i: number): T | undefined {
    return i >= 0 && i < this.len ? this.items[(this.head + i) & this.mask] : undefined;
  }

  indexOf(x: T): number {
    for (let i = 0; i < this.len; i++) if (this.items[(this.head + i) & this.mask] === x) return i;
    return -1;
  }

  includes(x: T): boolean {
    return this.indexOf(x) >= 0;
  }

  findIndex(pred: (x: T) => boolean): number {
    for (let i = 0; i < this.len; i++) if (pred(this.items[(this.head + i) & this.mask] as T)) return i;
    return -1;
  }

  /** Remove and return element i from the head; the ones behind it move up. */
  removeAt(i: number): T {
    if (!(Number.isInteger(i) && i >= 0 && i < this.len)) throw new RangeError(`Fifo.removeAt(${i}) of ${this.len}`);
    const items = this.items, m = this.mask, h = this.head;
    const x = items[(h + i) & m] as T;
    for (let j = i; j < this.len - 1; j++) items[(h + j) & m] = items[(h + j + 1) & m];
    items[(h + this.len - 1) & m] = undefined;
    this.len--;
    return x;
  }

  /** The elements head first, as a new array. */
  toArray(): T[] {
    const out: T[] = new Array(this.len);
    for (let i = 0; i < this.len; i++) out[i] = this.items[(this.head + i) & this.mask] as T;
    return out;
  }

  private grow(): void {
    const n = this.items.length * 2;
    const items: (T | undefined)[] = new Array(n).fill(undefined);
    for (let i = 0; i < this.len; i++) items[i] = this.items[(this.head + i) & this.mask];
    this.items = items;
    this.mask = n - 1;
    this.head = 0;
  }
}
