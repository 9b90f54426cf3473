/**
 * Threads and frames. A thread is a stack of generator frames: its body at the bottom, and an
 * interrupt handler pushed on top whenever an interrupt is delivered to it. Each frame has its
 * own run state, so a thread blocked on a lock can take an interrupt, and the blocked frame can
 * be woken while the handler runs.
 *
 * The op methods write the thread's op register and return OP; see ops.ts.
 */
import type { Engine } from './engine';
import type { InterruptSource } from './interrupt';
import { NO_OBJECT, OP, OP_ACCESS, OP_ACQUIRE, OP_BLOCK, OP_RELAX, OP_RELEASE, OP_SPIN, OP_WORK, type Op } from './ops';
import type { Resource } from './resource';
import type { Waitable } from './waitable';

export type Body = Generator<unknown, unknown, unknown>;
export type ThreadFn = (t: Thread) => Body;

export const F_RUN = 0;
export const F_BLOCKED = 1;
export const F_SPIN = 2;

export class Frame {
  state = F_RUN;
  /** Set when a frame below an interrupt handler is woken; applied when it is on top again. */
  woken = false;
  wakeClock = 0;
  /** Op register saved while an interrupt handler runs above this frame. */
  sKind = 0;
  sA = 0;
  sB = 0;
  sObj: unknown = null;
  sInterruptible = true;
  /** Timed mode: local work moved after an interrupt that split it. */
  deferredNs = 0;
  constructor(
    readonly thread: Thread,
    readonly gen: Body,
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
  /** A visible read of shared object `obj`: a scheduling point. */
  read(obj: number): Op {
    this.opKind = OP_ACCESS;
    this.opA = obj;
    this.opB = 0;
    return OP;
  }
  /** A visible write of shared object `obj`: a scheduling point. */
  write(obj: number): Op {
    this.opKind = OP_ACCESS;
    this.opA = obj;
    this.opB = 1;
    return OP;
  }
  access(obj: number, write: boolean): Op {
    this.opKind = OP_ACCESS;
    this.opA = obj;
    this.opB = write ? 1 : 0;
    return OP;
  }
  /** A scheduling point that touches no particular object (e.g. after enabling interrupts). */
  point(): Op {
    this.opKind = OP_ACCESS;
    this.opA = NO_OBJECT;
    this.opB = 0;
    return OP;
  }
  /** A scheduling point that marks a retry loop iteration (cpu_relax); fair strategies use it. */
  relax(): Op {
    this.opKind = OP_RELAX;
    this.opA = NO_OBJECT;
    this.opB = 0;
    return OP;
  }
  /** Block on `w` until woken. Check-then-block is atomic: no scheduling point in between. */
  block(w: Waitable): Op {
    this.opKind = OP_BLOCK;
    this.opObj = w;
    return OP;
  }
  /**
   * Spin until `pred()` holds. The thread is blocked on the predicate (no busy steps); it is
   * re-checked after every step and taken up again when true. Interrupts still land while it
   * spins if the thread is interruptible.
   */
  spinUntil(pred: () => boolean): Op {
    this.opKind = OP_SPIN;
    this.opObj = pred;
    return OP;
  }

  /** Take a unit of `r` (a visible step); if none is free, wait for the FIFO hand-over. */
  acquire(r: Resource): Op {
    this.opKind = OP_ACQUIRE;
    this.opA = r.obj;
    this.opB = 1;
    this.opObj = r;
    return OP;
  }
  /** Give a unit of `r` back (a visible step): straight to the first waiter if there is one. */
  release(r: Resource): Op {
    this.opKind = OP_RELEASE;
    this.opA = r.obj;
    this.opB = 1;
    this.opObj = r;
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
