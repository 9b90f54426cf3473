/**
 * The yield watch: what a supervisor on another thread needs to see that a run stopped making
 * steps (a scenario thread stuck in a plain JavaScript loop, which nothing on its own thread
 * can interrupt) and to name the stuck run after terminating its worker.
 *
 * One SharedArrayBuffer per worker. Every Engine made in a watched thread writes into it: the
 * step, the stepping thread and the op it last issued on every advance (three plain stores,
 * no Atomics: the supervisor only needs to see them change eventually), the run's seed at each
 * reset, its deviations as they are made, and thread and object names as they are created. The
 * unit runner adds which iteration is running. An unwatched Engine writes the same stores into
 * a private array, so the hot path has no branch.
 */

/** Header slots (Int32). */
/** Bumped at each run's start and each timer: with the step and thread, what changes on progress. */
export const W_BEAT = 0;
export const W_STEP = 1;
/** Thread advancing (low 24 bits) and the op it last issued (top byte); -1 setup or finish, -2 a timer callback. */
export const W_THREAD = 2;
/** The object of the op it last issued (an access, acquire or release). */
export const W_OBJ = 4;
export const W_SEED = 5;
/** Ints of deviations mirrored (4 per deviation); W_DEV_OVER 1 when more were made than fit. */
export const W_DEVLEN = 6;
export const W_DEV_OVER = 7;
/** Unit and index in the unit of the hunt iteration running (-1: not a hunt unit). */
export const W_UNIT = 8;
export const W_INDEX = 9;
export const HEAD_LEN = 16;

const DEV_CAP = 4 * 16384;
const NAME_LEN = 48;
const THREAD_SLOTS = 512;
const OBJECT_SLOTS = 2048;

export class Watch {
  readonly head: Int32Array;
  readonly devs: Int32Array;
  private readonly threadNames: Uint16Array;
  private readonly objectNames: Uint16Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(Watch.bytes())) {
    let off = 0;
    this.head = new Int32Array(buffer, off, HEAD_LEN);
    off += HEAD_LEN * 4;
    this.devs = new Int32Array(buffer, off, DEV_CAP);
    off += DEV_CAP * 4;
    this.threadNames = new Uint16Array(buffer, off, THREAD_SLOTS * NAME_LEN);
    off += THREAD_SLOTS * NAME_LEN * 2;
    this.objectNames = new Uint16Array(buffer, off, OBJECT_SLOTS * NAME_LEN);
  }

  static bytes(): number {
    return HEAD_LEN * 4 + DEV_CAP * 4 + (THREAD_SLOTS + OBJECT_SLOTS) * NAME_LEN * 2;
  }

  /** A new run: its seed; no deviations yet. */
  begin(seed: number): void {
    const h = this.head;
    h[W_SEED] = seed | 0;
    h[W_DEVLEN] = 0;
    h[W_DEV_OVER] = 0;
    h[W_STEP] = 0;
    h[W_THREAD] = -1;
  }

  deviation(step: number, sub: number, kind: number, id: number): void {
    const h = this.head, k = h[W_DEVLEN];
    if (k + 4 > DEV_CAP) {
      h[W_DEV_OVER] = 1;
      return;
    }
    const d = this.devs;
    d[k] = step;
    d[k + 1] = sub;
    d[k + 2] = kind;
    d[k + 3] = id;
    h[W_DEVLEN] = k + 4;
  }

  threadName(id: number, name: string): void {
    if (id >= 0 && id < THREAD_SLOTS) put(this.threadNames, id, name);
  }

  objectName(id: number, name: string): void {
    if (id >= 0 && id < OBJECT_SLOTS) put(this.objectNames, id, name);
  }

  /** Read back (the supervisor, after the worker stopped). */
  snapshot(): WatchSnapshot {
    const h = this.head;
    const devs: { step: number; sub: number; kind: number; id: number }[] = [];
    for (let i = 0; i < h[W_DEVLEN]; i += 4) devs.push({ step: this.devs[i], sub: this.devs[i + 1], kind: this.devs[i + 2], id: this.devs[i + 3] });
    const raw = h[W_THREAD];
    const tid = raw < 0 ? raw : raw & 0xffffff;
    return {
      beat: h[W_BEAT],
      step: h[W_STEP],
      thread: tid,
      threadName: tid >= 0 && tid < THREAD_SLOTS ? get(this.threadNames, tid) || `#${tid}` : tid === -2 ? 'a timer callback' : 'setup or finish code',
      op: raw < 0 ? 0 : raw >>> 24,
      obj: h[W_OBJ],
      objName: h[W_OBJ] >= 0 && h[W_OBJ] < OBJECT_SLOTS ? get(this.objectNames, h[W_OBJ]) : '',
      seed: h[W_SEED] >>> 0,
      devs,
      devsComplete: h[W_DEV_OVER] === 0,
      unit: h[W_UNIT],
      index: h[W_INDEX],
    };
  }

  /** What changes while the watched thread makes progress. */
  pulse(): string {
    const h = this.head;
    // Two advances of one thread in one step look alike: the budget then counts from the first (microseconds earlier).
    return `${h[W_BEAT]}/${h[W_STEP]}/${h[W_THREAD]}/${h[W_SEED]}/${h[W_UNIT]}/${h[W_INDEX]}`;
  }
}

export interface WatchSnapshot {
  beat: number;
  step: number;
  thread: number;
  threadName: string;
  op: number;
  obj: number;
  objName: string;
  seed: number;
  devs: { step: number; sub: number; kind: number; id: number }[];
  devsComplete: boolean;
  unit: number;
  index: number;
}

function put(a: Uint16Array, slot: number, s: string): void {
  const base = slot * NAME_LEN;
  const n = Math.min(s.length, NAME_LEN - 1);
  for (let i = 0; i < n; i++) a[base + i] = s.charCodeAt(i);
  a[base + n] = 0;
}

function get(a: Uint16Array, slot: number): string {
  const base = slot * NAME_LEN;
  let s = '';
  for (let i = 0; i < NAME_LEN && a[base + i] !== 0; i++) s += String.fromCharCode(a[base + i]);
  return s;
}

let current: Watch | null = null;

/** Watch every Engine made from now on in this thread (a supervised worker calls it once). */
export function watchThisThread(w: Watch | null): void {
  current = w;
}

export function currentWatch(): Watch | null {
  return current;
}
