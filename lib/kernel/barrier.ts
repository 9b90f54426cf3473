/**
 * smp_store_release / smp_load_acquire (include/asm-generic/barrier.h, v6.12) on a field of a
 * slab object, next to READ_ONCE / WRITE_ONCE (object.ts). Each is one visible step on the
 * object: a write for the store, a read for the load, seen by the KASAN checker like any other
 * access of the object.
 *
 * The model is sequentially consistent: every access is seen by every CPU in one global order,
 * so release/acquire are no stronger than READ_ONCE/WRITE_ONCE here, and a bug that needs a
 * weaker ordering (a missing barrier between two plain accesses) is not found. The primitives
 * exist so a transcription keeps the kernel's names and each access stays a step.
 */
import type { KernelBody } from './machine';
import type { KObject } from './object';
import type { Task } from './task';

/** smp_store_release(&obj->field, v). */
export function* smp_store_release<F extends object, K extends keyof F>(cur: Task, obj: KObject<F>, field: K, v: F[K]): KernelBody<void> {
  yield cur.thread.write(obj.id);
  obj.accessField = field as string;
  cur.cpu.machine.emit('objectAccess', cur, obj, 'write');
  obj.fields[field] = v;
}

/** smp_load_acquire(&obj->field). */
export function* smp_load_acquire<F extends object, K extends keyof F>(cur: Task, obj: KObject<F>, field: K): KernelBody<F[K]> {
  yield cur.thread.read(obj.id);
  obj.accessField = field as string;
  cur.cpu.machine.emit('objectAccess', cur, obj, 'read');
  return obj.fields[field];
}

/** smp_mb() and friends: no-ops in a sequentially consistent model (no step either). */
export function smp_mb(): void {}
export const smp_rmb = smp_mb;
export const smp_wmb = smp_mb;
export const smp_mb__before_atomic = smp_mb;
export const smp_mb__after_atomic = smp_mb;
