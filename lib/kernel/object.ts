/**
 * Object lifetimes: a minimal slab object model. A KObject is one allocation (a struct with named
 * fields) with a fake kernel address and a kmalloc size class; kfree marks it freed, and every
 * READ_ONCE / WRITE_ONCE of it is a visible engine step on the object that detectors see (the
 * objectAccess hook), so a read racing with a free is explored like any other race. The memory
 * model (lib/mm) will back these with real kmalloc caches; kmalloc(size, gfp) will return them.
 *
 * Simplifications: the size is bookkeeping only (no allocator, no failures); a freed object keeps
 * its field values (no poisoning, no reuse), so a use-after-free reads stale data and the run goes
 * on, as a KASAN kernel does after its report.
 */
import type { KernelBody, Machine } from './machine';
import type { Task } from './task';

/** Who allocated or freed an object, for KASAN-style reports. */
export interface ObjectEvent {
  task: string;
  pid: number;
  cpu: number;
  context: string;
  /** Innermost frame first. */
  stack: string[];
  time: number;
  how: string;
}

/** The kmalloc caches an allocation of `size` bytes comes from (KMALLOC_MIN_SIZE 8, x86-64). */
const KMALLOC_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

/** The kmalloc size class (bytes) serving `size`, or the size itself past KMALLOC_MAX_CACHE_SIZE. */
export function kmalloc_size_class(size: number): number {
  for (const s of KMALLOC_SIZES) if (size <= s) return s;
  return size;
}

/** The slab cache name KASAN prints: kmalloc-64, kmalloc-1k, ... */
export function kmalloc_cache_name(size: number): string {
  const s = kmalloc_size_class(size);
  if (s > 8192) return 'kmalloc-large';
  return s >= 1024 ? `kmalloc-${s / 1024}k` : `kmalloc-${s}`;
}

/** Per machine: allocation serials, for names and addresses that depend only on the schedule. */
const serials = new WeakMap<Machine, { next: number }>();

export class KObject<F extends object = Record<string, unknown>> {
  /** Set by kfree (or the RCU callback of kfree_rcu). */
  freed = false;
  /** kfree calls seen: more than one is a double free. */
  frees = 0;
  freedBy: ObjectEvent | null = null;
  /** Set when the object was handed to call_rcu / kfree_rcu (KASAN's aux stack). */
  rcuQueuedBy: ObjectEvent | null = null;
  /** The field of the access the objectAccess hook is reporting (the hook passes only the object). */
  accessField: string | null = null;
  /** The engine object its accesses touch. */
  readonly id: number;
  /** The struct's fields (registered with the engine as the object's state). */
  readonly fields: F;
  /** Fake kernel virtual address (8 KiB apart per allocation). */
  readonly addr: number;
  readonly cache: string;

  constructor(
    m: Machine,
    /** The object's type (struct name): the "object class" of fingerprints. */
    readonly name: string,
    fields: F,
    readonly size: number,
    readonly serial: number,
    readonly allocatedBy: ObjectEvent,
  ) {
    this.id = m.sim.object(`${name}#${serial}`);
    // The fields are shared state: conformance mode checks that only the object's own steps
    // (READ_ONCE, WRITE_ONCE, smp_load_acquire, ...) touch them.
    this.fields = m.sim.shared(this.id, fields);
    this.addr = 0x04000000 + serial * 0x2000;
    this.cache = kmalloc_cache_name(size);
  }

  /** Byte offset of a field: fields are 8-byte words in declaration order. */
  offsetOf(field: keyof F): number {
    const i = Object.keys(this.fields).indexOf(field as string);
    return i < 0 ? 0 : i * 8;
  }

  /** "ffff888104002000" style address of the object (plus an offset). */
  address(offset = 0): string {
    return `ffff8881${(this.addr + offset).toString(16).padStart(8, '0')}`;
  }

  toString(): string {
    return `${this.name}#${this.serial}`;
  }
}

/** Where `cur` is now, for allocation and free records. */
export function objectEvent(m: Machine, cur: Task | null, how: string): ObjectEvent {
  if (cur === null) return { task: 'swapper/0', pid: 0, cpu: 0, context: 'task', stack: ['(boot)'], time: m.sim.now(), how };
  return { task: cur.comm, pid: cur.pid, cpu: cur.cpu.id, context: cur.context, stack: [...cur.stack].reverse(), time: m.sim.now(), how };
}

/**
 * Allocate an object outside the simulated run (a scenario's init path, before its threads
 * start) or on behalf of `cur` without a step: the allocation itself touches nothing shared.
 */
export function kobject_alloc<F extends object>(m: Machine, name: string, fields: F, opts: { size?: number; cur?: Task } = {}): KObject<F> {
  let s = serials.get(m);
  if (s === undefined) serials.set(m, (s = { next: 1 }));
  const size = opts.size ?? Math.max(8, Object.keys(fields).length * 8);
  if (!Number.isInteger(size) || size <= 0) throw new Error(`kobject_alloc(${name}): size must be a positive integer, got ${size}`);
  return new KObject(m, name, { ...fields }, size, s.next++, objectEvent(m, opts.cur ?? null, 'kzalloc'));
}

/**
 * kzalloc(sizeof(struct name), GFP_KERNEL) with the fields initialised: a new object owned by the
 * caller until it publishes it (rcu_assign_pointer, a list, a shared field).
 */
export function* kzalloc_obj<F extends object>(cur: Task, name: string, fields: F, size?: number): KernelBody<KObject<F>> {
  return kobject_alloc(cur.cpu.machine, name, fields, { size, cur });
}

/**
 * The part of every free: a visible write of the object (it races with readers), then the
 * objectFree hook. `how` names the path (kfree, kfree_rcu) for reports.
 */
export function* slab_free(cur: Task, obj: KObject<object>, how: string): KernelBody<void> {
  yield cur.thread.write(obj.id);
  obj.frees++;
  if (!obj.freed) {
    obj.freed = true;
    obj.freedBy = objectEvent(cur.cpu.machine, cur, how);
  }
  cur.cpu.machine.emit('objectFree', cur, obj, how);
}

/** kfree(obj): NULL is a no-op, as in the kernel. A second kfree is a double free (the rcu detector reports it). */
export function* kfree(cur: Task, obj: KObject<object> | null): KernelBody<void> {
  if (obj === null) return;
  yield* slab_free(cur, obj, 'kfree');
}

/** READ_ONCE(obj->field): a visible read of the object. */
export function* READ_ONCE<F extends object, K extends keyof F>(cur: Task, obj: KObject<F>, field: K): KernelBody<F[K]> {
  yield cur.thread.read(obj.id);
  obj.accessField = field as string;
  cur.cpu.machine.emit('objectAccess', cur, obj, 'read');
  return obj.fields[field];
}

/** WRITE_ONCE(obj->field, v): a visible write of the object. */
export function* WRITE_ONCE<F extends object, K extends keyof F>(cur: Task, obj: KObject<F>, field: K, v: F[K]): KernelBody<void> {
  yield cur.thread.write(obj.id);
  obj.accessField = field as string;
  cur.cpu.machine.emit('objectAccess', cur, obj, 'write');
  obj.fields[field] = v;
}

/** Narrow a hook's `obj` argument. */
export function isKObject(x: unknown): x is KObject<object> {
  return x instanceof KObject;
}
