/**
 * atomic_t (include/linux/atomic/atomic-instrumented.h, atomic-arch-fallback.h, v6.12): a 32-bit
 * counter whose every operation is one visible step on its own shared object, with the
 * read-modify-write done by the op's effect inside that step. An interrupt or another CPU can
 * land between two atomic ops, never inside one: that is the whole difference between
 * `atomic_dec_and_test` and `atomic_dec` followed by `atomic_read`.
 *
 * Memory ordering: the model is sequentially consistent, so the _relaxed/_acquire/_release
 * forms and the fully ordered ones behave alike (only the ordering guarantee differs upstream;
 * a bug that needs a reordering is not found here). Values wrap as the C int does.
 */
import type { Thread } from '../../scheduler';
import type { KernelBody, Machine } from './machine';
import type { Task } from './task';

export class atomic_t {
  /** The engine object every op on this counter touches. */
  readonly obj: number;
  /** The counter (registered with the engine: conformance mode checks every access). */
  readonly v: { counter: number };
  /**
   * What the op's effect hands to the code after its yield. That code runs in the same step,
   * so no other op on this counter can come in between.
   */
  ret = 0;
  constructor(
    m: Machine,
    readonly name: string,
    i: number,
  ) {
    this.obj = m.sim.object(name);
    this.v = m.sim.shared(this.obj, { counter: i | 0 });
  }
  toString(): string {
    return this.name;
  }
}

/** ATOMIC_INIT(i): a counter named `name` (reports and the primitive table use the name). */
export function ATOMIC_INIT(m: Machine, name: string, i = 0): atomic_t {
  return new atomic_t(m, name, i);
}

// Effects: static (no closure per call); `a` is the counter, `b` the operand.
function fxRead(_t: Thread, a: atomic_t): void {
  a.ret = a.v.counter;
}
function fxSet(_t: Thread, a: atomic_t, i: number): void {
  a.v.counter = i | 0;
}
function fxAdd(_t: Thread, a: atomic_t, i: number): void {
  a.v.counter = (a.v.counter + i) | 0;
}
function fxAddReturn(_t: Thread, a: atomic_t, i: number): void {
  a.ret = a.v.counter = (a.v.counter + i) | 0;
}
function fxFetchAdd(_t: Thread, a: atomic_t, i: number): void {
  const old = a.v.counter;
  a.v.counter = (old + i) | 0;
  a.ret = old;
}
function fxXchg(_t: Thread, a: atomic_t, i: number): void {
  a.ret = a.v.counter;
  a.v.counter = i | 0;
}
function fxCmpxchg(_t: Thread, a: atomic_t, ov: readonly [number, number]): void {
  const old = a.v.counter;
  if (old === (ov[0] | 0)) a.v.counter = ov[1] | 0;
  a.ret = old;
}
/** atomic_add_unless(v, a, u) / atomic_fetch_add_unless: the old value in ret. */
function fxAddUnless(_t: Thread, a: atomic_t, au: readonly [number, number]): void {
  const old = a.v.counter;
  if (old !== (au[1] | 0)) a.v.counter = (old + au[0]) | 0;
  a.ret = old;
}

/** atomic_read(v): one visible read. */
export function* atomic_read(cur: Task, v: atomic_t): KernelBody<number> {
  yield cur.thread.read(v.obj, fxRead, v);
  return v.ret;
}

/** atomic_set(v, i): one visible write (a plain store: nothing is read). */
export function* atomic_set(cur: Task, v: atomic_t, i: number): KernelBody<void> {
  yield cur.thread.write(v.obj, fxSet, v, i);
}

export function* atomic_add(cur: Task, i: number, v: atomic_t): KernelBody<void> {
  yield cur.thread.write(v.obj, fxAdd, v, i);
}
export function* atomic_sub(cur: Task, i: number, v: atomic_t): KernelBody<void> {
  yield cur.thread.write(v.obj, fxAdd, v, -i);
}
export function* atomic_inc(cur: Task, v: atomic_t): KernelBody<void> {
  yield cur.thread.write(v.obj, fxAdd, v, 1);
}
export function* atomic_dec(cur: Task, v: atomic_t): KernelBody<void> {
  yield cur.thread.write(v.obj, fxAdd, v, -1);
}

/** atomic_add_return(i, v): the new value. */
export function* atomic_add_return(cur: Task, i: number, v: atomic_t): KernelBody<number> {
  yield cur.thread.write(v.obj, fxAddReturn, v, i);
  return v.ret;
}
export function* atomic_sub_return(cur: Task, i: number, v: atomic_t): KernelBody<number> {
  yield cur.thread.write(v.obj, fxAddReturn, v, -i);
  return v.ret;
}
export function* atomic_inc_return(cur: Task, v: atomic_t): KernelBody<number> {
  yield cur.thread.write(v.obj, fxAddReturn, v, 1);
  return v.ret;
}
export function* atomic_dec_return(cur: Task, v: atomic_t): KernelBody<number> {
  yield cur.thread.write(v.obj, fxAddReturn, v, -1);
  return v.ret;
}

/** atomic_fetch_add(i, v) / atomic_fetch_sub: the old value. */
export function* atomic_fetch_add(cur: Task, i: number, v: atomic_t): KernelBody<number> {
  yield cur.thread.write(v.obj, fxFetchAdd, v, i);
  return v.ret;
}
export function* atomic_fetch_sub(cur: Task, i: number, v: atomic_t): KernelBody<number> {
  yield cur.thread.write(v.obj, fxFetchAdd, v, -i);
  return v.ret;
}

/** atomic_xchg(v, new): the old value. */
export function* atomic_xchg(cur: Task, v: atomic_t, n: number): KernelBody<number> {
  yield cur.thread.write(v.obj, fxXchg, v, n);
  return v.ret;
}

/**
 * atomic_cmpxchg(v, old, new): stores `new` only if the counter is `old`; returns what it was.
 * A failed cmpxchg is still a write-kind step (a locked RMW upstream: the cache line is taken
 * exclusive either way).
 */
export function* atomic_cmpxchg(cur: Task, v: atomic_t, old: number, n: number): KernelBody<number> {
  yield cur.thread.write(v.obj, fxCmpxchg, v, [old, n]);
  return v.ret;
}

/** atomic_dec_and_test(v): decrement; true when the result is 0. One step. */
export function* atomic_dec_and_test(cur: Task, v: atomic_t): KernelBody<boolean> {
  yield cur.thread.write(v.obj, fxAddReturn, v, -1);
  return v.ret === 0;
}
export function* atomic_sub_and_test(cur: Task, i: number, v: atomic_t): KernelBody<boolean> {
  yield cur.thread.write(v.obj, fxAddReturn, v, -i);
  return v.ret === 0;
}
export function* atomic_inc_and_test(cur: Task, v: atomic_t): KernelBody<boolean> {
  yield cur.thread.write(v.obj, fxAddReturn, v, 1);
  return v.ret === 0;
}

const INC_UNLESS_ZERO = [1, 0] as const;

/** atomic_add_unless(v, a, u): add `a` unless the counter is `u`; true if it added. */
export function* atomic_add_unless(cur: Task, v: atomic_t, a: number, u: number): KernelBody<boolean> {
  yield cur.thread.write(v.obj, fxAddUnless, v, [a, u]);
  return v.ret !== (u | 0);
}

/**
 * atomic_inc_not_zero(v): atomic_add_unless(v, 1, 0) — take a reference only while one is
 * still held. One step (the cmpxchg loop upstream retries until it is one atomic transition).
 */
export function* atomic_inc_not_zero(cur: Task, v: atomic_t): KernelBody<boolean> {
  yield cur.thread.write(v.obj, fxAddUnless, v, INC_UNLESS_ZERO);
  return v.ret !== 0;
}
