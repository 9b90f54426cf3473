/**
 * Threads and frames. A thread is a stack of generator frames: its body at the bottom, and an
 * interrupt handler pushed on top whenever an interrupt is delivered to it. Each frame has its
 * own run state, so a thread blocked on a lock can take an interrupt, and the blocked frame can
 * be woken while the handler runs.
 *
 * The op methods write the thread's op register and return OP; see ops.ts.
 */
import { OpError } from './crash';
import type { Engine } from './engine';
import { describeValue } from './errors';
import type { InterruptSource } from './interrupt';
import { NO_OBJECT, OP, OP_ACCESS, OP_ACQUIRE, OP_BLOCK, OP_RELEASE, OP_SPIN, OP_WORK, type Op } from './ops';
import type { Resource } from './resource';
import type { Waitable } from './waitable';

export type Body = Generator<unknown, unknown, unknown>;
export type ThreadFn = (t: Thread) => Body;

const GENERATOR_PROTOTYPE = (Object.getPrototypeOf(function* () {}) as { prototype: Generator }).prototype;
/**
 * %GeneratorPrototype%.next, called directly: every thread body is a generator of its own
 * closure, each with its own prototype and so its own map, and a `gen.next` lookup over many
 * maps goes megamorphic (measured: 3% of a timed run of 64 threads).
 */
export const GEN_NEXT = GENERATOR_PROTOTYPE.next;

/** A thread body or interrupt handler must be a generator (what a function* returns). */
export function checkBody(t: Thread, body: unknown, what: string): void {
  if (typeof body === 'object' && body !== null && Object.prototype.isPrototypeOf.call(GENERATOR_PROTOTYPE, body)) return;
  const got = typeof body === 'object' && body !== null ? 'an object that is not a generator' : describeValue(body);
  throw new OpError(t, `${what} returned ${got}: write it as a generator function, \`function* (t) { ... }\``);
}

/**
 * An op's atomic effect: what the op does to shared state, run by the engine inside the op's
 * own step (an access when it is performed, an acquire when the unit is taken — at once, or in
 * the releaser's step at a hand-over — a release before the unit is handed on, a spin when its
 * predicate is seen true). `depth` is the nesting depth of the frame the op belongs to (a
 * waiter handed a lock while an interrupt handler runs above it is not the top frame). An
 * effect never yields; static functions with arguments keep the hot path allocation-free.
 */
export type Effect = (t: Thread, a: any, b: any, depth: number) => void;

export const F_RUN = 0;
export const F_BLOCKED = 1;
export const F_SPIN = 2;

export class Frame {
  state = F_RUN;
  wakeClock = 0;
  /** Op register saved while an interrupt handler runs above this frame. */
  sKind = 0;
  sA = 0;
  sB = 0;
  sObj: unknown = null;
  sFx: Effect | null = null;
  sFxA: unknown = null;
  sFxB: unknown = null;
  sInterruptible = true;
  /** The interrupted op's declared spin reads (see Thread.opReads). */
  sReads: readonly number[] | null = null;
  /** The effect of the acquire this frame is blocked in, run at the hand-over. */
  hoFx: Effect | null = null;
  hoFxA: unknown = null;
  hoFxB: unknown = null;
  /** Timed mode: local work moved after an interrupt that split it. */
  deferredNs = 0;
  constructor(
    readonly thread: Thread,
    public gen: Body,
    /** The interrupt whose handler this frame runs, or null for the thread body. */
    readonly irq: InterruptSource | null,
  ) {}
}

export class Thread {
  /** Virtual clock in integer ns. Never runs backwards except when an interrupt splits work. */
  clock: number;
  readonly frames: Frame[] = [];
  top!: Frame;
  done = false;

  // Op register: what the last yield asked for (or a pending state the engine set).
  opKind = 0;
  opA = 0;
  opB = 0;
  opObj: unknown = null;
  /** The op's effect and its arguments (null: the op has none). */
  opFx: Effect | null = null;
  opFxA: unknown = null;
  opFxB: unknown = null;
  /** With Engine.captureOps: where the pending op was issued (crash reports). */
  opSite: Error | null = null;
  /**
   * The shared objects a spinUntil predicate reads (partial-order reduction: a step writing one
   * of them may make it true). null: undeclared, the predicate may read anything.
   */
  opReads: readonly number[] | null = null;
  /** Not started yet: its body runs to its first op in a step of its own (P_START). */
  starting = false;

  /** Clock when the current run of local work began (timed-mode interrupt splitting). */
  workStart = 0;
  /** Pending interrupt sources targeting this thread, ascending by id. */
  readonly pendingIrqs: InterruptSource[] = [];
  /** Bookkeeping for the engine's ready structures. */
  inReady = false;
  inSpinners = false;
  inIrqWatch = false;
  /** @internal use `interruptible`; the engine reads and restores it directly. */
  _interruptible = true;
  /** Clock when events were last masked (-1 while interruptible): masked-span accounting. */
  maskedAt = -1;
  /** Slot for the layer above (the kernel model keeps its CPU/task state here). */
  local: any = undefined;
  /**
   * A daemon thread (an idle loop waiting for interrupts) never counts as stuck: a run whose
   * other threads have all finished is done even though the daemons still wait.
   */
  daemon = false;
  /** Threads joining this one wait here (made by the first join). */
  exitWait: Waitable | null = null;

  constructor(
    readonly id: number,
    readonly name: string,
    readonly sim: Engine,
    clock: number,
  ) {
    this.clock = clock;
  }

  /** Whether asynchronous events may be delivered now (the kernel model: IRQs enabled). */
  get interruptible(): boolean {
    return this._interruptible;
  }
  set interruptible(v: boolean) {
    if (v === this._interruptible) return;
    this._interruptible = v;
    this.sim._maskChanged(this, v);
    if (this.pendingIrqs.length > 0) this.sim._interruptibilityChanged(this);
  }

  /** Depth of interrupt nesting (0 = thread body). */
  get nesting(): number {
    return this.frames.length - 1;
  }

  // ---- ops (yield their result at once) ----

  /** Local work for `ns` nanoseconds of virtual time. */
  work(ns: number): Op {
    this.opKind = OP_WORK;
    this.opA = ns;
    return OP;
  }
  /** A visible read of shared object `obj`: a scheduling point; `fx` runs inside the step. */
  read(obj: number, fx: Effect | null = null, a: unknown = null, b: unknown = null): Op {
    return this.access(obj, false, fx, a, b);
  }
  /** A visible write of shared object `obj`: a scheduling point; `fx` runs inside the step. */
  write(obj: number, fx: Effect | null = null, a: unknown = null, b: unknown = null): Op {
    return this.access(obj, true, fx, a, b);
  }
  access(obj: number, write: boolean, fx: Effect | null = null, a: unknown = null, b: unknown = null): Op {
    this.opKind = OP_ACCESS;
    this.opA = obj;
    this.opB = write ? 1 : 0;
    this.opFx = fx;
    this.opFxA = a;
    this.opFxB = b;
    if (this.sim.captureOps) this.opSite = new Error('op issued here');
    return OP;
  }
  /** A scheduling point that touches no particular object (e.g. after enabling interrupts). */
  point(): Op {
    return this.access(NO_OBJECT, false, null, null, null);
  }
  /**
   * Wait until `other` has finished (its body returned and no interrupt is still due on it):
   * `yield* t.join(other)`. The check is a visible step; the exit wakes the joiners.
   */
  *join(other: Thread): Generator<unknown, void, unknown> {
    yield this.point();
    this.sim._joinCheck(other);
    while (!other.done) {
      yield this.block(this.sim._exitWaitable(other));
      this.sim._joinCheck(other);
    }
  }

  /** Block on `w` until woken. Check-then-block is atomic: no scheduling point in between. */
  block(w: Waitable): Op {
    this.opKind = OP_BLOCK;
    this.opObj = w;
    if (this.sim.captureOps) this.opSite = new Error('op issued here');
    return OP;
  }
  /**
   * Spin until `pred()` holds. The thread is blocked on the predicate (no busy steps); it is
   * re-checked after every step and taken up again when true. Interrupts still land while it
   * spins if the thread is interruptible. `reads`: the shared objects `pred` reads (DPOR's
   * footprint of the spin; without it the spin depends on every step).
   */
  spinUntil(pred: () => boolean, fx: Effect | null = null, a: unknown = null, b: unknown = null, reads: readonly number[] | null = null): Op {
    this.opKind = OP_SPIN;
    this.opObj = pred;
    this.opReads = reads;
    this.opFx = fx;
    this.opFxA = a;
    this.opFxB = b;
    if (this.sim.captureOps) this.opSite = new Error('op issued here');
    return OP;
  }

  /**
   * Take a unit of `r` (a visible step); if none is free, wait for the FIFO hand-over. `fx`
   * runs when the unit is taken: in this step, or in the releaser's step at the hand-over.
   */
  acquire(r: Resource, fx: Effect | null = null, a: unknown = null, b: unknown = null): Op {
    this.opKind = OP_ACQUIRE;
    this.opA = r.obj;
    this.opB = 1;
    this.opObj = r;
    this.opFx = fx;
    this.opFxA = a;
    this.opFxB = b;
    if (this.sim.captureOps) this.opSite = new Error('op issued here');
    return OP;
  }
  /**
   * Give a unit of `r` back (a visible step): straight to the first waiter if there is one.
   * `fx` runs in the step before the unit is handed on.
   */
  release(r: Resource, fx: Effect | null = null, a: unknown = null, b: unknown = null): Op {
    this.opKind = OP_RELEASE;
    this.opA = r.obj;
    this.opB = 1;
    this.opObj = r;
    this.opFx = fx;
    this.opFxA = a;
    this.opFxB = b;
    if (this.sim.captureOps) this.opSite = new Error('op issued here');
    return OP;
  }

  // ---- synchronous actions (no yield) ----

  /** Wake the first waiter of `w`; it continues no earlier than this thread's clock. */
  wake(w: Waitable): Thread | null {
    return this.sim.wake(w);
  }
  wakeAll(w: Waitable): number {
    return this.sim.wakeAll(w);
  }
  raise(src: InterruptSource): void {
    this.sim.raise(src);
  }
}
