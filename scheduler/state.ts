/**
 * The program-facing state of one run (AWS Shuttle's `ExecutionState`): what a program reaches
 * through `sim` while it runs — objects, waitables, interrupt sources, timers, the one choice
 * point, findings, counters — and the thread-state transitions those calls make (waking,
 * readiness, spinners). The run loop that drives the threads is engine.ts (Shuttle's
 * `Execution`); Engine is the one concrete class, so every call site stays monomorphic.
 *
 * The members after "run state" that the program-facing API does not name are shared with the
 * run loop (engine.ts) and interrupt delivery (delivery.ts); programs must not use them.
 */
import { FAULT, JITTER, PRUNE, SCHED, WAKE, fpObject, fpPending, fpWaitable, type ChoiceView, type Footprint, type StepObserver, type Strategy } from './choice';
import * as delivery from './delivery';
import type { Engine } from './engine';
import { ProgramError } from './errors';
import type { Finding, FindingInput } from './finding';
import { fpAdd } from './footprint';
import { conformanceProxy } from './conformance';
import { InterruptSource, type InterruptSpec } from './interrupt';
import { P_EXIT, P_RESUME, P_START } from './ops';
import { Path } from './path';
import type { Program } from './program';
import { ReadySet } from './ready';
import { Rng, deriveSeed } from './rng';
import type { EndReason } from './run-result';
import { F_BLOCKED, F_RUN, F_SPIN, Frame, Thread, type ThreadFn } from './thread';
import { TimerQueue } from './timers';
import { Waitable } from './waitable';
import { HEAD_LEN, currentWatch, type Watch } from './watch';

export interface EngineOptions {
  /** Scheduling window in ns: Infinity = interleave mode, 0 = timed mode. */
  window?: number;
  /** Virtual-time horizon: the run ends cleanly when the smallest runnable clock passes it. */
  horizon?: number;
  /** Per-run step budget; exceeding it is a fatal `step_budget` finding. */
  stepBudget?: number;
  /** Heavy instrumentation: keep an event log (replays); never changes the path taken. */
  instrument?: boolean;
  /** Injected faults that may fire per run (further fault choices take the default). */
  maxFaults?: number;
  /**
   * Record where each op was issued (a stack per op: slow). Used to place a crash the engine
   * detects in an op (a release of a free resource, a bad yield) at the code that issued it.
   */
  captureOps?: boolean;
  /**
   * Directories whose code is the tool's own model (e.g. lib/): a crash whose innermost frame
   * outside the engine lies there is an `internal_error`, anywhere else a `scenario_error`.
   */
  internalRoots?: readonly string[];
  /** Keep the run's deviations (default true); off for a hunt's light runs (units.ts). */
  recordPath?: boolean;
  /**
   * Conformance mode (a debug check, slow): model state registered with `shared()` is proxied,
   * and any access to it outside a step that declared its object (or while holding its guard)
   * throws, naming the object and the step. Proves every shared effect is a step.
   */
  conformance?: boolean;
}

/** stepObj outside the run loop (setup, finish): everything may be touched. */
export const STEP_NONE = -2;
/** stepObj inside a timer callback: a timer is a step of its own that may touch anything. */
export const STEP_TIMER = -3;

/** A frame's body until its start step calls the thread function. */
const EMPTY_BODY: Generator<unknown, unknown, unknown> = (function* () {})();

export abstract class ExecutionState implements ChoiceView {
  // ---- configuration ----
  readonly window: number;
  readonly horizon: number;
  readonly stepBudget: number;
  readonly instrument: boolean;
  readonly maxFaults: number;
  readonly captureOps: boolean;
  readonly conformance: boolean;
  readonly recordPath: boolean;
  /** Choices that leave the default are kept (recordPath, or a watch mirroring them); all are counted in `deviated`. */
  readonly keepsDeviations: boolean;
  /** The choices' ordinals (`sub`) are counted: the path is kept, or the strategy reads them. */
  countsSubs = true;
  deviated = 0;
  /**
   * The shared object the step in progress declared (its op's object), NO_OBJECT for a step
   * that declared none (a point, a resume, a start, a delivery), STEP_NONE outside the loop,
   * STEP_TIMER in a timer callback.
   */
  stepObj = STEP_NONE;
  /** Further objects the step in progress declared with also(), and how many. */
  alsoObjs = new Int32Array(16);
  alsoLen = 0;
  readonly internalRoots: readonly string[];
  /** Timed mode (window 0). */
  readonly timed: boolean;
  /** Interleave mode must still look at clocks when there is a horizon or a finite window. */
  readonly clockBound: boolean;
  /** Candidates come from `ready.cand` (timed mode, finite window) rather than the run queue itself. */
  readonly useCand: boolean;

  // ---- ChoiceView ----
  step = 0;
  sub = 0;
  current = -1;
  currentEnabled = false;
  target = -1;
  expectedSteps = 100;

  // ---- run state (@internal below unless documented) ----
  readonly threads: Thread[] = [];
  readonly sources: InterruptSource[] = [];
  readonly waitables: Waitable[] = [];
  readonly objects: string[] = [];
  /** Clock of the last write to each shared object: an access continues no earlier. */
  objTime = new Float64Array(64);
  strategy!: Strategy;
  seed = 0;
  workloadRng: Rng | null = null;
  /** Workload randomness (sizes, delays), seeded from the run seed: it replays; not a choice. Made on first use. */
  get rng(): Rng {
    return (this.workloadRng ??= new Rng(deriveSeed(this.seed, 0x5eed)));
  }
  /** Program-level state slot (the kernel model hangs its machine here). */
  world: any = undefined;
  /** The thread stepping now (null in a timer, setup or finish). */
  exec: Thread | null = null;
  timerNow = 0;
  stopped = false;
  endReason: EndReason = 'done';
  /** The run's event hash. */
  hash = 0;
  events: string[] | null = null;
  readonly findingMap = new Map<string, Finding>();
  findingList: Finding[] = [];
  readonly quiescentHooks: ((stuck: Thread[]) => void)[] = [];
  readonly horizonHooks: ((live: Thread[]) => void)[] = [];
  readonly findingHooks: ((f: Finding) => void)[] = [];

  /** The threads that can take a step. */
  readonly ready: ReadySet;
  irqIds = new Int32Array(64);
  menuIds = new Int32Array(64);
  menuWeights = new Float64Array(64);
  /** The choices this run made that differ from the default. */
  readonly path = new Path();
  /** Blocked threads whose pending interrupts wait on a canDeliver condition. */
  irqWatch: Thread[] = [];
  spinners: Thread[] = [];
  /** Threads spawned and not started yet, in spawn order. */
  readonly starts: Thread[] = [];
  /** With captureOps: where the op of the last OpError crash was issued. */
  crashSite: Error | null = null;
  program: Program | null = null;
  readonly timers = new TimerQueue();

  // ---- footprints (only when the strategy observes steps: DPOR) ----
  obs: StepObserver | null = null;
  readonly fp: Footprint = { all: false, len: 0, keys: new Int32Array(32), writes: new Uint8Array(32) };

  // ---- metrics (@internal) ----
  choices = 0;
  preemptions = 0;
  switches = 0;
  interrupts = 0;
  coalesced = 0;
  timersFired = 0;
  faults = 0;
  counters: Record<string, number> | null = null;
  peaks: Record<string, number> | null = null;
  /** Coverage keys of this run (a Set keeps first-seen order); made on first use. */
  coverSet: Set<string> | null = null;
  classHash = 0;

  // ---- yield watch (watch.ts): a supervisor on another thread sees the run progress ----
  readonly watch: Watch | null;
  /** The watch's header, or a private array when unwatched: the stores need no branch. */
  readonly hb: Int32Array;
  beats = 0;

  constructor(opts: EngineOptions = {}) {
    this.window = opts.window ?? Infinity;
    this.horizon = opts.horizon ?? Infinity;
    this.stepBudget = opts.stepBudget ?? 1_000_000;
    this.instrument = opts.instrument ?? false;
    this.maxFaults = opts.maxFaults ?? 1;
    this.captureOps = opts.captureOps ?? false;
    this.conformance = opts.conformance ?? false;
    this.recordPath = opts.recordPath ?? true;
    this.internalRoots = opts.internalRoots ?? [];
    this.watch = currentWatch();
    this.hb = this.watch !== null ? this.watch.head : new Int32Array(HEAD_LEN);
    this.keepsDeviations = this.recordPath || this.watch !== null;
    this.timed = this.window === 0;
    this.clockBound = this.horizon !== Infinity || this.window !== Infinity;
    this.useCand = this.window !== Infinity;
    this.ready = new ReadySet(this.timed);
    if (!(this.window >= 0)) throw new ProgramError(`window must be >= 0 ns, got ${this.window}`);
  }

  /** Resume t's top frame and run it to its next scheduling point (engine.ts). */
  abstract advance(t: Thread): void;

  // =====================================================================================
  // Program-facing API
  // =====================================================================================

  /** Virtual time of whatever is executing now: the stepping thread, or the firing timer. */
  now(): number {
    return this.exec !== null ? this.exec.clock : this.timerNow;
  }

  /**
   * A model counter of this run (allocations, hypercalls, bytes copied): adds `delta`. Counters
   * are summed over a hunt; they never influence the schedule.
   */
  count(name: string, delta = 1): void {
    const c = (this.counters ??= {});
    c[name] = (c[name] ?? 0) + delta;
  }

  /** A model high-water mark of this run (pool usage, stall time): keeps the largest `v`. */
  peak(name: string, v: number): void {
    const p = (this.peaks ??= {});
    const old = p[name];
    if (old === undefined || v > old) p[name] = v;
  }

  /**
   * Record coverage key `key` for this run (distinct keys, first-seen order). Coverage is
   * observation only: it never influences the schedule or the event hash.
   */
  cover(key: string): void {
    const s = (this.coverSet ??= new Set());
    if (!s.has(key)) s.add(key);
  }

  /**
   * Fold the 32-bit value `x` into this run's interleaving class. The fold is order-free (a sum
   * of scrambled values, a multiset hash), so runs mixing the same values in any order share a
   * class; a caller that cares about a position puts it in `x` (e.g. the n-th taking of a lock).
   */
  mixClass(x: number): void {
    this.classHash = (this.classHash + scramble(x)) | 0;
  }

  /** The thread executing now, or null inside a timer callback / setup. */
  get running(): Thread | null {
    return this.exec;
  }

  spawn(name: string, fn: ThreadFn, clock?: number, opts?: { daemon?: boolean }): Thread {
    // Engine is the one concrete ExecutionState.
    const t = new Thread(this.threads.length, name, this as unknown as Engine, clock ?? this.now());
    if (opts?.daemon) t.daemon = true;
    this.threads.push(t);
    if (this.watch !== null) this.watch.threadName(t.id, name);
    // The body runs to its first op in a start step of its own, after the current step (or
    // setup) ends: never inside the spawner's step.
    const f = new Frame(t, EMPTY_BODY, null);
    t.frames.push(f);
    t.top = f;
    t.opKind = P_START;
    t.opObj = fn;
    // With op sites recorded, a crash before the thread issued any op is placed at its spawn.
    if (this.captureOps) t.opSite = new Error('thread spawned here');
    t.starting = true;
    this.starts.push(t);
    return t;
  }

  /** A stable id for a shared object (visible operations name it). */
  object(name: string): number {
    this.objects.push(name);
    if (this.watch !== null) this.watch.objectName(this.objects.length - 1, name);
    return this.objects.length - 1;
  }

  /**
   * Register model state `target` as shared object `obj`'s state. In conformance mode the
   * returned proxy checks every property read and write: it must happen in a step that declared
   * `obj` (its op's effect or the code after that op up to the next op), in setup, in a timer,
   * or while `guard()` holds (state protected by a lock the context holds). Otherwise it throws,
   * and the run reports where. Outside conformance mode it returns `target` itself.
   */
  shared<T extends object>(obj: number, target: T, guard?: () => boolean): T {
    return this.conformance ? conformanceProxy(this, obj, target, guard) : target;
  }


  /**
   * Declare that the step in progress also touches shared object `obj`: a primitive whose one
   * step acts on several objects (complete() waking its waiters sets each waiter's task state,
   * under the wait-queue lock upstream). Part of the step's footprint for conformance and
   * partial-order reduction. Cheap: a no-op unless conformance is on.
   */
  also(obj: number): void {
    if (this.obs !== null) fpAdd(this.fp, fpObject(obj), 1);
    if (!this.conformance) return;
    if (this.alsoLen === this.alsoObjs.length) {
      const a = new Int32Array(this.alsoObjs.length * 2);
      a.set(this.alsoObjs);
      this.alsoObjs = a;
    }
    this.alsoObjs[this.alsoLen++] = obj;
  }

  /**
   * End the run after the current step: the model reached a state it cannot go on from (a
   * hardirq that tried to sleep) after reporting what the kernel prints. A fatal end.
   */
  halt(): void {
    this.stopped = true;
    this.endReason = 'fatal';
  }

  /**
   * End the run cleanly after the current step: the program has reached the end of what it
   * models (no finding; threads still running are not reported as stuck, finish() is not run).
   */
  end(): void {
    this.stopped = true;
  }

  objectName(id: number): string {
    return this.objects[id] ?? `#${id}`;
  }

  waitable(name: string): Waitable {
    const w = new Waitable(this.waitables.length, name);
    this.waitables.push(w);
    return w;
  }

  interruptSource(spec: InterruptSpec): InterruptSource {
    const s = new InterruptSource(this.sources.length, spec);
    this.sources.push(s);
    return s;
  }

  /**
   * Schedule `fn` at virtual time `at` (timers fire in (time, creation order)). A `daemon` timer
   * (a watchdog's check) fires in that order while something else keeps the run going, but when
   * only daemon timers are left and no thread can run, the run is over.
   */
  timer(at: number, fn: () => void, name = 'timer', opts?: { daemon?: boolean }): void {
    this.timers.add(at, fn, name, opts?.daemon === true);
  }

  after(delay: number, fn: () => void, name = 'timer', opts?: { daemon?: boolean }): void {
    this.timer(this.now() + delay, fn, name, opts);
  }

  /**
   * Whether liveness findings (stalls, hung tasks, soft lockups) mean anything in this run: in
   * timed mode, or under a fair strategy. Pure interleaving may starve a thread on purpose.
   */
  get liveness(): boolean {
    return this.timed || this.strategy?.fair === true;
  }

  /** Called when nothing can run but some threads have not finished (deadlock detectors). */
  onQuiescent(hook: (stuck: Thread[]) => void): void {
    this.quiescentHooks.push(hook);
  }

  /**
   * Called once for every new finding (first occurrence), before the run goes on: the program
   * may attach what it knows (the kernel model: each CPU's state at the failing step).
   */
  onFinding(hook: (f: Finding) => void): void {
    this.findingHooks.push(hook);
  }

  /** Called when the run reaches its horizon with threads that have not finished (stall detectors). */
  onHorizon(hook: (live: Thread[]) => void): void {
    this.horizonHooks.push(hook);
  }


  /** Raise an interrupt: it becomes pending on its target (coalesced if already pending). */
  raise(src: InterruptSource): void {
    delivery.raise(this, src);
  }

  /** Move an interrupt source to another target thread (e.g. IRQ affinity change). */
  retarget(src: InterruptSource, t: Thread): void {
    delivery.retarget(this, src, t);
  }

  /** Wake the first waiter of `w` (FIFO). Returns the thread woken, or null. */
  wake(w: Waitable): Thread | null {
    if (this.obs !== null) fpAdd(this.fp, fpWaitable(w.id), 1);
    if (w.waiters.length === 0) return null;
    const f = w.waiters.shift()!;
    this.wakeFrame(f, this.now());
    return f.thread;
  }

  /** Wake one waiter of `w` picked at the choice point (default: the FIFO head). */
  wakeChoice(w: Waitable): Thread | null {
    if (this.obs !== null) fpAdd(this.fp, fpWaitable(w.id), 1);
    const ws = w.waiters;
    if (ws.length <= 1) {
      this.path.nextSub(WAKE, this.step); // keeps later wake choices of this step at their ordinals
      return this.wake(w);
    }
    const n = this.sortedMenu(w.waiterIds());
    const head = ws.at(0)!.thread.id;
    let def = 0;
    while (this.menuIds[def] !== head) def++;
    const id = this.menuIds[this.choose(WAKE, this.menuIds, n, def)];
    const k = ws.findIndex((f) => f.thread.id === id);
    const f = ws.removeAt(k);
    this.wakeFrame(f, this.now());
    return f.thread;
  }

  wakeAll(w: Waitable): number {
    if (this.obs !== null) fpAdd(this.fp, fpWaitable(w.id), 1);
    const n = w.waiters.length;
    const now = this.now();
    while (w.waiters.length > 0) this.wakeFrame(w.waiters.shift()!, now);
    return n;
  }

  /**
   * The one choice point. Picks one of ids[0..n) (ascending stable ids) and returns its index.
   * `def` is the default (used when replaying a schedule that has no deviation here).
   */
  choose(kind: number, ids: Int32Array, n: number, def: number, weights: Float64Array | null = null): number {
    if (this.countsSubs) this.sub = this.path.nextSub(kind, this.step);
    if (n <= 1) return 0;
    const idx = this.strategy.choose(kind, ids, n, def, this, weights);
    if (idx === PRUNE && kind === SCHED && this.obs !== null) {
      // DPOR: every continuation from here is covered by another run.
      this.stopped = true;
      return def;
    }
    if (!(idx >= 0 && idx < n)) throw new ProgramError(`strategy ${this.strategy.name} returned index ${idx} of ${n}`);
    this.deviated += idx !== def ? 1 : 0; // no branch: leaving the default is the strategy's coin
    if (this.keepsDeviations && idx !== def) {
      if (this.recordPath) this.path.record(this.step, this.sub, kind, ids[idx]);
      if (this.watch !== null) this.watch.deviation(this.step, this.sub, kind, ids[idx]);
    }
    this.choices++;
    return idx;
  }

  /** An injected fault that fires with probability p (at most maxFaults per run). */
  fault(p = 0.5): boolean {
    if (this.faults >= this.maxFaults) {
      this.path.nextSub(FAULT, this.step);
      return false;
    }
    this.menuIds[0] = 0;
    this.menuIds[1] = 1;
    this.menuWeights[0] = 1 - p;
    this.menuWeights[1] = p;
    const fired = this.choose(FAULT, this.menuIds, 2, 0, this.menuWeights) === 1;
    if (fired) this.faults++;
    return fired;
  }

  /** Timing jitter: one of `values` (ns), weighted; the default is values[0]. */
  jitter(values: readonly number[], weights?: readonly number[]): number {
    const n = values.length;
    if (n === 0) throw new ProgramError('jitter() needs at least one value');
    this.menuCapacity(n);
    for (let i = 0; i < n; i++) {
      this.menuIds[i] = i;
      this.menuWeights[i] = weights ? weights[i] : 1;
    }
    return values[this.choose(JITTER, this.menuIds, n, 0, this.menuWeights)];
  }

  /** Report a finding. Repeats of a fingerprint count; a fatal one ends the run. */
  report(input: FindingInput): Finding {
    const logged = input.logged !== false;
    let f = this.findingMap.get(input.fingerprint);
    if (f !== undefined) {
      f.count++;
      if (logged) f.loggedCount++;
    } else {
      f = {
        kind: input.kind,
        subkind: input.subkind,
        fingerprint: input.fingerprint,
        headline: input.headline,
        data: input.data,
        text: input.text ?? input.headline,
        fatal: input.fatal === true,
        step: this.step,
        time: this.now(),
        thread: this.exec !== null ? this.exec.id : -1,
        count: 1,
        logged,
        loggedCount: logged ? 1 : 0,
      };
      this.findingMap.set(input.fingerprint, f);
      this.findingList.push(f);
      for (const h of this.findingHooks) h(f);
      if (this.instrument) this.log(`finding ${f.kind}: ${f.headline}`);
    }
    if (f.fatal && !this.stopped) {
      this.stopped = true;
      this.endReason = 'fatal';
    }
    return f;
  }

  /** A strategy saw the program leave the path its replayed prefix recorded. */
  reportNondeterminism(what: string): void {
    this.report({ kind: 'nondeterminism', fingerprint: 'nondeterminism:prefix', headline: `nondeterminism: ${what}`, fatal: true });
  }

  /** A program's own check: a fatal `assertion` finding when `cond` is false. */
  assert(cond: boolean, fingerprint: string, headline: string, text?: string): void {
    if (!cond) this.report({ kind: 'assertion', fingerprint: `assertion:${fingerprint}`, headline, text, fatal: true });
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Add a line to the event log (heavy instrumentation only; free otherwise). */
  trace(msg: string): void {
    if (this.instrument) this.log(msg);
  }

  // =====================================================================================
  // Thread-state transitions (@internal: the run loop and delivery use them too)
  // =====================================================================================

  exitThread(t: Thread): void {
    t.frames.pop();
    t.done = true;
    if (t.inSpinners) this.removeSpinner(t);
    if (this.instrument) this.log(`${t.name} exits`);
    // The exit is what joiners read (DPOR footprint), and it wakes them.
    if (this.obs !== null) fpAdd(this.fp, fpPending(t.id), 1);
    if (t.exitWait !== null) this.wakeAll(t.exitWait);
  }

  /** Thread.join: the joiner's step reads whether `other` has exited. */
  _joinCheck(other: Thread): void {
    if (this.obs !== null) fpAdd(this.fp, fpPending(other.id), 0);
  }

  /** Thread.join: the waitable joiners of `t` block on. */
  _exitWaitable(t: Thread): Waitable {
    return (t.exitWait ??= this.waitable(`exit:${t.name}`));
  }


  wakeFrame(f: Frame, clock: number): void {
    const t = f.thread;
    f.state = F_RUN;
    if (f === t.top) {
      t.opKind = P_RESUME;
      if (clock > t.clock) this.setClock(t, clock);
      if (t.inSpinners) this.removeSpinner(t);
      this.updateEnabled(t);
    } else {
      // Woken underneath an interrupt handler: resumes when the handler returns.
      f.sKind = P_RESUME;
      if (clock > f.wakeClock) f.wakeClock = clock;
    }
  }

  setClock(t: Thread, c: number): void {
    t.clock = c;
    if (this.timed && t.inReady) this.ready.rekey(t);
  }

  // ---- spinners ----

  addSpinner(t: Thread): void {
    if (!t.inSpinners) {
      t.inSpinners = true;
      this.spinners.push(t);
    }
  }

  removeSpinner(t: Thread): void {
    t.inSpinners = false;
    const i = this.spinners.indexOf(t);
    if (i >= 0) this.spinners.splice(i, 1);
  }

  /** Re-derive whether t can take a step and put it in or out of the ready structure. */
  updateEnabled(t: Thread): void {
    // Short (the idle case is a method of its own) so the step's callers inline it.
    const en = t.done || t.starting ? false : t.top.state === F_RUN && t.opKind !== P_EXIT ? true : this.idleEnabled(t);
    if (en !== t.inReady) {
      if (!en) this.ready.remove(t);
      else {
        if (this.obs !== null && this.exec !== t) this.obs.noteEnabled(t.id);
        this.ready.insert(t);
      }
    } else if (en && this.timed) {
      // A thread kept in place during its step has a stale key (clock and class).
      this.ready.rekey(t);
    }
  }

  /** A thread blocked, spinning or exiting is enabled only for an interrupt it can take now. */
  private idleEnabled(t: Thread): boolean {
    if (t.pendingIrqs.length > 0 && delivery.hasDeliverable(t)) return true;
    if (t.opKind === P_EXIT && t.top.state === F_RUN && t.frames.length === 1) {
      // The interrupt it waited for at exit went elsewhere or can no longer land.
      this.exitThread(t);
    } else if (t.pendingIrqs.length > 0 && !t.inIrqWatch && t.pendingIrqs.some((s) => s.canDeliver !== undefined)) {
      // A canDeliver condition may turn true later: look again after every step.
      t.inIrqWatch = true;
      this.irqWatch.push(t);
    }
    return false;
  }


  /**
   * Called with the length of every span a thread spent with asynchronous events masked (the
   * kernel model: IRQs off), when it ends. Null: no accounting.
   */
  onMaskedSpan: ((t: Thread, ns: number) => void) | null = null;

  /** A thread's interruptibility changed: open or close a masked span. */
  _maskChanged(t: Thread, interruptible: boolean): void {
    if (this.onMaskedSpan === null) return;
    if (!interruptible) t.maskedAt = t.clock;
    else if (t.maskedAt >= 0) {
      const ns = t.clock - t.maskedAt;
      t.maskedAt = -1;
      this.onMaskedSpan(t, ns);
    }
  }

  /** Thread.interruptible setter. */
  _interruptibilityChanged(t: Thread): void {
    if (this.exec !== t && this.obs !== null) fpAdd(this.fp, fpPending(t.id), 1);
    if (this.exec !== t) this.updateEnabled(t);
  }

  waitSite(t: Thread): string {
    const f = t.top;
    if (f.state === F_BLOCKED) {
      const w = this.waitables.find((x) => x.waiters.includes(f));
      return w ? w.name : '?';
    }
    if (f.state === F_SPIN) return 'spin';
    return t.pendingIrqs.length > 0 ? 'masked-irq' : 'run';
  }

  describeWait(t: Thread): string {
    const f = t.top;
    const irq = t.pendingIrqs.length ? ` (pending: ${t.pendingIrqs.map((s) => s.name).join(', ')}${t._interruptible ? '' : ', masked'})` : '';
    if (f.state === F_BLOCKED) return `blocked on ${this.waitSite(t)}${irq}`;
    if (f.state === F_SPIN) return `spinning${irq}`;
    return `runnable${irq}`;
  }

  /** Largest clock of any thread or timer so far (ns). */
  endTime(): number {
    let m = this.timerNow;
    for (const t of this.threads) if (t.clock > m) m = t.clock;
    return m;
  }

  menuCapacity(n: number): void {
    if (n <= this.menuIds.length) return;
    this.menuIds = new Int32Array(n * 2);
    this.menuWeights = new Float64Array(n * 2);
  }

  sortedMenu(ids: number[]): number {
    this.menuCapacity(ids.length);
    ids.sort((a, b) => a - b);
    for (let i = 0; i < ids.length; i++) this.menuIds[i] = ids[i];
    return ids.length;
  }

  log(msg: string): void {
    this.events!.push(`${this.step} @${this.now()} ${msg}`);
  }
}

/**
 * murmur3's 32-bit finaliser over x offset by a constant (so mixing 0 counts too): a bijection
 * that spreads every input bit, for mixClass's sum.
 */
function scramble(x: number): number {
  let h = (x ^ 0x9e3779b9) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

