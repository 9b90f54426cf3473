/**
 * refcount_t (include/linux/refcount.h and lib/refcount.c, v6.12): a reference counter that
 * saturates instead of wrapping. Every op is one visible step on the counter's shared object;
 * the RMW and the saturation check run in the op's effect. A transition refcount.h calls a bug
 * (an increment from 0, a decrement below 0 or to 0 by refcount_dec, an overflow) goes through
 * refcount_warn_saturate: the counter is pinned at REFCOUNT_SATURATED and WARN_ONCE prints
 * "refcount_t: <what>." — an `assertion` finding (subkind warn) at refcount_warn_saturate.
 *
 * Simplifications: upstream stores REFCOUNT_SATURATED in a second store after the RMW; here it
 * is part of the same step. Ordering is sequentially consistent (the _release/_acquire
 * guarantees of refcount_dec_and_test are implied).
 */
import type { Thread } from '../../scheduler';
import { WARN_ON_ONCE } from './bug';
import type { KernelBody, Machine } from './machine';
import type { Task } from './task';

/** INT_MIN / 2: far from both 0 and INT_MAX, so racing ops cannot get it back to 0. */
export const REFCOUNT_SATURATED = -1073741824;

/** enum refcount_saturation_type, with the text refcount_warn_saturate prints for each. */
export const REFCOUNT_ADD_NOT_ZERO_OVF = 'saturated; leaking memory';
export const REFCOUNT_ADD_OVF = 'saturated; leaking memory';
export const REFCOUNT_ADD_UAF = 'addition on 0; use-after-free';
export const REFCOUNT_SUB_UAF = 'underflow; use-after-free';
export const REFCOUNT_DEC_LEAK = 'decrement hit 0; leaking memory';

export class refcount_t {
  readonly obj: number;
  /** refs (registered with the engine: conformance mode checks every access). */
  readonly r: { refs: number };
  /** The old value the op's effect hands to the code after its yield (same step). */
  old = 0;
  /** The saturation event the effect saw, or null; reported by the code after the yield. */
  bad: string | null = null;
  constructor(
    m: Machine,
    readonly name: string,
    n: number,
  ) {
    this.obj = m.sim.object(name);
    this.r = m.sim.shared(this.obj, { refs: n | 0 });
  }
  toString(): string {
    return this.name;
  }
}

/** REFCOUNT_INIT(n) for a counter named `name`. */
export function REFCOUNT_INIT(m: Machine, name: string, n = 1): refcount_t {
  return new refcount_t(m, name, n);
}

function saturate(r: refcount_t, what: string): void {
  r.r.refs = REFCOUNT_SATURATED;
  r.bad = what;
}

function fxRead(_t: Thread, r: refcount_t): void {
  r.old = r.r.refs;
}
function fxSet(_t: Thread, r: refcount_t, n: number): void {
  r.r.refs = n | 0;
}
/** __refcount_add */
function fxAdd(_t: Thread, r: refcount_t, i: number): void {
  const old = r.r.refs;
  r.r.refs = (old + i) | 0;
  r.old = old;
  r.bad = null;
  if (old === 0) saturate(r, REFCOUNT_ADD_UAF);
  else if (old < 0 || old + i < 0 || old + i > 0x7fffffff) saturate(r, REFCOUNT_ADD_OVF);
}
/** __refcount_add_not_zero: the cmpxchg loop ends in one transition (or none from 0). */
function fxAddNotZero(_t: Thread, r: refcount_t, i: number): void {
  const old = r.r.refs;
  r.old = old;
  r.bad = null;
  if (old === 0) return;
  r.r.refs = (old + i) | 0;
  if (old < 0 || old + i < 0 || old + i > 0x7fffffff) saturate(r, REFCOUNT_ADD_NOT_ZERO_OVF);
}
/** __refcount_sub_and_test */
function fxSubAndTest(_t: Thread, r: refcount_t, i: number): void {
  const old = r.r.refs;
  r.r.refs = (old - i) | 0;
  r.old = old;
  r.bad = null;
  if (old === i) return;
  if (old < 0 || old - i < 0) saturate(r, REFCOUNT_SUB_UAF);
}
/** __refcount_dec */
function fxDec(_t: Thread, r: refcount_t): void {
  const old = r.r.refs;
  r.r.refs = (old - 1) | 0;
  r.old = old;
  r.bad = null;
  if (old <= 1) saturate(r, REFCOUNT_DEC_LEAK);
}

/** refcount_warn_saturate's WARN_ONCE, printed where lib/refcount.c prints it. */
function warnIfSaturated(cur: Task, r: refcount_t): void {
  const what = r.bad;
  if (what === null) return;
  r.bad = null;
  const stack = cur.stack;
  stack.push('refcount_warn_saturate');
  WARN_ON_ONCE(cur, true, `refcount_t: ${what}.`);
  stack.pop();
}

export function* refcount_set(cur: Task, r: refcount_t, n: number): KernelBody<void> {
  yield cur.thread.write(r.obj, fxSet, r, n);
}

export function* refcount_read(cur: Task, r: refcount_t): KernelBody<number> {
  yield cur.thread.read(r.obj, fxRead, r);
  return r.old;
}

/** refcount_add(i, r): WARNs on an addition on 0 (use-after-free) or an overflow. */
export function* refcount_add(cur: Task, i: number, r: refcount_t): KernelBody<void> {
  yield cur.thread.write(r.obj, fxAdd, r, i);
  warnIfSaturated(cur, r);
}

export function* refcount_inc(cur: Task, r: refcount_t): KernelBody<void> {
  yield cur.thread.write(r.obj, fxAdd, r, 1);
  warnIfSaturated(cur, r);
}

/** refcount_add_not_zero(i, r): false (and no change) when the count is 0. */
export function* refcount_add_not_zero(cur: Task, i: number, r: refcount_t): KernelBody<boolean> {
  yield cur.thread.write(r.obj, fxAddNotZero, r, i);
  warnIfSaturated(cur, r);
  return r.old !== 0;
}

export function* refcount_inc_not_zero(cur: Task, r: refcount_t): KernelBody<boolean> {
  yield cur.thread.write(r.obj, fxAddNotZero, r, 1);
  warnIfSaturated(cur, r);
  return r.old !== 0;
}

/** refcount_sub_and_test(i, r): true when this dropped the last reference; WARNs on underflow. */
export function* refcount_sub_and_test(cur: Task, i: number, r: refcount_t): KernelBody<boolean> {
  yield cur.thread.write(r.obj, fxSubAndTest, r, i);
  warnIfSaturated(cur, r);
  return r.old === i;
}

export function* refcount_dec_and_test(cur: Task, r: refcount_t): KernelBody<boolean> {
  yield cur.thread.write(r.obj, fxSubAndTest, r, 1);
  warnIfSaturated(cur, r);
  return r.old === 1;
}

/** refcount_dec(r): a decrement that must not drop the last reference (WARNs: leaking memory). */
export function* refcount_dec(cur: Task, r: refcount_t): KernelBody<void> {
  yield cur.thread.write(r.obj, fxDec, r);
  warnIfSaturated(cur, r);
}
