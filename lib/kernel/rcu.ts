/**
 * RCU (include/linux/rcupdate.h, kernel/rcu/tree.c), modelled as PREEMPT_RCU (rcu_preempt):
 *
 * - Read side: rcu_read_lock/unlock count the task's nesting on `cur.rcu_read_depth` (so
 *   might_sleep reports "RCU nest depth"); rcu_read_lock_bh also disables bottom halves and
 *   rcu_read_lock_sched disables preemption, as the kernel's do. Every context (a task body, or a
 *   handler nested on it) has its own read-side critical section with an id, begun by the
 *   outermost lock of any flavour and ended by the matching unlock.
 * - Grace periods: numbered; one runs at a time. A request (synchronize_rcu, call_rcu) needs the
 *   next grace period that starts after it (rcu_seq_snap): the current one if none runs, else the
 *   one after. A grace period waits for exactly the sections active when it started and ends at
 *   the unlock of the last of them; a section begun later never delays it. Since the flavours
 *   were consolidated (v4.20) a grace period waits for bh and sched sections too.
 * - Callbacks: call_rcu queues on the calling CPU; when their grace period has ended, that CPU's
 *   local timer interrupt is made pending (rcu_sched_clock_irq raises RCU_SOFTIRQ there) and they
 *   run in RCU_SOFTIRQ (rcu_core -> rcu_do_batch), in queue order, in softirq context. The softirq
 *   action and the tick hook are registered at the first call_rcu, so a machine that never uses
 *   RCU gets no extra threads, interrupts or timers.
 * - RCU-protected pointers: rcu_pointer slots; rcu_dereference is a visible read that records the
 *   object in the reader's section (the rcu detector checks frees and later uses against it).
 *
 * Simplifications: only explicit read-side sections delay a grace period: preempt-, irq- and
 * bh-disabled regions and interrupt handlers are not implicit readers. A grace period with no
 * readers to wait for ends at once (no rcu_gp_kthread, no jiffies-scale latency, no quiescent-state
 * forcing). Expedited grace periods are the normal ones. kfree_rcu frees from the RCU callback
 * (no kvfree_rcu batching through a workqueue). rcu_do_batch has no batch limit.
 */
import type { Cpu } from './cpu';
import type { KernelBody, Machine } from './machine';
import { objectEvent, slab_free, KObject } from './object';
import { local_bh_disable, local_bh_enable, preempt_disable, preempt_enable } from './preemption';
import { PREEMPT_OFFSET, softirq_count } from './preempt';
import { preempt_latency_start } from './preempt-ip';
import { might_sleep, set_task_state, sleep, try_to_wake_up } from './sched';
import { RCU_SOFTIRQ, open_softirq, raise_softirq_irqoff } from './softirq';
import type { Task } from './task';
import { tick_raise } from './timer';

export type RcuFlavor = 'rcu' | 'rcu_bh' | 'rcu_sched';

/** One read-side critical section of one context (a task body or a handler nested on it). */
export class RcuReader {
  nesting = 1;
  active = true;
  /** Virtual time the section ended, or -1. */
  end = -1;
  /** Objects rcu_dereference() returned in this section, in order, each once. */
  readonly derefs: unknown[] = [];

  constructor(
    readonly id: number,
    readonly task: Task,
    /** Nesting depth of the context (0 = task body). */
    readonly depth: number,
    readonly flavor: RcuFlavor,
    readonly start: number,
    /** The context's stack at the outermost lock, innermost frame first. */
    readonly stack: string[],
    readonly context: string,
    readonly cpu: number,
  ) {}

  /** The function that took the outermost lock. */
  get site(): string {
    return this.stack.length > 0 ? this.stack[0] : this.context;
  }

  toString(): string {
    return `${this.flavor}_read_lock section #${this.id} of ${this.task} (${this.context}) at ${this.site}`;
  }
}

/** A grace period: the sections it waits for are those active when it started. */
export class GracePeriod {
  end = -1;
  constructor(
    readonly id: number,
    readonly start: number,
    readonly blockers: readonly RcuReader[],
    /** What requested it, for reports. */
    readonly by: string,
  ) {}

  /** The sections it still waits for. */
  get waitingOn(): RcuReader[] {
    return this.blockers.filter((r) => r.active);
  }
}

export type RcuCallbackFn<H> = (cur: Task, head: H) => KernelBody;

export interface RcuCallback {
  /** Queue order over the whole machine (rcu_barrier waits up to a sequence number). */
  seq: number;
  head: unknown;
  func: RcuCallbackFn<unknown>;
  /** The grace period that must end before it may run. */
  gp: number;
  cpu: Cpu;
  name: string;
  queuedBy: string;
}

interface Waiter {
  task: Task;
  /** synchronize_rcu: the grace period needed; rcu_barrier: the last callback sequence awaited. */
  upto: number;
}

/** Per-machine RCU state, created at the first use. */
export class RcuState {
  /** The engine object every update-side operation touches (the rcu_state structure). */
  readonly obj: number;
  private nextReader = 1;
  /** Active sections, oldest first. */
  readonly active: RcuReader[] = [];
  /** Per task, per context depth: the latest section (active or ended). */
  private readonly contexts = new Map<Task, (RcuReader | null)[]>();
  /** Per task, per context depth: objects obtained with rcu_dereference -> the section that did. */
  private readonly held = new Map<Task, Map<unknown, RcuReader>[]>();
  /** Grace periods ended (the id of the last one). */
  completed = 0;
  /** The grace period in progress. */
  gp: GracePeriod | null = null;
  /** The last grace period that ended. */
  lastGp: GracePeriod | null = null;
  /** The highest grace period number requested. */
  needed = 0;
  readonly gpWaiters: Waiter[] = [];
  /** Per CPU: queued callbacks, in queue order (so ready ones are a prefix). */
  readonly cbs: RcuCallback[][];
  /** Per CPU: the callback running in RCU_SOFTIRQ now. */
  readonly invoking: (RcuCallback | null)[];
  nextCb = 1;
  readonly barrierWaiters: Waiter[] = [];
  softirqOpen = false;

  constructor(readonly m: Machine) {
    this.obj = m.sim.object('rcu_state');
    this.cbs = m.cpus.map(() => []);
    this.invoking = m.cpus.map(() => null);
  }

  /** The latest section of `cur`'s running context (active or ended), or null. */
  readerOf(cur: Task, depth = cur.depth): RcuReader | null {
    return this.contexts.get(cur)?.[depth] ?? null;
  }

  /** The section `cur`'s running context is in, or null. */
  activeReader(cur: Task): RcuReader | null {
    const r = this.readerOf(cur);
    return r !== null && r.active ? r : null;
  }

  /** rcu_read_lock of any flavour: a new section, or one more nesting level. */
  enter(cur: Task, flavor: RcuFlavor): void {
    let slots = this.contexts.get(cur);
    if (slots === undefined) this.contexts.set(cur, (slots = []));
    const d = cur.depth;
    const r = slots[d];
    if (r != null && r.active) {
      r.nesting++;
      return;
    }
    const nr = new RcuReader(this.nextReader++, cur, d, flavor, this.m.sim.now(), [...cur.stack].reverse(), cur.context, cur.cpu.id);
    slots[d] = nr;
    this.active.push(nr);
  }

  /**
   * rcu_read_unlock of any flavour: ends the section at the outermost one (unbalanced unlocks are
   * ignored), emits rcuReadUnlock, then ends the grace period if this was its last reader.
   */
  exit(cur: Task): void {
    const r = this.activeReader(cur);
    if (r !== null && --r.nesting === 0) {
      r.active = false;
      r.end = this.m.sim.now();
      this.active.splice(this.active.indexOf(r), 1);
    }
    this.m.emit('rcuReadUnlock', cur);
    const gp = this.gp;
    if (r !== null && !r.active && gp !== null && gp.blockers.includes(r) && gp.blockers.every((b) => !b.active)) this.endGp();
  }

  /** Record that `cur` obtained `obj` with rcu_dereference (in its section, if any). */
  noteDereference(cur: Task, obj: unknown): RcuReader | null {
    const r = this.activeReader(cur);
    if (r === null) return null;
    if (!r.derefs.includes(obj)) r.derefs.push(obj);
    let perTask = this.held.get(cur);
    if (perTask === undefined) this.held.set(cur, (perTask = []));
    (perTask[cur.depth] ??= new Map()).set(obj, r);
    return r;
  }

  /** The section in which `cur`'s running context obtained `obj` with rcu_dereference, or null. */
  heldBy(cur: Task, obj: unknown): RcuReader | null {
    return this.held.get(cur)?.[cur.depth]?.get(obj) ?? null;
  }

  /** The pointer is protected by other means from now on (a lock, a reference). */
  handoff(cur: Task, obj: unknown): void {
    this.held.get(cur)?.[cur.depth]?.delete(obj);
  }

  /** rcu_seq_snap: the grace period a request made now must wait for. */
  snap(): number {
    return this.gp !== null ? this.gp.id + 1 : this.completed + 1;
  }

  /** Ask for grace period `need`; starts one if none runs. */
  request(need: number, by: string): void {
    if (need > this.needed) this.needed = need;
    if (this.gp === null && this.needed > this.completed) this.startGp(by);
  }

  private startGp(by: string): void {
    const gp = new GracePeriod(this.completed + 1, this.m.sim.now(), this.active.slice(), by);
    this.gp = gp;
    this.m.emit('rcuGracePeriod', 'start', gp.id);
    if (gp.blockers.length === 0) this.endGp();
  }

  private endGp(): void {
    const gp = this.gp!;
    const m = this.m;
    gp.end = m.sim.now();
    this.gp = null;
    this.lastGp = gp;
    this.completed = gp.id;
    m.emit('rcuGracePeriod', 'end', gp.id);
    for (let i = 0; i < this.gpWaiters.length; ) {
      const w = this.gpWaiters[i];
      if (w.upto <= this.completed) {
        this.gpWaiters.splice(i, 1);
        try_to_wake_up(w.task);
      } else i++;
    }
    // rcu_sched_clock_irq on each CPU with callbacks now ready raises RCU_SOFTIRQ there.
    for (const cpu of m.cpus) {
      const q = this.cbs[cpu.id];
      if (q.length > 0 && q[0].gp <= this.completed) tick_raise(cpu);
    }
    if (this.needed > this.completed) this.startGp('a request made while the previous grace period ran');
  }

  /** Whether a callback with sequence number <= upto is queued or running. */
  callbacksPending(upto: number): boolean {
    for (let c = 0; c < this.cbs.length; c++) {
      const q = this.cbs[c];
      if (q.length > 0 && q[0].seq <= upto) return true;
      const r = this.invoking[c];
      if (r !== null && r.seq <= upto) return true;
    }
    return false;
  }

  /** After a callback ran: wake the rcu_barrier callers it was the last for. */
  callbackDone(): void {
    for (let i = 0; i < this.barrierWaiters.length; ) {
      const w = this.barrierWaiters[i];
      if (!this.callbacksPending(w.upto)) {
        this.barrierWaiters.splice(i, 1);
        try_to_wake_up(w.task);
      } else i++;
    }
  }
}

const states = new WeakMap<Machine, RcuState>();

/** The machine's RCU state, created at its first use. */
export function rcuState(m: Machine): RcuState {
  let st = states.get(m);
  if (st === undefined) states.set(m, (st = new RcuState(m)));
  return st;
}

/** The machine's RCU state if anything has used RCU, else undefined. */
export function rcuStateIfUsed(m: Machine): RcuState | undefined {
  return states.get(m);
}

// ---------------------------------------------------------------------------------------------
// Read side
// ---------------------------------------------------------------------------------------------

/**
 * rcu_read_lock(): with CONFIG_PREEMPT_RCU it counts current->rcu_read_lock_nesting (what
 * rcu_preempt_depth() and might_sleep's "RCU nest depth" show); without it (preempt none or
 * voluntary builds) __rcu_read_lock() is preempt_disable(), so the section shows in
 * preempt_count and in_atomic() is 1 (include/linux/rcupdate.h, v6.12). `rcu_read_depth` counts
 * the nesting either way (the model's own bookkeeping); might_sleep reads the config.
 */
export function* rcu_read_lock(cur: Task): KernelBody<void> {
  cur.rcu_read_depth++;
  if (!cur.cpu.machine.kernel.PREEMPT_RCU) {
    cur.preempt_count += PREEMPT_OFFSET;
    preempt_latency_start(cur, PREEMPT_OFFSET, cur.site);
  }
  rcuState(cur.cpu.machine).enter(cur, 'rcu');
  cur.cpu.machine.emit('rcuReadLock', cur);
}

export function* rcu_read_unlock(cur: Task): KernelBody<void> {
  if (cur.rcu_read_depth > 0) {
    cur.rcu_read_depth--;
    // preempt_enable() without PREEMPT_RCU: never a preemption point there (no PREEMPTION)
    if (!cur.cpu.machine.kernel.PREEMPT_RCU) cur.preempt_count -= PREEMPT_OFFSET;
  }
  rcuState(cur.cpu.machine).exit(cur);
}

/** rcu_read_lock_bh: local_bh_disable, then a read-side section (not counted in rcu_read_depth). */
export function* rcu_read_lock_bh(cur: Task): KernelBody<void> {
  yield* local_bh_disable(cur);
  rcuState(cur.cpu.machine).enter(cur, 'rcu_bh');
  cur.cpu.machine.emit('rcuReadLock', cur);
}

/** rcu_read_unlock_bh: the section ends, then local_bh_enable (pending softirqs may run there). */
export function* rcu_read_unlock_bh(cur: Task): KernelBody<void> {
  rcuState(cur.cpu.machine).exit(cur);
  yield* local_bh_enable(cur);
}

/** rcu_read_lock_sched: preempt_disable, then a read-side section. */
export function* rcu_read_lock_sched(cur: Task): KernelBody<void> {
  yield* preempt_disable(cur);
  rcuState(cur.cpu.machine).enter(cur, 'rcu_sched');
  cur.cpu.machine.emit('rcuReadLock', cur);
}

export function* rcu_read_unlock_sched(cur: Task): KernelBody<void> {
  rcuState(cur.cpu.machine).exit(cur);
  yield* preempt_enable(cur);
}

/** rcu_read_lock_held(): lockdep's view, true inside an explicit section of this context. */
export function rcu_read_lock_held(cur: Task): boolean {
  const st = rcuStateIfUsed(cur.cpu.machine);
  return st !== undefined && st.activeReader(cur) !== null;
}

// ---------------------------------------------------------------------------------------------
// RCU-protected pointers
// ---------------------------------------------------------------------------------------------

/** An `__rcu` pointer: a slot readers load with rcu_dereference and updaters publish into. */
export class rcu_pointer<T = KObject> {
  readonly obj: number;
  constructor(
    m: Machine,
    readonly name: string,
    public value: T | null,
  ) {
    this.obj = m.sim.object(`rcu_ptr:${name}`);
  }
  toString(): string {
    return this.name;
  }
}

/** A pointer slot (a global, or a struct member annotated __rcu) with its initial value. */
export function DEFINE_RCU_POINTER<T = KObject>(m: Machine, name: string, init: T | null = null): rcu_pointer<T> {
  return new rcu_pointer<T>(m, name, init);
}

/** rcu_assign_pointer(p, v): publish (a release store; the model is sequentially consistent). */
export function* rcu_assign_pointer<T>(cur: Task, p: rcu_pointer<T>, v: T | null): KernelBody<void> {
  yield cur.thread.write(p.obj);
  p.value = v;
}

/** RCU_INIT_POINTER(p, v): a store without ordering, for NULL or not-yet-visible objects. */
export function* RCU_INIT_POINTER<T>(cur: Task, p: rcu_pointer<T>, v: T | null): KernelBody<void> {
  yield cur.thread.write(p.obj);
  p.value = v;
}

/** rcu_replace_pointer(p, v, c): publish `v` and return the old value (update side, under its lock). */
export function* rcu_replace_pointer<T>(cur: Task, p: rcu_pointer<T>, v: T | null): KernelBody<T | null> {
  yield cur.thread.write(p.obj);
  const old = p.value;
  p.value = v;
  return old;
}

/** The load every rcu_dereference form shares; `implied` is the flavour's implicit protection. */
function* dereference<T>(cur: Task, p: rcu_pointer<T>, implied: boolean): KernelBody<T | null> {
  yield cur.thread.read(p.obj);
  const v = p.value;
  const m = cur.cpu.machine;
  const st = rcuState(m);
  if (st.activeReader(cur) === null && implied) return v; // protected, nothing to track
  if (v !== null) st.noteDereference(cur, v);
  m.emit('rcuDereference', cur, v);
  return v;
}

/**
 * rcu_dereference(p): load the pointer inside a read-side section. The object is recorded in the
 * section; the rcuDereference hook fires for every call, with null when the slot is empty, so
 * lockdep-RCU's "outside a read-side section" check does not depend on the value.
 */
export function* rcu_dereference<T>(cur: Task, p: rcu_pointer<T>): KernelBody<T | null> {
  return yield* dereference(cur, p, false);
}

/** rcu_dereference_bh(p): also protected by bh-disabled, softirq or irqs-off context (rcu_read_lock_bh_held). */
export function* rcu_dereference_bh<T>(cur: Task, p: rcu_pointer<T>): KernelBody<T | null> {
  return yield* dereference(cur, p, softirq_count(cur.preempt_count) !== 0 || cur.irqs_disabled);
}

/** rcu_dereference_sched(p): also protected by any preempt- or irq-disabled context (rcu_read_lock_sched_held). */
export function* rcu_dereference_sched<T>(cur: Task, p: rcu_pointer<T>): KernelBody<T | null> {
  return yield* dereference(cur, p, cur.preempt_count !== 0 || cur.irqs_disabled);
}

/**
 * rcu_dereference_protected(p, c): the update side's load, protected by its lock (the lockdep
 * condition is the caller's business). Not a reader access: nothing is recorded.
 */
export function* rcu_dereference_protected<T>(cur: Task, p: rcu_pointer<T>): KernelBody<T | null> {
  yield cur.thread.read(p.obj);
  const v = p.value;
  if (v !== null) rcuStateIfUsed(cur.cpu.machine)?.handoff(cur, v);
  return v;
}

/** rcu_access_pointer(p): the pointer's value for a NULL test only, never to dereference. */
export function* rcu_access_pointer<T>(cur: Task, p: rcu_pointer<T>): KernelBody<T | null> {
  yield cur.thread.read(p.obj);
  return p.value;
}

/**
 * rcu_pointer_handoff(p): the caller now protects the object by other means (it took a
 * reference inside the section), so using it after rcu_read_unlock is fine.
 */
export function rcu_pointer_handoff<T>(cur: Task, v: T): T {
  rcuStateIfUsed(cur.cpu.machine)?.handoff(cur, v);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Grace periods
// ---------------------------------------------------------------------------------------------

/** Sleep until `done()`, registered on `list` (check-then-sleep is atomic, wakeups are not lost). */
function* waitFor(cur: Task, list: Waiter[], upto: number, done: () => boolean, what: string, where: string): KernelBody<void> {
  while (!done()) {
    set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
    const w = { task: cur, upto };
    list.push(w);
    yield* sleep(cur, { kind: 'rcu', what }, where);
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
  }
  set_task_state(cur, 'TASK_RUNNING');
}

/**
 * synchronize_rcu(): sleep until a full grace period has elapsed, so every read-side section
 * active at the call has ended. Called inside one, it waits for itself forever (and might_sleep
 * reports the RCU nest depth).
 */
export function* synchronize_rcu(cur: Task): KernelBody<void> {
  yield* might_sleep(cur, 'synchronize_rcu');
  const st = rcuState(cur.cpu.machine);
  yield cur.thread.write(st.obj);
  const need = st.snap();
  st.request(need, `synchronize_rcu() by ${cur} in ${cur.site}`);
  yield* waitFor(cur, st.gpWaiters, need, () => st.completed >= need, `RCU grace period #${need}`, 'synchronize_rcu');
}

/** Expedited grace periods are normal ones here (only their latency differs in the kernel). */
export const synchronize_rcu_expedited = synchronize_rcu;
export const synchronize_net = synchronize_rcu;

/** The tick's RCU work (rcu_sched_clock_irq -> invoke_rcu_core): callbacks ready here -> RCU_SOFTIRQ. */
function* rcu_sched_clock_irq(cur: Task): KernelBody<void> {
  const st = rcuStateIfUsed(cur.cpu.machine);
  if (st === undefined) return;
  const q = st.cbs[cur.cpu.id];
  if (q.length > 0 && q[0].gp <= st.completed) yield* raise_softirq_irqoff(cur, RCU_SOFTIRQ);
}

/** RCU_SOFTIRQ (rcu_core -> rcu_do_batch): run this CPU's ready callbacks in queue order. */
function* rcu_core(cur: Task): KernelBody<void> {
  const st = rcuState(cur.cpu.machine);
  const q = st.cbs[cur.cpu.id];
  const stack = cur.stack;
  const base = stack.length;
  stack.push('rcu_core', 'rcu_do_batch');
  while (q.length > 0 && q[0].gp <= st.completed) {
    const cb = q.shift()!;
    st.invoking[cur.cpu.id] = cb;
    stack.push(cb.name);
    yield* cb.func(cur, cb.head);
    stack.length = base + 2;
    st.invoking[cur.cpu.id] = null;
    st.callbackDone();
  }
  stack.length = base;
}

/** The callback `cur`'s CPU is running in RCU_SOFTIRQ now, or null. */
export function rcuCallbackRunning(cur: Task): RcuCallback | null {
  const st = rcuStateIfUsed(cur.cpu.machine);
  return st === undefined ? null : st.invoking[cur.cpu.id];
}

/**
 * call_rcu(head, func): `func(head)` runs after a grace period, in softirq context on this CPU.
 * `name` is the callback's frame in reports (default: the function's name).
 */
export function* call_rcu<H>(cur: Task, head: H, func: RcuCallbackFn<H>, name?: string): KernelBody<void> {
  const m = cur.cpu.machine;
  const st = rcuState(m);
  if (!st.softirqOpen) {
    // rcu_init's open_softirq and the tick hook, at first use.
    st.softirqOpen = true;
    open_softirq(m, RCU_SOFTIRQ, rcu_core);
    m.tick.tickHooks.push(rcu_sched_clock_irq);
  }
  yield cur.thread.write(st.obj);
  if (head instanceof KObject) head.rcuQueuedBy = objectEvent(m, cur, 'call_rcu');
  const need = st.snap();
  const by = `${cur} in ${cur.site}`;
  st.cbs[cur.cpu.id].push({ seq: st.nextCb++, head, func: func as RcuCallbackFn<unknown>, gp: need, cpu: cur.cpu, name: name ?? (func.name || 'rcu_callback'), queuedBy: by });
  st.request(need, `call_rcu() by ${by}`);
}

function* kfree_rcu_cb(cur: Task, obj: KObject<object>): KernelBody<void> {
  yield* slab_free(cur, obj, 'kfree_rcu');
}

/** kfree_rcu(obj, rh) / kfree_rcu_mightsleep(obj): kfree after a grace period. NULL is a no-op. */
export function* kfree_rcu(cur: Task, obj: KObject<object> | null): KernelBody<void> {
  if (obj === null) return;
  yield* call_rcu(cur, obj, kfree_rcu_cb, 'kfree_rcu_cb');
}

/** rcu_barrier(): sleep until every callback queued before the call has run. */
export function* rcu_barrier(cur: Task): KernelBody<void> {
  yield* might_sleep(cur, 'rcu_barrier');
  const st = rcuState(cur.cpu.machine);
  yield cur.thread.write(st.obj);
  const upto = st.nextCb - 1;
  yield* waitFor(cur, st.barrierWaiters, upto, () => !st.callbacksPending(upto), 'rcu_barrier', 'rcu_barrier');
}
