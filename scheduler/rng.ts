/**
 * Seeded pseudo-random numbers for strategies and workloads: Neves and Araujo's tyche-i, the
 * same generator, seeding and draws as seedrandom's `tychei(String(seed))` (seedrandom 3.0.5,
 * lib/tychei.js; test/scheduler/rng.test.ts checks every draw against it). It is written out
 * here rather than called through seedrandom because seedrandom makes each generator a fresh
 * closure, so the draw at the choice point is an indirect call the compiler cannot inline: 5%
 * of a timed run with a tie at every other step (measured). Seeding costs ~0.4 µs, a draw a few
 * ns; a hunt seeds two generators per schedule.
 */
import { InputError } from './errors';

const INV32 = 1 / 4294967296;

export class Rng {
  private a = 0;
  private b = 0;
  private c = 2654435769 | 0;
  private d = 1367130551;

  constructor(seed: number) {
    // seedrandom seeds tyche-i from the seed's decimal string: each character is mixed into b
    // before a draw, then 20 more draws are discarded.
    const s = String(seed);
    for (let k = 0; k < s.length + 20; k++) {
      this.b ^= k < s.length ? s.charCodeAt(k) : 0;
      this.next();
    }
  }

  /** One tyche-i round: the next signed 32-bit output. */
  private next(): number {
    let a = this.a, b = this.b, c = this.c, d = this.d;
    b = (b << 25) ^ (b >>> 7) ^ c;
    c = (c - d) | 0;
    d = (d << 24) ^ (d >>> 8) ^ a;
    a = (a - b) | 0;
    this.b = b = (b << 20) ^ (b >>> 12) ^ c;
    this.c = c = (c - d) | 0;
    this.d = (d << 16) ^ (c >>> 16) ^ a;
    return (this.a = (a - b) | 0);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return scaleDraw(this.next() >>> 0, n);
  }
  /** Uniform double in [0, 1). */
  double(): number {
    return (this.next() >>> 0) * INV32;
  }
}

/**
 * floor(u * n / 2^32) for a 32-bit draw u: seedrandom's scaling of a draw to [0, n). For n below
 * 2^16 it is the high word of the 64-bit product, taken in integer arithmetic from two 16-bit
 * halves (the same value: test/scheduler/rng.test.ts); the floating-point form it replaces was a
 * quarter of a scheduling choice's cost. Other n keep that form.
 */
export function scaleDraw(u: number, n: number): number {
  if (n >= 1 && n <= 0xffff && (n | 0) === n) return ((Math.imul(u >>> 16, n) >>> 0) + (Math.imul(u & 0xffff, n) >>> 16)) >>> 16;
  return Math.floor(u * INV32 * n);
}

/** Seed of iteration `i` of a hunt with base seed `base`: a 32-bit integer hash of both. */
export function deriveSeed(base: number, i: number): number {
  // splitmix-like finaliser over (base, i); stable across platforms (integer ops only).
  let h = Math.imul((base >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.floor(base / 4294967296);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= Math.imul((i >>> 0) + 0x7f4a7c15, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Validate a user-supplied seed: a non-negative safe integer. */
export function checkSeed(seed: unknown, what = 'seed'): number {
  const n = typeof seed === 'string' && /^\s*\d+\s*$/.test(seed) ? Number(seed) : seed;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new InputError(`bad ${what} ${JSON.stringify(seed)}: expected a non-negative integer`);
  }
  return n;
}

/** Validate a count such as an iteration budget: a positive safe integer. */
export function checkPositiveInt(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) {
    throw new InputError(`bad ${what} ${JSON.stringify(v)}: expected a positive integer`);
  }
  return n;
}
