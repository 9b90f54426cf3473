/**
 * Workqueues (kernel/workqueue.c): work items, delayed work, workqueues with max_active and
 * ordering, worker pools with concurrency management, and WQ_MEM_RECLAIM rescuers.
 *
 * Structure as upstream: a workqueue has one pool_workqueue (pwq) per pool it uses; per-CPU
 * (bound) pools exist per CPU and priority (normal, highpri), unbound pools per priority. A pool
 * has a worklist, worker kthreads (kworker/N:M, kworker/N:MH, kworker/uP:M), an idle list and a
 * manager role: a worker about to work when no worker is idle first creates one, so a sleeping
 * work item can always be covered. Concurrency management: a bound pool keeps one worker running
 * per CPU; when that worker sleeps inside a work item (the machine's `sleep` hook, the kernel's
 * wq_worker_sleeping) and work is pending, an idle worker is woken. Unbound pools do not count
 * running workers, so their items run concurrently up to max_active.
 *
 * Worker creation goes through `workqueueConfig(m).createWorker` (GFP_KERNEL allocations in the
 * kernel) so a test or the memory model can make it block or fail. While it does not succeed the
 * pool sends a mayday after MAYDAY_INITIAL_TIMEOUT: each WQ_MEM_RECLAIM workqueue with pending
 * items there gets its rescuer, which moves to the pool's CPU and runs them.
 *
 * pool->lock and wq_mayday_lock are atomic sections (one visible step each), not spinlocks.
 */
import { ProgramError, WAKE } from '../../scheduler';
import { completion, complete, DECLARE_COMPLETION } from './completion';
import { lock_map_acquire, lock_map_release, lockdep_map } from './lock';
import type { KernelBody, Machine } from './machine';
import { hex } from './preempt';
import { might_sleep, migrate_task, schedule_timeout, set_task_state, sleep, try_to_wake_up } from './sched';
import { fn } from './stack';
import type { Task, WaitInfo } from './task';

// ---- constants (include/linux/workqueue.h, kernel/workqueue.c) ----

export const WQ_UNBOUND = 1 << 1;
/** Accepted, no effect: the model has no freezer. */
export const WQ_FREEZABLE = 1 << 2;
export const WQ_MEM_RECLAIM = 1 << 3;
export const WQ_HIGHPRI = 1 << 4;
export const __WQ_ORDERED = 1 << 17;
const KNOWN_FLAGS = WQ_UNBOUND | WQ_FREEZABLE | WQ_MEM_RECLAIM | WQ_HIGHPRI | __WQ_ORDERED;

export const WQ_MAX_ACTIVE = 512;
export const WQ_DFL_ACTIVE = WQ_MAX_ACTIVE / 2;
/** queue_work_on's "no CPU given": the queueing CPU (the kernel uses NR_CPUS). */
export const WORK_CPU_UNBOUND = -1;

/** PF_WQ_WORKER: set in task.flags of kworkers and rescuers. */
export const PF_WQ_WORKER = 0x00000020;

const MSEC = 1_000_000;
/** Call for the rescuers when worker creation has not succeeded in this long (HZ / 100). */
export const MAYDAY_INITIAL_TIMEOUT = 10 * MSEC;
/** Then again every (HZ / 10). */
export const MAYDAY_INTERVAL = 100 * MSEC;
/** A failed worker creation is retried after HZ. */
export const CREATE_COOLDOWN = 1000 * MSEC;
/** Virtual cost of the default create_worker (allocations, kthread_create). */
export const CREATE_WORKER_NS = 50_000;

// Upstream worker_thread and rescuer_thread sleep in TASK_IDLE (kernel/workqueue.c, v6.12:
// `__set_current_state(TASK_IDLE)` before schedule() in worker_thread, set_current_state(TASK_IDLE)
// at the top of rescuer_thread's loop): hung_task never reports an idle worker.
const IDLE: WaitInfo = { kind: 'flag', what: 'work (idle worker)', idle: true };
const RESCUER_IDLE: WaitInfo = { kind: 'flag', what: 'mayday (idle rescuer)', idle: true };

// ---- work items ----

export type work_func_t = (cur: Task, work: work_struct) => KernelBody;

export class work_struct {
  func: work_func_t | null = null;
  /** WORK_STRUCT_PENDING: queued, on a timer, or held by a canceller. */
  pending = false;
  /** The pwq while queued (pool worklist, pwq inactive list or a worker's scheduled list). */
  pwq: pool_workqueue | null = null;
  /** The list it is on while queued. */
  list: work_struct[] | null = null;
  /** The pool it last ran (or is running) on: flush_work and non-reentrancy look there. */
  lastPool: worker_pool | null = null;
  /** flush_work barriers for the queued instance (wq_barrier linked after it upstream). */
  barriers: completion[] = [];
  /** Flush sequence of the queued instance (flush_workqueue's colours). */
  seq = 0;
  /** CPU it was queued from: where an unbound worker runs it by default. */
  cpu = 0;
  /** Cancellers in progress (WORK_OFFQ_CANCELING); they hold PENDING. */
  canceling = 0;
  dwork: delayed_work | null = null;
  readonly obj: number;
  private map: lockdep_map | null = null;
  constructor(
    readonly m: Machine,
    readonly name: string,
  ) {
    this.obj = m.sim.object(`work:${name}`);
  }

  /** The work's lockdep map, "(work_completion)(<func>)": held while it runs, taken by flushers. */
  get lockdep_map(): lockdep_map {
    return (this.map ??= new lockdep_map(this.obj, `(work_completion)(${this.func?.name || this.name})`));
  }

  /** The work function's name, for reports. */
  get funcName(): string {
    return this.func?.name || this.name;
  }
}

/** INIT_WORK(&w, func). Returns `w`. */
export function INIT_WORK(w: work_struct, func: work_func_t): work_struct {
  if (w.pending) throw new ProgramError(`INIT_WORK on ${w.name} while it is pending`);
  w.func = func;
  w.lastPool = null;
  return w;
}

/** DECLARE_WORK(name, func). */
export function DECLARE_WORK(m: Machine, name: string, func: work_func_t): work_struct {
  return INIT_WORK(new work_struct(m, name), func);
}

export class delayed_work {
  readonly work: work_struct;
  timerArmed = false;
  /** Bumped on every arm and del_timer, so a stale expiry does nothing. */
  timerSeq = 0;
  wq: workqueue_struct | null = null;
  cpu = WORK_CPU_UNBOUND;
  constructor(m: Machine, name: string) {
    this.work = new work_struct(m, name);
    this.work.dwork = this;
  }
}

/** INIT_DELAYED_WORK(&dw, func). Returns `dw`. */
export function INIT_DELAYED_WORK(dw: delayed_work, func: work_func_t): delayed_work {
  INIT_WORK(dw.work, func);
  return dw;
}

export function DECLARE_DELAYED_WORK(m: Machine, name: string, func: work_func_t): delayed_work {
  return INIT_DELAYED_WORK(new delayed_work(m, name), func);
}

export function to_delayed_work(w: work_struct): delayed_work {
  if (w.dwork === null) throw new ProgramError(`${w.name} is not a delayed_work`);
  return w.dwork;
}

export function work_pending(w: work_struct): boolean {
  return w.pending;
}

export function delayed_work_pending(dw: delayed_work): boolean {
  return dw.work.pending;
}

// ---- pools, pwqs, workqueues, workers ----

export class worker {
  task!: Task;
  current_work: work_struct | null = null;
  current_pwq: pool_workqueue | null = null;
  current_func: work_func_t | null = null;
  /** Flush sequence of the running instance. */
  currentSeq = 0;
  /** flush_work barriers waiting for the running instance. */
  barriers: completion[] = [];
  /** Works assigned to this worker (its own, or collisions: the same work queued again). */
  readonly scheduled: work_struct[] = [];
  /** Between leaving and re-entering WORKER_PREP: counts in nr_running when not sleeping. */
  active = false;
  /** The rescuer sleeps waiting for maydays (send_mayday wakes it only then). */
  rescuerIdle = false;
  constructor(
    /** The pool; a rescuer's changes with each pool it attaches to. */
    public pool: worker_pool | null,
    readonly id: number,
    readonly rescuerOf: workqueue_struct | null,
  ) {}
}

export class worker_pool {
  readonly worklist: work_struct[] = [];
  readonly workers: worker[] = [];
  /** LIFO like the kernel's idle_list: the most recently idle worker is woken first. */
  readonly idle: worker[] = [];
  /** busy_hash: work item -> the worker executing it. */
  readonly busy = new Map<work_struct, worker>();
  manager: worker | null = null;
  /** maybe_create_worker in progress (the mayday timer may run). */
  creating = false;
  maydayArmed = false;
  maydaySeq = 0;
  nextWorkerId = 0;
  readonly obj: number;
  constructor(
    readonly st: WqState,
    readonly id: number,
    /** The CPU of a per-CPU pool, -1 for an unbound pool. */
    readonly cpu: number,
    readonly highpri: boolean,
  ) {
    this.obj = st.m.sim.object(`pool${id}.lock`);
  }

  get unbound(): boolean {
    return this.cpu < 0;
  }

  toString(): string {
    return this.unbound ? `pool ${this.id} (unbound${this.highpri ? ', highpri' : ''})` : `pool ${this.id} (cpu ${this.cpu}${this.highpri ? ', highpri' : ''})`;
  }
}

export class pool_workqueue {
  nr_active = 0;
  readonly inactive: work_struct[] = [];
  /** On wq.maydays (mayday_node). */
  onMayday = false;
  constructor(
    readonly wq: workqueue_struct,
    readonly pool: worker_pool,
  ) {}
}

interface Flusher {
  target: number;
  done: completion;
}

export class workqueue_struct {
  readonly pwqs = new Map<worker_pool, pool_workqueue>();
  rescuer: worker | null = null;
  readonly maydays: pool_workqueue[] = [];
  /** Flush sequences of every instance in flight (queued, inactive or running), ascending. */
  readonly inflight: number[] = [];
  nextSeq = 0;
  readonly flushers: Flusher[] = [];
  draining = false;
  destroyed = false;
  readonly obj: number;
  /** "(wq_completion)<name>": held by its workers around every item, taken by flush_workqueue. */
  readonly lockdep_map: lockdep_map;
  constructor(
    readonly st: WqState,
    readonly name: string,
    readonly flags: number,
    readonly max_active: number,
  ) {
    this.obj = st.m.sim.object(`wq:${name}`);
    this.lockdep_map = new lockdep_map(this.obj, `(wq_completion)${name}`);
  }

  get ordered(): boolean {
    return (this.flags & __WQ_ORDERED) !== 0;
  }

  toString(): string {
    return this.name;
  }
}

export interface WorkqueueConfig {
  /**
   * The allocations and kthread creation of create_worker (GFP_KERNEL upstream): may sleep, may
   * take virtual time; false means it failed (retried after CREATE_COOLDOWN). Replace it to
   * model memory pressure.
   */
  createWorker: (cur: Task, pool: worker_pool) => KernelBody<boolean>;
}

/** Per-machine workqueue state. */
class WqState {
  /** Per-CPU pools by cpu * 2 + highpri, made on first use. */
  readonly bound: (worker_pool | undefined)[] = [];
  /** Unbound pools by highpri. */
  readonly unbound: (worker_pool | undefined)[] = [];
  /** Unbound pool ids follow the per-CPU ones, so names read kworker/u<2 * nr_cpus>:N. */
  nextPoolId: number;
  readonly workqueues: workqueue_struct[] = [];
  readonly system = new Map<string, workqueue_struct>();
  readonly config: WorkqueueConfig = {
    createWorker: function* (cur: Task) {
      yield cur.thread.work(CREATE_WORKER_NS);
      return true;
    },
  };
  constructor(readonly m: Machine) {
    this.nextPoolId = m.cpus.length * 2;
  }
}

const states = new WeakMap<Machine, WqState>();
const workers = new WeakMap<Task, worker>();

function state(m: Machine): WqState {
  let st = states.get(m);
  if (st === undefined) {
    st = new WqState(m);
    states.set(m, st);
    m.addHooks({ sleep: wq_worker_sleeping });
  }
  return st;
}

/** The machine's replaceable workqueue knobs (worker creation). */
export function workqueueConfig(m: Machine): WorkqueueConfig {
  return state(m).config;
}

/** The worker a task is, if it is a kworker or rescuer. */
export function wq_worker(t: Task): worker | null {
  return workers.get(t) ?? null;
}

/** current_work(): the work item the current task executes as a worker, or null. */
export function current_work(cur: Task): work_struct | null {
  return workers.get(cur)?.current_work ?? null;
}

export function current_is_workqueue_rescuer(cur: Task): boolean {
  return (workers.get(cur)?.rescuerOf ?? null) !== null;
}

// ---- pool bookkeeping (all atomic: callers are inside a pool-lock step or a timer) ----

function nr_running(pool: worker_pool): number {
  if (pool.unbound) return 0; // WORKER_UNBOUND is NOT_RUNNING
  let n = 0;
  for (const w of pool.workers) if (w.active && w.task.state === 'TASK_RUNNING') n++;
  return n;
}

function need_more_worker(pool: worker_pool): boolean {
  return pool.worklist.length > 0 && nr_running(pool) === 0;
}

function may_start_working(pool: worker_pool): boolean {
  return pool.idle.length > 0;
}

function keep_working(pool: worker_pool): boolean {
  return pool.worklist.length > 0 && nr_running(pool) <= 1;
}

function need_to_create_worker(pool: worker_pool): boolean {
  return need_more_worker(pool) && !may_start_working(pool);
}

/** Wake the first idle worker if the pool needs one. */
function kick_pool(pool: worker_pool): boolean {
  if (!need_more_worker(pool)) return false;
  const w = pool.idle[0];
  if (w === undefined) return false;
  try_to_wake_up(w.task);
  return true;
}

function worker_enter_idle(w: worker): void {
  w.pool!.idle.unshift(w);
}

function worker_leave_idle(w: worker): void {
  const idle = w.pool!.idle;
  const i = idle.indexOf(w);
  if (i >= 0) idle.splice(i, 1);
}

function unlink(work: work_struct): void {
  const l = work.list;
  if (l !== null) {
    const i = l.indexOf(work);
    if (i >= 0) l.splice(i, 1);
  }
  work.list = null;
}

/**
 * A manager stuck creating a worker while items wait in its pool is a hang, not an idle service
 * thread: it counts as stuck exactly while the worklist is not empty. Called wherever the
 * worklist changes.
 */
function syncManager(pool: worker_pool): void {
  const mgr = pool.manager;
  if (mgr !== null && pool.creating) mgr.task.thread.daemon = pool.worklist.length === 0;
}

/** The 'sleep' hook: a running worker of a bound pool blocks inside a work item. */
function wq_worker_sleeping(cur: Task): void {
  const w = workers.get(cur);
  if (w === undefined || !w.active || w.rescuerOf !== null) return;
  const pool = w.pool!;
  if (pool.unbound) return;
  kick_pool(pool); // nr_running no longer counts `cur` (its state is already sleeping)
  maybeArmMayday(pool);
}

function pwqOf(wq: workqueue_struct, pool: worker_pool): pool_workqueue {
  let pwq = wq.pwqs.get(pool);
  if (pwq === undefined) {
    pwq = new pool_workqueue(wq, pool);
    wq.pwqs.set(pool, pwq);
  }
  return pwq;
}

function cpuPool(st: WqState, cpu: number, highpri: boolean): worker_pool {
  const k = cpu * 2 + (highpri ? 1 : 0);
  let p = st.bound[k];
  if (p === undefined) {
    p = new worker_pool(st, k, cpu, highpri);
    st.bound[k] = p;
    spawnWorker(p, cpu); // the pool's first worker (made at boot upstream)
  }
  return p;
}

function unboundPool(st: WqState, highpri: boolean, hintCpu: number): worker_pool {
  const k = highpri ? 1 : 0;
  let p = st.unbound[k];
  if (p === undefined) {
    p = new worker_pool(st, st.nextPoolId++, -1, highpri);
    st.unbound[k] = p;
    spawnWorker(p, hintCpu);
  }
  return p;
}

/** The kthread side of create_worker: a new worker, idle and woken. */
function spawnWorker(pool: worker_pool, onCpu: number): worker {
  const w = new worker(pool, pool.nextWorkerId++, null);
  const name = pool.unbound ? `kworker/u${pool.id}:${w.id}` : `kworker/${pool.cpu}:${w.id}${pool.highpri ? 'H' : ''}`;
  const task = pool.st.m.kthread(name, pool.unbound ? onCpu : pool.cpu, (cur) => worker_thread(cur, w), { service: true });
  task.flags |= PF_WQ_WORKER;
  w.task = task;
  workers.set(task, w);
  pool.workers.push(w);
  worker_enter_idle(w);
  return w;
}

// ---- mayday ----

/**
 * Arm the mayday timer when it could help: the pool is trying to create a worker and has
 * pending items of a workqueue with a rescuer that has not been called for them yet. Upstream
 * the timer ticks every MAYDAY_INTERVAL for as long as creation fails; here a tick never re-arms
 * itself, the events that can change its outcome (queueing, a worker sleeping or waking, the
 * rescuer leaving) do, so a hopeless hang still ends the run (no endless timers).
 */
function maybeArmMayday(pool: worker_pool, delay = MAYDAY_INTERVAL): void {
  if (!pool.creating || pool.maydayArmed) return;
  if (!pool.worklist.some((w) => w.pwq!.wq.rescuer !== null && !w.pwq!.onMayday)) return;
  armMayday(pool, delay);
}

function armMayday(pool: worker_pool, delay: number): void {
  const seq = ++pool.maydaySeq;
  pool.maydayArmed = true;
  pool.st.m.sim.after(delay, () => pool_mayday_timeout(pool, seq), `mayday:pool${pool.id}`);
}

function delMayday(pool: worker_pool): void {
  pool.maydaySeq++;
  pool.maydayArmed = false;
}

function pool_mayday_timeout(pool: worker_pool, seq: number): void {
  if (seq !== pool.maydaySeq) return; // deleted (the engine cannot cancel a timer)
  pool.maydayArmed = false;
  if (need_to_create_worker(pool)) for (const w of pool.worklist) send_mayday(w);
}

function send_mayday(work: work_struct): void {
  const pwq = work.pwq!;
  const r = pwq.wq.rescuer;
  if (r === null || pwq.onMayday) return;
  pwq.onMayday = true;
  pwq.wq.maydays.push(pwq);
  if (r.rescuerIdle) try_to_wake_up(r.task);
}

// ---- workqueues ----

/** alloc_workqueue(name, flags, max_active); max_active 0 means the default (256). */
export function alloc_workqueue(m: Machine, name: string, flags: number, max_active = 0): workqueue_struct {
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new ProgramError(`alloc_workqueue ${name}: flags ${hex(flags & ~KNOWN_FLAGS)} are not modelled`);
  const st = state(m);
  let ma = max_active === 0 ? WQ_DFL_ACTIVE : max_active;
  if (ma < 1 || ma > WQ_MAX_ACTIVE) {
    m.log.printk(0, `workqueue: max_active ${max_active} requested for ${name} is out of range, clamping between 1 and ${WQ_MAX_ACTIVE}`);
    ma = Math.min(Math.max(ma, 1), WQ_MAX_ACTIVE);
  }
  if (flags & __WQ_ORDERED) ma = 1;
  const wq = new workqueue_struct(st, name, flags, ma);
  st.workqueues.push(wq);
  if (flags & WQ_MEM_RECLAIM) {
    const r = new worker(null, 0, wq);
    wq.rescuer = r;
    // Upstream 6.9+ names it "kworker/R-<name>"; earlier kernels just <name>.
    const task = m.kthread(name, 0, (cur) => rescuer_thread(cur, r), { service: true });
    task.flags |= PF_WQ_WORKER;
    r.task = task;
    workers.set(task, r);
  }
  return wq;
}

/** alloc_ordered_workqueue(name, flags): unbound, one item at a time in queueing order. */
export function alloc_ordered_workqueue(m: Machine, name: string, flags = 0): workqueue_struct {
  return alloc_workqueue(m, name, WQ_UNBOUND | __WQ_ORDERED | flags, 1);
}

function systemWq(m: Machine, name: string, flags: number, max_active: number): workqueue_struct {
  const st = state(m);
  let wq = st.system.get(name);
  if (wq === undefined) {
    wq = alloc_workqueue(m, name, flags, max_active);
    st.system.set(name, wq);
  }
  return wq;
}

/** system_wq ("events"), made on first use per machine. */
export function system_wq(m: Machine): workqueue_struct {
  return systemWq(m, 'events', 0, 0);
}

export function system_highpri_wq(m: Machine): workqueue_struct {
  return systemWq(m, 'events_highpri', WQ_HIGHPRI, 0);
}

export function system_unbound_wq(m: Machine): workqueue_struct {
  return systemWq(m, 'events_unbound', WQ_UNBOUND, WQ_MAX_ACTIVE);
}

// ---- queueing ----

/** A worker of `wq` queueing more work on it while it drains (allowed upstream). */
function is_chained_work(cur: Task | null, wq: workqueue_struct): boolean {
  const w = cur === null ? undefined : workers.get(cur);
  return w?.current_pwq?.wq === wq;
}

/**
 * __queue_work: put a work item whose PENDING bit the caller owns on its pwq. Atomic (callers
 * are inside a visible step or a timer); `cur` is null from a timer.
 */
function __queue_work(st: WqState, cur: Task | null, reqCpu: number, wq: workqueue_struct, work: work_struct): void {
  if (wq.destroyed) throw new ProgramError(`queue_work on destroyed workqueue ${wq.name}`);
  if (work.func === null) throw new ProgramError(`queue_work of ${work.name}: INIT_WORK was never called`);
  const cpu = reqCpu === WORK_CPU_UNBOUND ? (cur?.cpu.id ?? 0) : reqCpu;
  if (wq.draining && !is_chained_work(cur, wq)) {
    // WARN_ON_ONCE upstream; the item stays PENDING and never runs, as there.
    if (st.m.log.firstTime(`wq-draining:${wq.name}`)) st.m.log.printk(cpu, `WARNING: CPU: ${cpu} at kernel/workqueue.c __queue_work: queueing ${work.funcName} on draining workqueue ${wq.name}`);
    return;
  }
  const highpri = (wq.flags & WQ_HIGHPRI) !== 0;
  let pwq = pwqOf(wq, wq.flags & WQ_UNBOUND ? unboundPool(st, highpri, cpu) : cpuPool(st, cpu, highpri));
  // Non-reentrancy: while the item runs on another pool for this wq, queue it behind itself there.
  const last = work.lastPool;
  if (!wq.ordered && last !== null && last !== pwq.pool) {
    const running = last.busy.get(work);
    if (running !== undefined && running.current_pwq!.wq === wq) pwq = running.current_pwq!;
  }
  const pool = pwq.pool;
  work.pwq = pwq;
  work.cpu = cpu;
  work.seq = ++wq.nextSeq;
  wq.inflight.push(work.seq);
  if (pwq.inactive.length === 0 && pwq.nr_active < wq.max_active) {
    pwq.nr_active++;
    pool.worklist.push(work);
    work.list = pool.worklist;
    kick_pool(pool);
    syncManager(pool);
  } else {
    pwq.inactive.push(work);
    work.list = pwq.inactive;
  }
  maybeArmMayday(pool);
}

/** queue_work_on(cpu, wq, work): false when the item was already pending. */
export function* queue_work_on(cur: Task, cpu: number, wq: workqueue_struct, work: work_struct): KernelBody<boolean> {
  if (cpu !== WORK_CPU_UNBOUND) wq.st.m.cpu(cpu);
  yield cur.thread.write(work.obj); // test_and_set_bit(PENDING); the insertion is in the same step
  if (work.pending) return false;
  work.pending = true;
  __queue_work(wq.st, cur, cpu, wq, work);
  return true;
}

export function* queue_work(cur: Task, wq: workqueue_struct, work: work_struct): KernelBody<boolean> {
  return yield* queue_work_on(cur, WORK_CPU_UNBOUND, wq, work);
}

/** schedule_work(): queue_work on system_wq. */
export function* schedule_work(cur: Task, work: work_struct): KernelBody<boolean> {
  return yield* queue_work_on(cur, WORK_CPU_UNBOUND, system_wq(cur.cpu.machine), work);
}

export function* schedule_work_on(cur: Task, cpu: number, work: work_struct): KernelBody<boolean> {
  return yield* queue_work_on(cur, cpu, system_wq(cur.cpu.machine), work);
}

// ---- delayed work ----

function delayed_work_timer_fn(st: WqState, dw: delayed_work, seq: number): void {
  if (seq !== dw.timerSeq || !dw.timerArmed) return; // del_timer'ed
  dw.timerArmed = false;
  __queue_work(st, null, dw.cpu, dw.wq!, dw.work);
}

/** Caller owns PENDING. The timer fires on the arming CPU, so that is the queueing CPU. */
function __queue_delayed_work(st: WqState, cur: Task, cpu: number, wq: workqueue_struct, dw: delayed_work, delayNs: number): void {
  if (!(delayNs >= 0) || !Number.isFinite(delayNs)) throw new ProgramError(`queue_delayed_work: delay must be a finite number of ns >= 0, got ${delayNs}`);
  if (delayNs === 0) {
    __queue_work(st, cur, cpu, wq, dw.work);
    return;
  }
  dw.wq = wq;
  dw.cpu = cpu === WORK_CPU_UNBOUND ? cur.cpu.id : cpu;
  dw.timerArmed = true;
  const seq = ++dw.timerSeq;
  // Kept minimal: timers will fire in softirq context; all it does is queue the work.
  st.m.sim.after(delayNs, () => delayed_work_timer_fn(st, dw, seq), `delayed_work:${dw.work.name}`);
}

/** queue_delayed_work_on(cpu, wq, dwork, delay): the delay is in ns (the kernel's is jiffies). */
export function* queue_delayed_work_on(cur: Task, cpu: number, wq: workqueue_struct, dw: delayed_work, delayNs: number): KernelBody<boolean> {
  if (cpu !== WORK_CPU_UNBOUND) wq.st.m.cpu(cpu);
  yield cur.thread.write(dw.work.obj);
  if (dw.work.pending) return false;
  dw.work.pending = true;
  __queue_delayed_work(wq.st, cur, cpu, wq, dw, delayNs);
  return true;
}

export function* queue_delayed_work(cur: Task, wq: workqueue_struct, dw: delayed_work, delayNs: number): KernelBody<boolean> {
  return yield* queue_delayed_work_on(cur, WORK_CPU_UNBOUND, wq, dw, delayNs);
}

export function* schedule_delayed_work(cur: Task, dw: delayed_work, delayNs: number): KernelBody<boolean> {
  return yield* queue_delayed_work_on(cur, WORK_CPU_UNBOUND, system_wq(cur.cpu.machine), dw, delayNs);
}

/** mod_delayed_work_on: (re)arm with the new delay whether or not it was pending; true if it was. */
export function* mod_delayed_work_on(cur: Task, cpu: number, wq: workqueue_struct, dw: delayed_work, delayNs: number): KernelBody<boolean> {
  if (cpu !== WORK_CPU_UNBOUND) wq.st.m.cpu(cpu);
  yield cur.thread.write(dw.work.obj);
  const g = try_to_grab_pending(dw.work);
  if (g === 'canceling') return false; // -ENOENT upstream: a canceller owns it
  dw.work.pending = true;
  const done = g.done;
  __queue_delayed_work(wq.st, cur, cpu, wq, dw, delayNs);
  for (const x of done) yield* complete(cur, x);
  return g.was;
}

export function* mod_delayed_work(cur: Task, wq: workqueue_struct, dw: delayed_work, delayNs: number): KernelBody<boolean> {
  return yield* mod_delayed_work_on(cur, WORK_CPU_UNBOUND, wq, dw, delayNs);
}

// ---- grabbing, cancelling ----

interface Grab {
  /** It was pending (queued or on its timer) and is now owned by the grabber. */
  was: boolean;
  /** Waiters to release (barriers of the stolen instance, flushers it held back). */
  done: completion[];
}

/**
 * try_to_grab_pending: steal a pending item from its timer or queue, leaving PENDING set for the
 * caller. 'canceling' when a canceller owns it. Atomic.
 */
function try_to_grab_pending(work: work_struct): Grab | 'canceling' {
  if (!work.pending) return { was: false, done: [] };
  const dw = work.dwork;
  if (dw !== null && dw.timerArmed) {
    dw.timerArmed = false;
    dw.timerSeq++;
    return { was: true, done: [] };
  }
  const pwq = work.pwq;
  if (pwq === null) return 'canceling';
  const active = work.list !== pwq.inactive;
  unlink(work);
  work.pwq = null;
  // The barriers linked after the stolen item still run upstream: release their flushers now.
  const done = work.barriers;
  work.barriers = [];
  if (active) pwq_dec_nr_active(pwq);
  syncManager(pwq.pool);
  done.push(...inflightDone(pwq.wq, work.seq));
  return { was: true, done };
}

/** One active item of pwq finished or was stolen: activate the next inactive one. */
function pwq_dec_nr_active(pwq: pool_workqueue): void {
  pwq.nr_active--;
  const next = pwq.inactive[0];
  if (next !== undefined && pwq.nr_active < pwq.wq.max_active) {
    pwq.inactive.shift();
    pwq.nr_active++;
    pwq.pool.worklist.push(next);
    next.list = pwq.pool.worklist;
    kick_pool(pwq.pool);
    syncManager(pwq.pool);
  }
}

/** An instance of flush sequence `seq` left flight: the flush_workqueue waiters it released. */
function inflightDone(wq: workqueue_struct, seq: number): completion[] {
  const i = wq.inflight.indexOf(seq);
  if (i >= 0) wq.inflight.splice(i, 1);
  const oldest = wq.inflight.length > 0 ? wq.inflight[0] : Infinity;
  const out: completion[] = [];
  for (let k = 0; k < wq.flushers.length; ) {
    if (wq.flushers[k].target < oldest) out.push(wq.flushers.splice(k, 1)[0].done);
    else k++;
  }
  return out;
}

/** cancel_work(): steal a pending item; true if it was pending. Does not wait for a running one. */
export function* cancel_work(cur: Task, work: work_struct): KernelBody<boolean> {
  yield cur.thread.write(work.obj);
  const g = try_to_grab_pending(work);
  if (g === 'canceling') return false;
  work.pending = false;
  for (const x of g.done) yield* complete(cur, x);
  return g.was;
}

export function* cancel_delayed_work(cur: Task, dw: delayed_work): KernelBody<boolean> {
  return yield* cancel_work(cur, dw.work);
}

/**
 * cancel_work_sync(): steal a pending item (it will not run), then wait for a running instance
 * to finish. Queueing it meanwhile fails (the canceller holds PENDING). True if it was pending.
 */
export function* cancel_work_sync(cur: Task, work: work_struct): KernelBody<boolean> {
  return yield* fn(cur, 'cancel_work_sync', __cancel_work_sync(cur, work));
}

function* __cancel_work_sync(cur: Task, work: work_struct): KernelBody<boolean> {
  yield* might_sleep(cur, 'cancel_work_sync');
  yield cur.thread.write(work.obj);
  const g = try_to_grab_pending(work);
  const was = g !== 'canceling' && g.was;
  work.pending = true;
  work.canceling++;
  if (g !== 'canceling') for (const x of g.done) yield* complete(cur, x);
  yield* __flush_work(cur, work);
  yield cur.thread.write(work.obj);
  if (--work.canceling === 0) work.pending = false;
  return was;
}

export function* cancel_delayed_work_sync(cur: Task, dw: delayed_work): KernelBody<boolean> {
  return yield* fn(cur, 'cancel_delayed_work_sync', __cancel_work_sync(cur, dw.work));
}

// ---- flushing ----

/**
 * The tasks that must run for the current instance of `work` to finish (the wait-for graph's
 * edges from a flusher): the worker running it; for a queued instance, the worker it was handed
 * to, else (on the pool's worklist) a manager stuck creating a worker; for an inactive one
 * (max_active, ordered workqueues), the workers running items of the same pwq.
 */
export function work_holders(work: work_struct): Task[] {
  const pwq = work.pwq;
  if (pwq !== null) {
    const pool = pwq.pool;
    if (work.list === pwq.inactive) return [...pool.busy.values()].filter((w) => w.current_pwq === pwq).map((w) => w.task);
    const owner = [...pool.workers, ...(pwq.wq.rescuer ? [pwq.wq.rescuer] : [])].find((w) => w.scheduled === work.list);
    if (owner !== undefined) return [owner.task];
    // On the worklist: any idle worker takes it, and one is created when none is idle; it waits
    // only on a manager that cannot create one.
    return pool.manager !== null && pool.creating ? [pool.manager.task] : [];
  }
  const running = work.lastPool?.busy.get(work);
  return running !== undefined ? [running.task] : [];
}

/** flush_workqueue's edges: the tasks holding up any item of `wq` in flight. */
function workqueue_holders(wq: workqueue_struct): Task[] {
  const out = new Set<Task>();
  for (const [pool, pwq] of wq.pwqs) {
    for (const w of pool.busy.values()) if (w.current_pwq === pwq) out.add(w.task);
    for (const work of [...pool.worklist, ...pwq.inactive]) if (work.pwq === pwq) for (const t of work_holders(work)) out.add(t);
  }
  return [...out];
}

/** Wait for a barrier (wait_for_completion, shown as waiting for the work for reports). */
function* waitBarrier(cur: Task, x: completion, why: WaitInfo, where: string): KernelBody<void> {
  yield cur.thread.write(x.obj);
  while (x.done === 0) {
    set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
    x.waiters.push(cur);
    yield* sleep(cur, why, where);
    const i = x.waiters.indexOf(cur);
    if (i >= 0) x.waiters.splice(i, 1);
    yield cur.thread.write(x.obj);
  }
  set_task_state(cur, 'TASK_RUNNING');
  x.done--;
}

/** check_flush_dependency: a WQ_MEM_RECLAIM worker must not wait for a !WQ_MEM_RECLAIM one. */
function check_flush_dependency(cur: Task, target: workqueue_struct, work: work_struct | null): void {
  if (target.flags & WQ_MEM_RECLAIM) return;
  const w = workers.get(cur);
  const mine = w?.current_pwq?.wq;
  if (mine === undefined || !(mine.flags & WQ_MEM_RECLAIM)) return;
  const log = cur.cpu.machine.log;
  const fname = w!.current_func?.name || w!.current_work?.name || '?';
  if (log.firstTime(`wq-flush-dep:${mine.name}:${fname}:${target.name}`)) {
    log.printk(cur.cpu.id, `workqueue: WQ_MEM_RECLAIM ${mine.name}:${fname} is flushing !WQ_MEM_RECLAIM ${target.name}:${work ? work.funcName : '0x0'}`);
  }
}

/**
 * start_flush_work + insert_wq_barrier: a barrier behind the queued instance if there is one,
 * else behind the running one; null when the item is idle. Atomic.
 */
function start_flush_work(cur: Task, work: work_struct): completion | null {
  let list: completion[];
  let wq: workqueue_struct;
  if (work.pwq !== null) {
    list = work.barriers;
    wq = work.pwq.wq;
  } else {
    const running = work.lastPool?.busy.get(work);
    if (running === undefined) return null;
    list = running.barriers;
    wq = running.current_pwq!.wq;
  }
  check_flush_dependency(cur, wq, work);
  const x = DECLARE_COMPLETION(cur.cpu.machine, `wq_barrier:${work.name}`);
  list.push(x);
  return x;
}

function* __flush_work(cur: Task, work: work_struct): KernelBody<boolean> {
  // lockdep: the flusher depends on the work item (and so on every lock it takes).
  lock_map_acquire(cur, work.lockdep_map);
  lock_map_release(cur, work.lockdep_map);
  yield cur.thread.write(work.obj);
  const x = start_flush_work(cur, work);
  if (x === null) return false;
  yield* waitBarrier(cur, x, { kind: 'work', what: work.funcName, holders: () => work_holders(work) }, 'flush_work');
  return true;
}

/**
 * flush_work(): wait until the instance queued (or running) when it was called has finished;
 * true if it waited, false if the item was idle.
 */
export function* flush_work(cur: Task, work: work_struct): KernelBody<boolean> {
  return yield* fn(cur, 'flush_work', (function* () {
    yield* might_sleep(cur, 'flush_work');
    return yield* __flush_work(cur, work);
  })());
}

/** flush_delayed_work(): run a pending timer's work now, then flush it. */
export function* flush_delayed_work(cur: Task, dw: delayed_work): KernelBody<boolean> {
  return yield* fn(cur, 'flush_delayed_work', (function* () {
    yield* might_sleep(cur, 'flush_work');
    yield cur.thread.write(dw.work.obj);
    if (dw.timerArmed) {
      dw.timerArmed = false;
      dw.timerSeq++;
      __queue_work(dw.wq!.st, cur, dw.cpu, dw.wq!, dw.work);
    }
    return yield* __flush_work(cur, dw.work);
  })());
}

/** flush_workqueue(): wait for every item queued on `wq` before the call (not timers). */
export function* flush_workqueue(cur: Task, wq: workqueue_struct): KernelBody<void> {
  yield* fn(cur, 'flush_workqueue', (function* () {
    yield* might_sleep(cur, 'flush_workqueue');
    lock_map_acquire(cur, wq.lockdep_map);
    lock_map_release(cur, wq.lockdep_map);
    yield cur.thread.write(wq.obj);
    check_flush_dependency(cur, wq, null);
    const target = wq.nextSeq;
    if (wq.inflight.length === 0 || wq.inflight[0] > target) return;
    const x = DECLARE_COMPLETION(cur.cpu.machine, `wq_flusher:${wq.name}`);
    wq.flushers.push({ target, done: x });
    yield* waitBarrier(cur, x, { kind: 'work', what: `flush_workqueue(${wq.name})`, holders: () => workqueue_holders(wq) }, 'flush_workqueue');
  })());
}

/** drain_workqueue(): flush until nothing is in flight; only the wq's own items may queue meanwhile. */
export function* drain_workqueue(cur: Task, wq: workqueue_struct): KernelBody<void> {
  wq.draining = true;
  for (;;) {
    yield* flush_workqueue(cur, wq);
    yield cur.thread.write(wq.obj);
    if (wq.inflight.length === 0) break;
  }
  wq.draining = false;
}

/** destroy_workqueue(): drain, then stop the rescuer. Queueing on it afterwards is an error. */
export function* destroy_workqueue(cur: Task, wq: workqueue_struct): KernelBody<void> {
  yield* fn(cur, 'destroy_workqueue', (function* () {
    yield* drain_workqueue(cur, wq);
    wq.destroyed = true;
    const r = wq.rescuer;
    if (r !== null && r.rescuerIdle) try_to_wake_up(r.task); // kthread_stop
  })());
}

// ---- workers ----

/** The CPU an unbound worker runs an item on: a wake-placement choice, default the queueing CPU. */
function pickCpu(m: Machine, def: number): number {
  const n = m.cpus.length;
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = i;
  // select_task_rq happens at wakeup: a WAKE-kind choice, so DFS does not count it as a preemption.
  return ids[m.sim.choose(WAKE, ids, n, def)];
}

/**
 * assign_work: give `work` to `w`, unless another worker of the pool runs the same item, which
 * then gets it (an item never runs concurrently with itself on one pool).
 */
function assign_work(work: work_struct, w: worker): boolean {
  const pool = work.pwq!.pool;
  const collision = pool.busy.get(work);
  unlink(work);
  syncManager(pool);
  if (collision !== undefined && collision !== w) {
    collision.scheduled.push(work);
    work.list = collision.scheduled;
    return false;
  }
  w.scheduled.push(work);
  work.list = w.scheduled;
  return true;
}

/** Runs with the pool "locked" (right after a pool step) and returns the same way. */
function* process_scheduled_works(cur: Task, w: worker): KernelBody<void> {
  while (w.scheduled.length > 0) yield* process_one_work(cur, w, w.scheduled[0]);
}

function* process_one_work(cur: Task, w: worker, work: work_struct): KernelBody<void> {
  const m = cur.cpu.machine;
  const pwq = work.pwq!;
  const pool = pwq.pool;
  unlink(work);
  pool.busy.set(work, w);
  w.current_work = work;
  w.current_pwq = pwq;
  w.current_func = work.func;
  w.currentSeq = work.seq;
  w.barriers = work.barriers;
  work.barriers = [];
  work.pwq = null;
  work.pending = false; // set_work_pool_and_clear_pending: it may be queued again from now
  work.lastPool = pool;
  kick_pool(pool); // chains execution in unbound pools (always a no-op for a running bound pool)
  const func = work.func!;
  // A worker in the middle of an item is real work: a hang there keeps the run from ending clean.
  cur.thread.daemon = false;
  if (pool.unbound && w.rescuerOf === null) yield* migrate_task(cur, pickCpu(m, work.cpu));
  const pc = cur.preempt_count;
  const held = cur.held.length;
  const rcu = cur.rcu_read_depth;
  // lockdep: the item runs holding its workqueue's and its own completion maps, as upstream.
  lock_map_acquire(cur, pwq.wq.lockdep_map);
  lock_map_acquire(cur, work.lockdep_map);
  yield* fn(cur, 'process_one_work', fn(cur, func.name || work.name, func(cur, work)));
  lock_map_release(cur, work.lockdep_map);
  lock_map_release(cur, pwq.wq.lockdep_map);
  if (cur.preempt_count !== pc || cur.held.length !== held || cur.rcu_read_depth !== rcu) {
    m.log.printk(cur.cpu.id, `BUG: workqueue leaked atomic, lock or RCU: ${cur.comm}[${cur.pid}]\n     preempt=${hex(cur.preempt_count)} lock=${held}->${cur.held.length} RCU=${rcu}->${cur.rcu_read_depth} workfn=${func.name || work.name}`);
  }
  yield cur.thread.write(pool.obj);
  if (pool.busy.get(work) === w) pool.busy.delete(work);
  w.current_work = null;
  w.current_pwq = null;
  w.current_func = null;
  // Upstream the barriers are work items run right after this one by the same worker.
  const done = w.barriers;
  w.barriers = [];
  pwq_dec_nr_active(pwq);
  done.push(...inflightDone(pwq.wq, w.currentSeq));
  cur.thread.daemon = true;
  for (const x of done) yield* complete(cur, x);
}

/** The manager: create workers until one is idle or the need is gone (maybe_create_worker). */
function* maybe_create_worker(cur: Task, pool: worker_pool): KernelBody<void> {
  const st = pool.st;
  for (;;) {
    pool.creating = true;
    syncManager(pool);
    maybeArmMayday(pool, MAYDAY_INITIAL_TIMEOUT);
    for (;;) {
      const ok = yield* fn(cur, 'create_worker', st.config.createWorker(cur, pool));
      if (ok) {
        spawnWorker(pool, cur.cpu.id);
        break;
      }
      if (st.m.log.firstTime(`wq-create-fail:${pool.id}`)) st.m.log.printk(cur.cpu.id, 'workqueue: Failed to create a worker thread');
      if (!need_to_create_worker(pool)) break;
      yield* schedule_timeout(cur, CREATE_COOLDOWN, { kind: 'flag', what: 'create_worker cooldown' });
      if (!need_to_create_worker(pool)) break;
    }
    pool.creating = false;
    cur.thread.daemon = true;
    delMayday(pool);
    yield cur.thread.write(pool.obj);
    if (!need_to_create_worker(pool)) return;
  }
}

function* worker_thread(cur: Task, w: worker): KernelBody<void> {
  yield* fn(cur, 'worker_thread', (function* () {
    const pool = w.pool!;
    for (;;) {
      // woke_up: under pool->lock. Only idle workers get woken by the pool, so any wakeup
      // before this point is spent; clearing it keeps it from ending a later sleep early.
      yield cur.thread.write(pool.obj);
      worker_leave_idle(w);
      set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
      maybeArmMayday(pool);
      for (;;) {
        // recheck:
        if (!need_more_worker(pool)) break;
        if (!may_start_working(pool) && pool.manager === null) {
          pool.manager = w;
          yield* fn(cur, 'manage_workers', maybe_create_worker(cur, pool));
          pool.manager = null;
          continue;
        }
        set_task_state(cur, 'TASK_RUNNING');
        w.active = true; // worker_clr_flags(WORKER_PREP): counts in nr_running
        do {
          if (assign_work(pool.worklist[0], w)) yield* process_scheduled_works(cur, w);
        } while (keep_working(pool));
        w.active = false;
        break;
      }
      // sleep: idle until kick_pool wakes us (a wakeup from here on is not lost: sleep checks it).
      worker_enter_idle(w);
      set_task_state(cur, 'TASK_UNINTERRUPTIBLE'); // set_current_state(TASK_IDLE) before schedule()
      yield* sleep(cur, IDLE, 'worker_thread');
    }
  })());
}

function* rescuer_thread(cur: Task, r: worker): KernelBody<void> {
  const wq = r.rescuerOf!;
  yield* fn(cur, 'rescuer_thread', (function* () {
    for (;;) {
      yield cur.thread.write(wq.obj); // wq_mayday_lock
      r.rescuerIdle = false;
      set_task_state(cur, 'TASK_UNINTERRUPTIBLE'); // any earlier wakeup was a mayday, which the list check below sees
      const pwq = wq.maydays.shift();
      if (pwq === undefined) {
        if (wq.destroyed) return; // kthread_should_stop
        r.rescuerIdle = true;
        yield* sleep(cur, RESCUER_IDLE, 'rescuer_thread');
        continue;
      }
      set_task_state(cur, 'TASK_RUNNING');
      pwq.onMayday = false;
      const pool = pwq.pool;
      r.pool = pool; // worker_attach_to_pool: run on the pool's CPU
      if (!pool.unbound) yield* migrate_task(cur, pool.cpu);
      yield cur.thread.write(pool.obj);
      // Slurp in every item of this pwq and process them.
      for (const work of [...pool.worklist]) if (work.pwq === pwq) assign_work(work, r);
      if (r.scheduled.length > 0) {
        yield* process_scheduled_works(cur, r);
        // More of it may have become active meanwhile: stay on the list without waiting a tick.
        if (pwq.nr_active > 0 && need_to_create_worker(pool) && !pwq.onMayday) {
          pwq.onMayday = true;
          wq.maydays.push(pwq);
        }
      }
      kick_pool(pool); // leaving: let a regular worker go on
      maybeArmMayday(pool);
      r.pool = null;
    }
  })());
}

// ---- rcu_work (appended: queue_rcu_work) ----
// (An import at the end keeps the code above untouched; ES imports are hoisted.)
import { call_rcu } from './rcu';
import { local_irq_disable as wq_local_irq_disable, local_irq_enable as wq_local_irq_enable } from './irqflags';

/** struct rcu_work: a work item queued on `wq` only after an RCU grace period. */
export class rcu_work {
  readonly work: work_struct;
  /** The workqueue queue_rcu_work was given (set while PENDING). */
  wq: workqueue_struct | null = null;
  constructor(m: Machine, name: string) {
    this.work = new work_struct(m, name);
  }
}

const rcuWorks = new WeakMap<work_struct, rcu_work>();

/** INIT_RCU_WORK(&rwork, func). Returns `rwork`. */
export function INIT_RCU_WORK(rwork: rcu_work, func: work_func_t): rcu_work {
  INIT_WORK(rwork.work, func);
  rcuWorks.set(rwork.work, rwork);
  return rwork;
}

/** to_rcu_work(work): the rcu_work a work item (as its function sees it) belongs to. */
export function to_rcu_work(work: work_struct): rcu_work {
  const r = rcuWorks.get(work);
  if (r === undefined) throw new ProgramError(`to_rcu_work(${work.name}): not an rcu_work`);
  return r;
}

/** rcu_work_rcufn: the RCU callback; queues the work with IRQs off (kernel/workqueue.c). */
export function* rcu_work_rcufn(cur: Task, rwork: rcu_work): KernelBody<void> {
  yield* wq_local_irq_disable(cur);
  yield cur.thread.write(rwork.work.obj);
  const wq = rwork.wq!;
  __queue_work(wq.st, cur, WORK_CPU_UNBOUND, wq, rwork.work);
  yield* wq_local_irq_enable(cur);
}

/**
 * queue_rcu_work(wq, rwork) (kernel/workqueue.c, v6.12): take PENDING (false if it was already
 * pending), then call_rcu; the callback queues the work after a grace period, so the work
 * function runs only once every reader that could see the object has left its section.
 */
export function* queue_rcu_work(cur: Task, wq: workqueue_struct, rwork: rcu_work): KernelBody<boolean> {
  const work = rwork.work;
  yield cur.thread.write(work.obj); // test_and_set_bit(WORK_STRUCT_PENDING_BIT)
  if (work.pending) return false;
  work.pending = true;
  rwork.wq = wq;
  yield* call_rcu(cur, rwork, rcu_work_rcufn, 'rcu_work_rcufn');
  return true;
}
