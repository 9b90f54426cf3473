/**
 * Atomic bit operations on an unsigned long bitmap (include/asm-generic/bitops/atomic.h and
 * instrumented-atomic.h, v6.12): set_bit, clear_bit, change_bit, test_and_set_bit,
 * test_and_clear_bit, and the plain read test_bit (include/asm-generic/bitops/generic-non-atomic.h
 * const_test_bit). Each is one visible step on the bitmap's shared object, the RMW done by the
 * op's effect inside it; test_bit is a read step, the others write steps.
 *
 * The model is sequentially consistent: the _lock/_unlock forms (test_and_set_bit_lock,
 * clear_bit_unlock) exist for their names and behave as the fully ordered ones.
 */
import type { Thread } from '../../scheduler';
import type { KernelBody, Machine } from './machine';
import type { Task } from './task';

export const BITS_PER_LONG = 64;

/** DECLARE_BITMAP(name, bits): one or more unsigned longs, here one shared object. */
export class bitmap {
  readonly obj: number;
  /** One 0/1 per bit (registered with the engine: conformance mode checks every access). */
  readonly bits: number[];
  /** The old bit an op's effect hands to the code after its yield (same step). */
  ret = 0;
  constructor(
    m: Machine,
    readonly name: string,
    readonly nbits: number,
    /** sim.shared's guard: where else the bits may be read (a wait_var_event condition). */
    guard?: () => boolean,
  ) {
    if (!Number.isInteger(nbits) || nbits <= 0) throw new Error(`DECLARE_BITMAP(${name}): bits must be a positive integer, got ${nbits}`);
    this.obj = m.sim.object(name);
    this.bits = m.sim.shared(this.obj, new Array<number>(nbits).fill(0), guard);
  }
  toString(): string {
    return this.name;
  }
}

/** DECLARE_BITMAP(name, bits); `unsigned long flags` is DECLARE_BITMAP(name, BITS_PER_LONG). */
export function DECLARE_BITMAP(m: Machine, name: string, bits = BITS_PER_LONG, guard?: () => boolean): bitmap {
  return new bitmap(m, name, bits, guard);
}

function check(nr: number, addr: bitmap): void {
  if (!Number.isInteger(nr) || nr < 0 || nr >= addr.nbits) throw new Error(`bit ${nr} out of range of ${addr.name} (${addr.nbits} bits)`);
}

function fxTest(_t: Thread, a: bitmap, nr: number): void {
  a.ret = a.bits[nr];
}
function fxSet(_t: Thread, a: bitmap, nr: number): void {
  a.ret = a.bits[nr];
  a.bits[nr] = 1;
}
function fxClear(_t: Thread, a: bitmap, nr: number): void {
  a.ret = a.bits[nr];
  a.bits[nr] = 0;
}
function fxChange(_t: Thread, a: bitmap, nr: number): void {
  a.ret = a.bits[nr];
  a.bits[nr] = a.ret ^ 1;
}

/** test_bit(nr, addr): a plain read of the bit. */
export function* test_bit(cur: Task, nr: number, addr: bitmap): KernelBody<boolean> {
  check(nr, addr);
  yield cur.thread.read(addr.obj, fxTest, addr, nr);
  return addr.ret === 1;
}

export function* set_bit(cur: Task, nr: number, addr: bitmap): KernelBody<void> {
  check(nr, addr);
  yield cur.thread.write(addr.obj, fxSet, addr, nr);
}

export function* clear_bit(cur: Task, nr: number, addr: bitmap): KernelBody<void> {
  check(nr, addr);
  yield cur.thread.write(addr.obj, fxClear, addr, nr);
}

export function* change_bit(cur: Task, nr: number, addr: bitmap): KernelBody<void> {
  check(nr, addr);
  yield cur.thread.write(addr.obj, fxChange, addr, nr);
}

/** test_and_set_bit(nr, addr): set the bit; true if it was already set. One step. */
export function* test_and_set_bit(cur: Task, nr: number, addr: bitmap): KernelBody<boolean> {
  check(nr, addr);
  yield cur.thread.write(addr.obj, fxSet, addr, nr);
  return addr.ret === 1;
}

/** test_and_clear_bit(nr, addr): clear the bit; true if it was set. One step. */
export function* test_and_clear_bit(cur: Task, nr: number, addr: bitmap): KernelBody<boolean> {
  check(nr, addr);
  yield cur.thread.write(addr.obj, fxClear, addr, nr);
  return addr.ret === 1;
}

export function* test_and_change_bit(cur: Task, nr: number, addr: bitmap): KernelBody<boolean> {
  check(nr, addr);
  yield cur.thread.write(addr.obj, fxChange, addr, nr);
  return addr.ret === 1;
}

/** test_and_set_bit_lock / clear_bit_unlock (include/asm-generic/bitops/lock.h): SC here. */
export const test_and_set_bit_lock = test_and_set_bit;
export const clear_bit_unlock = clear_bit;
