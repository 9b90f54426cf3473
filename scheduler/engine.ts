/**
 * The deterministic discrete-event engine. It runs the threads of one program for one schedule:
 * picks which enabled thread takes the next visible step, delivers interrupts at the points the
 * strategy picks, fires timers in (time, sequence) order, carries virtual time across
 * synchronisation, and records every choice that differs from the default as a deviation.
 *
 * Knows nothing of kernels: the kernel model (lib/) is a program built from these pieces.
 *
 * Modes, one knob (`window`): a thread is a scheduling candidate when its clock is within
 * `window` ns of the smallest runnable clock. window = Infinity ("interleave") reaches every
 * order; window = 0 ("timed") runs in time order with ties as choices. In timed mode local work
 * is a step of its own (so other threads' earlier events come first) and an interrupt raised
 * while its target is in the middle of local work splits that work.
 */
import { FAULT, IRQ, JITTER, NONE, PRUNE, SCHED, WAKE, fpObject, fpPending, fpWaitable, type ChoiceView, type Footprint, type StepObserver, type Strategy } from './choice';
import { InputError, ProgramError } from './errors';
import type { Finding, FindingInput } from './finding';
import { mix, mixNum } from './hash';
import { ClockHeap, TimerHeap } from './heap';
import { InterruptSource, type InterruptSpec } from './interrupt';
import {
  NO_OBJECT,
  OP,
  OP_ACCESS,
  OP_ACQUIRE,
  OP_BLOCK,
  OP_NAMES,
  OP_RELAX,
  OP_RELEASE,
  OP_SPIN,
  OP_WORK,
  P_CONT,
  P_EXIT,
  P_RESUME,
  P_START,
} from './ops';
import type { Program } from './program';
import { Resource } from './resource';
import { Rng, deriveSeed } from './rng';
import { F_BLOCKED, F_RUN, F_SPIN, Frame, Thread, type Effect, type ThreadFn } from './thread';
import { crashFinding, OpError } from './crash';
import { ReplayStrategy } from './strategies/replay';
import { Waitable } from './waitable';
import { HEAD_LEN, W_BEAT, W_OBJ, W_STEP, W_THREAD, currentWatch, type Watch } from './watch';

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

export type EndReason = 'done' | 'fatal' | 'horizon' | 'quiescent';

export interface RunMetrics {
  steps: number;
  /** Choices actually put to the strategy (more than one candidate). */
  choices: number;
  /**
   * CHESS count: scheduling choices that switched away from the thread that ran last while it
   * could have gone on. Resuming invisible local work (timed mode) is never a choice, so it
   * never counts.
   */
  preemptions: number;
  /** Every change of the thread taking steps. */
  switches: number;
  interrupts: number;
  /** Raises of an interrupt that was already pending. */
  coalesced: number;
  timers: number;
  faults: number;
  deviations: number;
  /** Largest thread clock at the end (ns). */
  endTime: number;
  /** Threads spawned in the run, daemon threads included (PCT's n). Set on every run's result. */
  threads?: number;
  /** Model counters (sim.count): summed over a hunt's runs. Absent when the run kept none. */
  counters?: Record<string, number>;
  /** Model high-water marks (sim.peak): the largest over a hunt's runs. */
  peaks?: Record<string, number>;
}

export interface Deviation {
  step: number;
  sub: number;
  kind: number;
  id: number;
}

export interface RunResult {
  seed: number;
  endReason: EndReason;
  findings: Finding[];
  metrics: RunMetrics;
  /** Hash of the event log: equal paths give equal hashes. */
  hash: number;
  deviations: Deviation[];
  /** Event log, only with instrument: true. */
  events: string[] | null;
  /** Coverage keys the program recorded (sim.cover), distinct, in first-seen order; null when none. */
  coverage: readonly string[] | null;
  /** The run's interleaving class (sim.mixClass), uint32; 0 when nothing was mixed in. */
  interleaving: number;
}

interface Timer {
  fn: () => void;
  name: string;
  /** A watchdog timer: fires in order while the run lives, never keeps it alive on its own. */
  daemon: boolean;
}

const INLINE_LIMIT = 1_000_000;
/** A frame's body until its start step calls the thread function. */
const EMPTY_BODY: Generator<unknown, unknown, unknown> = (function* () {})();
const NO_DEVIATIONS = new Int32Array(0);
const NO_READS: readonly number[] = [];

/** A run's result; deviations stay packed until someone asks for them (most hunt runs never do). */
class PackedRunResult implements RunResult {
  private unpacked: Deviation[] | null = null;
  constructor(
    readonly seed: number,
    readonly endReason: EndReason,
    readonly findings: Finding[],
    readonly metrics: RunMetrics,
    readonly hash: number,
    private readonly packed: Int32Array,
    readonly events: string[] | null,
    readonly coverage: readonly string[] | null,
    readonly interleaving: number,
  ) {}

  get deviations(): Deviation[] {
    if (this.unpacked === null) {
      const p = this.packed;
      const out: Deviation[] = [];
      for (let i = 0; i < p.length; i += 4) out.push({ step: p[i], sub: p[i + 1], kind: p[i + 2], id: p[i + 3] });
      this.unpacked = out;
    }
    return this.unpacked;
  }
}

export class Engine implements ChoiceView {
  // ---- configuration ----
  readonly window: number;
  readonly horizon: number;
  readonly stepBudget: number;
  readonly instrument: boolean;
  readonly maxFaults: number;
  readonly captureOps: boolean;
  readonly conformance: boolean;
  /**
   * The shared object the step in progress declared (its op's object), NO_OBJECT for a step
   * that declared none (a point, a resume, a start, a delivery), STEP_NONE outside the loop,
   * STEP_TIMER in a timer callback.
   */
  stepObj = STEP_NONE;
  /** Further objects the step in progress declared with also(), and how many. */
  private alsoObjs = new Int32Array(16);
  private alsoLen = 0;
  readonly internalRoots: readonly string[];
  private readonly timed: boolean;
  /** Interleave mode must still look at clocks when there is a horizon or a finite window. */
  private readonly clockBound: boolean;
  /** Candidates come from `cand` (timed mode, finite window) rather than the run queue itself. */
  private readonly useCand: boolean;

  // ---- ChoiceView ----
  step = 0;
  sub = 0;
  current = -1;
  currentEnabled = false;
  target = -1;
  expectedSteps = 100;

  // ---- run state ----
  readonly threads: Thread[] = [];
  readonly sources: InterruptSource[] = [];
  private readonly waitables: Waitable[] = [];
  private readonly objects: string[] = [];
  /** Clock of the last write to each shared object: an access continues no earlier. */
  private objTime = new Float64Array(64);
  private strategy!: Strategy;
  seed = 0;
  private workloadRng: Rng | null = null;
  /**
   * Workload randomness for the program (sizes, delays): seeded from the run seed, which the
   * schedule carries, so it replays; it is not a scheduling choice. Made on first use.
   */
  get rng(): Rng {
    return (this.workloadRng ??= new Rng(deriveSeed(this.seed, 0x5eed)));
  }
  /** Program-level state slot (the kernel model hangs its machine here). */
  world: any = undefined;
  private exec: Thread | null = null;
  private timerNow = 0;
  private stopped = false;
  private endReason: EndReason = 'done';
  private hash = 0;
  private events: string[] | null = null;
  private readonly findingMap = new Map<string, Finding>();
  private findingList: Finding[] = [];
  private readonly quiescentHooks: ((stuck: Thread[]) => void)[] = [];
  private readonly horizonHooks: ((live: Thread[]) => void)[] = [];
  private readonly findingHooks: ((f: Finding) => void)[] = [];

  // ready structures: a sorted run queue (interleave / finite window) or a clock heap (timed)
  private runq = new Int32Array(64);
  private runqLen = 0;
  private readonly heap = new ClockHeap(64);
  private cand = new Int32Array(64);
  private irqIds = new Int32Array(64);
  private menuIds = new Int32Array(64);
  private menuWeights = new Float64Array(64);
  /** Per-kind ordinal of choices within the current step (a deviation's `sub`). */
  private readonly subStep = new Float64Array(5).fill(-1);
  private readonly subCount = new Int32Array(5);
  /** Blocked threads whose pending interrupts wait on a canDeliver condition. */
  private irqWatch: Thread[] = [];
  private spinners: Thread[] = [];
  /** Threads spawned and not started yet, in spawn order. */
  private readonly starts: Thread[] = [];
  /** With captureOps: where the op of the last OpError crash was issued. */
  crashSite: Error | null = null;
  private program: import('./program').Program | null = null;
  private readonly timers = new TimerHeap<Timer>();
  /** Pending timers that are not daemon timers. */
  private liveTimers = 0;

  // ---- footprints (only when the strategy observes steps: DPOR) ----
  private obs: StepObserver | null = null;
  private readonly fp: Footprint = { all: false, len: 0, keys: new Int32Array(32), writes: new Uint8Array(32) };

  // ---- metrics and deviations ----
  private choices = 0;
  private preemptions = 0;
  private switches = 0;
  private interrupts = 0;
  private coalesced = 0;
  private timersFired = 0;
  private faults = 0;
  /** Deviations packed as (step, sub, kind, id) quadruples; unpacked only when asked for. */
  private dev = new Int32Array(256);
  private devLen = 0;
  private counters: Record<string, number> | null = null;
  private peaks: Record<string, number> | null = null;
  /** Coverage keys of this run (a Set keeps first-seen order); made on first use. */
  private coverSet: Set<string> | null = null;
  private classHash = 0;

  // ---- yield watch (watch.ts): a supervisor on another thread sees the run progress ----
  private readonly watch: Watch | null;
  /** The watch's header, or a private array when unwatched: the stores need no branch. */
  private readonly hb: Int32Array;
  private beats = 0;

  constructor(opts: EngineOptions = {}) {
    this.window = opts.window ?? Infinity;
    this.horizon = opts.horizon ?? Infinity;
    this.stepBudget = opts.stepBudget ?? 1_000_000;
    this.instrument = opts.instrument ?? false;
    this.maxFaults = opts.maxFaults ?? 1;
    this.captureOps = opts.captureOps ?? false;
    this.conformance = opts.conformance ?? false;
    this.internalRoots = opts.internalRoots ?? [];
    this.watch = currentWatch();
    this.hb = this.watch !== null ? this.watch.head : new Int32Array(HEAD_LEN);
    this.timed = this.window === 0;
    this.clockBound = this.horizon !== Infinity || this.window !== Infinity;
    this.useCand = this.window !== Infinity;
    if (!(this.window >= 0)) throw new ProgramError(`window must be >= 0 ns, got ${this.window}`);
  }

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
    const t = new Thread(this.threads.length, name, this, clock ?? this.now());
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
    if (!this.conformance) return target;
    const sim = this;
    const check = (key: PropertyKey, write: boolean): void => {
      const s = sim.stepObj;
      if (s === obj || s === STEP_NONE || s === STEP_TIMER) return;
      for (let i = 0; i < sim.alsoLen; i++) if (sim.alsoObjs[i] === obj) return;
      if (guard !== undefined && guard()) return;
      const who = sim.exec !== null ? `thread ${sim.exec.name}` : 'no thread';
      const declared = s === NO_OBJECT ? 'no object' : sim.objectName(s);
      throw new ProgramError(
        `conformance: ${write ? 'write of' : 'read of'} ${sim.objectName(obj)}.${String(key)} by ${who} at step ${sim.step}, in a step that declared ${declared}: every shared effect must be a visible op on its object`,
      );
    };
    return new Proxy(target, {
      get(t, key, recv) {
        if (typeof key === 'string') check(key, false);
        return Reflect.get(t, key, recv);
      },
      set(t, key, v, recv) {
        check(key, true);
        return Reflect.set(t, key, v, recv);
      },
    });
  }

  /**
   * Declare that the step in progress also touches shared object `obj`: a primitive whose one
   * step acts on several objects (complete() waking its waiters sets each waiter's task state,
   * under the wait-queue lock upstream). Part of the step's footprint for conformance and
   * partial-order reduction. Cheap: a no-op unless conformance is on.
   */
  also(obj: number): void {
    if (this.obs !== null) this.fpAdd(fpObject(obj), 1);
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
    if (!(at >= 0) || !Number.isFinite(at)) throw new ProgramError(`timer time must be a finite non-negative number, got ${at}`);
    const daemon = opts?.daemon === true;
    if (!daemon) this.liveTimers++;
    this.timers.push(Math.max(at, 0), { fn, name, daemon });
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
    if (!(src instanceof InterruptSource)) throw new ProgramError(`raise() needs an interrupt source, got ${describe(src)}`);
    // A raise reads and writes the target's pending set, coalesced or not (DPOR footprint).
    if (this.obs !== null) {
      this.fpAdd(fpPending(src.target.id), 1);
      this.fpReads(src.canDeliver === undefined ? NO_READS : src.reads);
    }
    if (src.pending) {
      src.coalesced++;
      this.coalesced++;
      return;
    }
    const t = src.target;
    const now = this.now();
    src.pending = true;
    src.raiseTime = now;
    const list = t.pendingIrqs;
    let i = list.length;
    list.push(src);
    while (i > 0 && list[i - 1].id > src.id) {
      list[i] = list[i - 1];
      i--;
    }
    list[i] = src;
    if (this.instrument) this.log(`raise ${src.name} -> ${t.name}`);
    this.strategy.notePending(src.id, this);
    if (t.done) return;
    if (t._interruptible && this.canTake(src, t)) {
      if (t.top.state !== F_RUN || t.opKind === P_EXIT) {
        // An idle (blocked, spinning, exiting) target takes the interrupt no earlier than its raise.
        if (now > t.clock) this.setClock(t, now);
      } else {
        this.splitWork(t, now);
      }
    }
    this.updateEnabled(t);
  }

  /**
   * Timed mode: if t is in the middle of local work that began before `at`, split the work so
   * an interrupt raised at `at` is taken then; the rest of the work follows the handler.
   */
  private splitWork(t: Thread, at: number): void {
    if (!this.timed || t.opKind !== P_CONT || t.clock <= at) return;
    const start = Math.max(at, t.workStart);
    const rest = t.clock - start;
    if (rest > 0) {
      t.top.deferredNs += rest;
      this.setClock(t, start);
    }
  }

  /** src's extra delivery condition, with its errors reported as the program's. */
  private canTake(src: InterruptSource, t: Thread): boolean {
    if (src.canDeliver === undefined) return true;
    try {
      return src.canDeliver(t) === true;
    } catch (e) {
      throw wrapError(`canDeliver of interrupt ${src.name}`, e);
    }
  }

  private pred(t: Thread): boolean {
    try {
      return (t.opObj as () => boolean)() === true;
    } catch (e) {
      throw wrapError(`spin predicate of thread ${t.name}`, e);
    }
  }

  /** Move an interrupt source to another target thread (e.g. IRQ affinity change). */
  retarget(src: InterruptSource, t: Thread): void {
    if (src.target === t) return;
    const old = src.target;
    if (this.obs !== null) {
      this.fpAdd(fpPending(old.id), 1);
      this.fpAdd(fpPending(t.id), 1);
    }
    if (src.pending) {
      old.pendingIrqs.splice(old.pendingIrqs.indexOf(src), 1);
      src.pending = false;
      src.target = t;
      this.raise(src);
      this.updateEnabled(old);
    } else {
      src.target = t;
    }
  }

  /** Wake the first waiter of `w` (FIFO). Returns the thread woken, or null. */
  wake(w: Waitable): Thread | null {
    if (this.obs !== null) this.fpAdd(fpWaitable(w.id), 1);
    if (w.waiters.length === 0) return null;
    const f = w.waiters.shift()!;
    this.wakeFrame(f, this.now());
    return f.thread;
  }

  /** Wake one waiter of `w` picked at the choice point (default: the FIFO head). */
  wakeChoice(w: Waitable): Thread | null {
    if (this.obs !== null) this.fpAdd(fpWaitable(w.id), 1);
    const ws = w.waiters;
    if (ws.length <= 1) {
      this.nextSub(WAKE); // keeps later wake choices of this step at their ordinals
      return this.wake(w);
    }
    const n = this.sortedMenu(ws.map((f) => f.thread.id));
    const head = ws[0].thread.id;
    let def = 0;
    while (this.menuIds[def] !== head) def++;
    const id = this.menuIds[this.choose(WAKE, this.menuIds, n, def)];
    const k = ws.findIndex((f) => f.thread.id === id);
    const f = ws.splice(k, 1)[0];
    this.wakeFrame(f, this.now());
    return f.thread;
  }

  wakeAll(w: Waitable): number {
    if (this.obs !== null) this.fpAdd(fpWaitable(w.id), 1);
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
    this.sub = this.nextSub(kind);
    if (n <= 1) return 0;
    const idx = this.strategy.choose(kind, ids, n, def, this, weights);
    if (idx === PRUNE && kind === SCHED && this.obs !== null) {
      // DPOR: every continuation from here is covered by another run.
      this.stopped = true;
      return def;
    }
    if (!(idx >= 0 && idx < n)) throw new ProgramError(`strategy ${this.strategy.name} returned index ${idx} of ${n}`);
    if (idx !== def) {
      if (this.devLen + 4 > this.dev.length) {
        const d = new Int32Array(this.dev.length * 2);
        d.set(this.dev);
        this.dev = d;
      }
      const d = this.dev, k = this.devLen;
      d[k] = this.step;
      d[k + 1] = this.sub;
      d[k + 2] = kind;
      d[k + 3] = ids[idx];
      this.devLen = k + 4;
      if (this.watch !== null) this.watch.deviation(this.step, this.sub, kind, ids[idx]);
    }
    this.choices++;
    return idx;
  }

  /**
   * Ordinal of the next choice of `kind` in this step. Choices are keyed per kind, and every
   * call counts (even with one candidate), so deleting a deviation that changes how many
   * candidates one choice has, or whether a choice of another kind happens, never shifts the
   * key of a later choice.
   */
  private nextSub(kind: number): number {
    if (this.subStep[kind] !== this.step) {
      this.subStep[kind] = this.step;
      this.subCount[kind] = 0;
    }
    return this.subCount[kind]++;
  }

  /** An injected fault that fires with probability p (at most maxFaults per run). */
  fault(p = 0.5): boolean {
    if (this.faults >= this.maxFaults) {
      this.nextSub(FAULT);
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
  // Running
  // =====================================================================================

  run(program: Program, strategy: Strategy, seed: number, expectedSteps = 100): RunResult {
    this.reset(strategy, seed, expectedSteps);
    this.program = program;
    let inSetup = true;
    if (this.watch !== null) {
      this.watch.begin(seed);
      // Beats go on from the last engine's in this thread: a new engine is progress too.
      this.beats = this.hb[W_BEAT] + 1;
      this.hb[W_BEAT] = this.beats;
    }
    try {
      program.setup(this);
      inSetup = false;
      this.loop();
      if (!this.stopped && program.finish) {
        this.exec = null;
        this.timerNow = this.endTime();
        this.hb[W_THREAD] = -1;
        program.finish(this);
      }
    } catch (e) {
      // Bad input (an option, a schedule) is the caller's to report, and so is a program
      // refusing its configuration in setup (a ProgramError naming a bad parameter: exit 2 at
      // the command line). Anything else thrown in a run is a finding of that run, never a
      // lost hunt.
      if (e instanceof InputError || (inSetup && e instanceof ProgramError && !(e instanceof OpError))) throw e;
      this.crashed(e);
    }
    this.program = null;
    strategy.end(this.step);
    return this.result();
  }

  /** An exception escaped the run: record it as a fatal internal_error or scenario_error. */
  private crashed(e: unknown): void {
    const t = this.exec;
    let site: Error | null = null;
    if (e instanceof OpError) {
      // Thrown by the engine about an op: place it where the op was issued.
      site = this.captureOps ? e.thread.opSite : this.locateOpSite(e.thread.id);
    }
    if (e instanceof OpError) this.crashSite = e.thread.opSite;
    const input = crashFinding(e, {
      thread: t !== null ? t.name : e instanceof OpError ? e.thread.name : null,
      step: this.step,
      site,
      internalRoots: this.internalRoots,
    });
    this.exec = t;
    this.stopped = false;
    try {
      this.report(input);
    } catch {
      // A finding hook failed on the broken state: keep the finding without what hooks add.
      this.findingHooks.length = 0;
      this.stopped = false;
      this.report(input);
    }
    this.stopped = true;
    this.endReason = 'fatal';
  }

  /**
   * Re-run this run's schedule (its deviations so far) with op sites recorded, up to the same
   * crash, and return where the failing op was issued. Runs are deterministic, so the re-run
   * takes the same path.
   */
  private locateOpSite(threadId: number): Error | null {
    if (this.program === null) return null;
    const devs: { step: number; sub: number; kind: number; id: number }[] = [];
    for (let i = 0; i < this.devLen; i += 4) devs.push({ step: this.dev[i], sub: this.dev[i + 1], kind: this.dev[i + 2], id: this.dev[i + 3] });
    const e2 = new Engine({ window: this.window, horizon: this.horizon, stepBudget: this.stepBudget, maxFaults: this.maxFaults, captureOps: true, internalRoots: this.internalRoots });
    e2.run(this.program, new ReplayStrategy(devs, 'lenient'), this.seed, this.expectedSteps);
    void threadId;
    return e2.crashSite;
  }

  private reset(strategy: Strategy, seed: number, expectedSteps: number): void {
    this.strategy = strategy;
    this.seed = seed;
    this.expectedSteps = expectedSteps;
    this.workloadRng = null;
    this.onMaskedSpan = null;
    strategy.begin(seed, expectedSteps);
    this.step = 0;
    this.sub = 0;
    this.current = -1;
    this.currentEnabled = false;
    this.target = -1;
    this.threads.length = 0;
    this.sources.length = 0;
    this.waitables.length = 0;
    this.objects.length = 0;
    this.objTime.fill(0);
    this.world = undefined;
    this.exec = null;
    this.timerNow = 0;
    this.obs = strategy.observer ?? null;
    this.stopped = false;
    this.endReason = 'done';
    this.hash = 0x1234567;
    this.events = this.instrument ? [] : null;
    if (this.findingList.length > 0) {
      this.findingMap.clear();
      this.findingList = [];
    }
    this.quiescentHooks.length = 0;
    this.horizonHooks.length = 0;
    this.findingHooks.length = 0;
    this.runqLen = 0;
    this.heap.clear();
    this.spinners.length = 0;
    this.starts.length = 0;
    this.irqWatch.length = 0;
    this.subStep.fill(-1);
    this.timers.clear();
    this.liveTimers = 0;
    this.choices = this.preemptions = this.switches = this.interrupts = 0;
    this.coalesced = this.timersFired = this.faults = 0;
    this.devLen = 0;
    this.counters = this.peaks = null;
    this.coverSet = null;
    this.classHash = 0;
  }

  private loop(): void {
    const budget = this.stepBudget;
    for (;;) {
      if (this.starts.length > 0) this.runStarts();
      if (this.stopped) return;
      if (this.step >= budget) {
        this.report({
          kind: 'step_budget',
          fingerprint: 'step_budget',
          headline: `step budget exhausted: ${budget} steps without the run finishing`,
          fatal: true,
        });
        return;
      }
      const n = this.timed ? this.collectTimed() : this.collectWindow();
      if (n < 0) return; // horizon reached
      if (n === 1 && this.timed) {
        // Fast path: timed-mode resumption of local work with nothing else to decide.
        const t = this.threads[this.cand[0]];
        if (t.opKind === P_CONT && t.pendingIrqs.length === 0 && t.top.deferredNs === 0 && !this.instrument) {
          if (t.id !== this.current) this.switches++;
          this.currentEnabled = t.id === this.current;
          this.current = t.id;
          this.exec = t;
          const start = t.clock;
          this.mixStep(t, P_CONT);
          this.advance(t);
          this.step++;
          this.exec = null;
          this.afterStep(start);
          if (!t.done && t.top.state === F_RUN && (t.opKind as number) !== P_EXIT && t.inReady) this.heap.update(t.id, t.clock);
          else this.updateEnabled(t);
          continue;
        }
      }
      if (n === 0) {
        this.quiescent();
        return;
      }
      const ids = this.useCand ? this.cand : this.runq;
      const prev = this.current;
      let t: Thread;
      if (n === 1) {
        t = this.threads[ids[0]];
        this.currentEnabled = t.id === prev;
      } else {
        // Default: the thread that ran last goes on (no preemption), else the lowest id.
        let def = 0;
        let prevIn = false;
        let cont = -1;
        for (let i = 0; i < n; i++) {
          const id = ids[i];
          if (id === prev) {
            def = i;
            prevIn = true;
          }
          if (cont < 0 && this.timed && this.threads[id].opKind === P_CONT) cont = i;
        }
        this.currentEnabled = prevIn;
        // Resuming local work (timed mode) commutes with everything: no choice needed.
        const idx = cont >= 0 ? cont : this.choose(SCHED, ids, n, def);
        if (this.stopped) return; // pruned, or a nondeterminism finding
        t = this.threads[ids[idx]];
        if (prevIn && t.id !== prev && cont < 0) this.preemptions++;
      }
      if (t.id !== prev) this.switches++;
      this.current = t.id;
      this.stepThread(t);
    }
  }

  /**
   * Start the threads spawned since the last step, in spawn order: each body runs to its first
   * op (local code only: it commutes with every other step, so it is no choice).
   */
  private runStarts(): void {
    const list = this.starts;
    if (this.obs !== null) this.fpReset();
    for (let i = 0; i < list.length && !this.stopped; i++) {
      const t = list[i];
      t.starting = false;
      const fn = t.opObj as ThreadFn;
      t.opObj = null;
      this.exec = t;
      this.hash = mix(this.hash, 0x57a7 + t.id);
      if (this.instrument) this.log(`${t.name} starts`);
      try {
        t.top.gen = fn(t);
      } catch (e) {
        throw this.threadError(t, e);
      }
      const start = t.clock;
      const outer = this.stepObj;
      this.stepObj = NO_OBJECT;
      this.alsoLen = 0;
      this.advance(t);
      this.stepObj = outer;
      this.exec = null;
      this.afterStep(start);
      this.updateEnabled(t);
    }
    list.length = 0;
    // Starts are part of the step that spawned them (they run right after it, as its sequel).
    if (this.obs !== null && this.obs.stepDone(-1, this.fp)) this.stopped = true;
  }

  /**
   * Timed mode: the threads at the smallest clock go into cand. They all stay in the heap;
   * the one that steps has its key fixed up afterwards (one sift instead of a pop and a push).
   * Fires timers that are due first.
   */
  private collectTimed(): number {
    const h = this.heap;
    for (;;) {
      const tt = this.timers.size > 0 ? this.timers.peekTime() : Infinity;
      if (h.size === 0 || tt <= h.peekKey()) {
        if (tt === Infinity || (h.size === 0 && this.liveTimers === 0)) return 0;
        if (tt > this.horizon) return this.endAtHorizon();
        this.fireTimer();
        if (this.stopped) return -1;
        continue;
      }
      break;
    }
    const mc = h.peekKey();
    if (mc > this.horizon) return this.endAtHorizon();
    const top = h.peekId();
    // Resuming local work commutes with every other step: take it without gathering ties.
    if (this.threads[top].opKind === P_CONT || h.minIsUnique()) {
      this.cand[0] = top;
      return 1;
    }
    if (this.cand.length < h.size) this.cand = new Int32Array(h.size * 2);
    return h.gatherMin(this.cand);
  }

  /** Interleave mode / finite window: candidates are runnable threads within window of the min clock. */
  private collectWindow(): number {
    for (;;) {
      if (!this.clockBound && this.timers.size === 0) return this.runqLen;
      let mc = Infinity;
      const rq = this.runq, th = this.threads;
      for (let i = 0; i < this.runqLen; i++) {
        const c = th[rq[i]].clock;
        if (c < mc) mc = c;
      }
      const tt = this.timers.size > 0 ? this.timers.peekTime() : Infinity;
      if (tt !== Infinity && (this.runqLen === 0 || mc >= tt)) {
        if (this.runqLen === 0 && this.liveTimers === 0) return 0;
        if (tt > this.horizon) return this.endAtHorizon();
        this.fireTimer();
        if (this.stopped) return -1;
        continue;
      }
      if (mc > this.horizon && mc !== Infinity) return this.endAtHorizon();
      if (this.window === Infinity) return this.runqLen;
      if (this.cand.length < this.runqLen) this.cand = new Int32Array(this.runqLen * 2);
      let n = 0;
      const lim = mc + this.window;
      for (let i = 0; i < this.runqLen; i++) if (th[rq[i]].clock <= lim) this.cand[n++] = rq[i];
      return n;
    }
  }

  private endAtHorizon(): number {
    this.endReason = 'horizon';
    if (this.horizonHooks.length > 0) {
      const live: Thread[] = [];
      for (const t of this.threads) if (!t.done && !t.daemon) live.push(t);
      if (live.length > 0) for (const h of this.horizonHooks) if (!this.stopped) h(live);
    }
    return -1;
  }

  private fireTimer(): void {
    const time = this.timers.peekTime();
    const tm = this.timers.pop();
    if (!tm.daemon) this.liveTimers--;
    this.exec = null;
    if (time > this.timerNow) this.timerNow = time;
    this.timersFired++;
    this.hash = mix(mixNum(this.hash, time), 0x7173);
    if (this.instrument) this.log(`timer ${tm.name}`);
    this.stepObj = STEP_TIMER;
    this.hb[W_STEP] = this.step;
    this.hb[W_THREAD] = -2;
    this.hb[W_BEAT] = ++this.beats;
    try {
      tm.fn();
    } catch (e) {
      throw wrapError(`timer ${tm.name}`, e);
    }
    this.stepObj = STEP_NONE;
    // Threads the timer spawned start now, so the run sees them as runnable.
    if (this.starts.length > 0) this.runStarts();
    this.afterStep(this.timerNow);
    if (this.obs !== null) {
      // When a timer fires depends on every thread's clock: it belongs to the step before it
      // and depends on everything.
      this.fpReset();
      this.fp.all = true;
      if (this.obs.stepDone(-1, this.fp)) this.stopped = true;
    }
  }

  /**
   * After a step or a timer: spinners whose predicate came true continue no earlier than `at`
   * (the time of the visible operation that made it true, not of local work done after it),
   * and blocked threads whose interrupts wait on a canDeliver condition are looked at again.
   */
  private afterStep(at: number): void {
    if (this.spinners.length > 0) this.recheckSpinners(at);
    if (this.irqWatch.length > 0) {
      const w = this.irqWatch;
      this.irqWatch = [];
      for (const t of w) {
        t.inIrqWatch = false;
        this.updateEnabled(t);
      }
    }
  }

  /** Fold one step (thread, op, object, clock with its high bits) into the run's event hash. */
  private mixStep(t: Thread, kind: number): void {
    const c = t.clock;
    this.hash = mix(this.hash, ((t.id << 4) ^ kind ^ (t.opA << 20)) + Math.imul(c | 0, 0x9e3779b1) + ((c * 2.3283064365386963e-10) | 0));
  }

  private stepThread(t: Thread): void {
    this.exec = t;
    const kind = t.opKind;
    this.alsoLen = 0;
    // Timed mode's resumption of local work is unchecked (the code after work() belongs to the
    // op before it in interleave mode, where conformance is checked).
    this.stepObj = kind === OP_ACCESS || kind === OP_ACQUIRE || kind === OP_RELEASE ? t.opA : kind === P_CONT ? STEP_NONE : NO_OBJECT;
    if (kind === OP_ACCESS || kind === OP_RELAX || kind === OP_ACQUIRE || kind === OP_RELEASE) {
      // Time is carried through shared objects: what was written at time T is seen at >= T.
      const o = t.opA;
      if (o !== NO_OBJECT) {
        if (!(o < this.objects.length && o >= 0 && Number.isInteger(o))) {
          throw new OpError(t, `thread ${t.name}: ${o} is not a shared object id; get ids from sim.object(name)`);
        }
        if (o >= this.objTime.length) this.growObjTime(o);
        const ot = this.objTime[o];
        if (ot > t.clock) this.setClock(t, ot);
        if (t.opB === 1) this.objTime[o] = t.clock;
      }
    }
    const start = t.clock;
    this.mixStep(t, kind);
    if (this.instrument) this.logStep(t);
    if (this.obs !== null) this.stepFootprint(t, kind);
    if (t.pendingIrqs.length > 0 && t._interruptible && this.tryDeliver(t)) {
      // the step was the interrupt's delivery (or, timed mode, idling until it is raised)
    } else if (t.top.state !== F_RUN || kind === P_EXIT) {
      // enabled only for an interrupt that can no longer be delivered: nothing to do
    } else if (kind === OP_ACQUIRE) {
      const r = t.opObj as Resource;
      if (r.free > 0) {
        r.free--;
        if (t.opFx !== null) t.opFx(t, t.opFxA, t.opFxB, t.frames.length - 1);
        this.advance(t);
      } else {
        // The releaser hands the unit over, runs our effect in its step, and wakes us.
        const f = t.top;
        f.state = F_BLOCKED;
        f.hoFx = t.opFx;
        f.hoFxA = t.opFxA;
        f.hoFxB = t.opFxB;
        r.queue.waiters.push(f);
      }
    } else if (kind === OP_RELEASE) {
      const r = t.opObj as Resource;
      if (r.queue.waiters.length === 0 && r.free >= r.capacity) {
        throw new OpError(t, `thread ${t.name}: release of ${r.name} with all ${r.capacity} unit(s) free`);
      }
      if (t.opFx !== null) t.opFx(t, t.opFxA, t.opFxB, t.frames.length - 1);
      if (r.queue.waiters.length > 0) {
        const f = r.queue.waiters.shift()!;
        this.wakeFrame(f, t.clock);
        const w = f.thread;
        const depth = w.frames.indexOf(f);
        if (r.onHandover !== null) r.onHandover(w, depth);
        const fx: Effect | null = f.hoFx;
        if (fx !== null) {
          f.hoFx = null;
          fx(w, f.hoFxA, f.hoFxB, depth);
        }
      } else r.free++;
      this.advance(t);
    } else if (kind === OP_SPIN) {
      if (this.pred(t)) {
        if (t.opFx !== null) t.opFx(t, t.opFxA, t.opFxB, t.frames.length - 1);
        this.advance(t);
      } else {
        t.top.state = F_SPIN;
        this.addSpinner(t);
      }
    } else if (kind === P_CONT) {
      const f = t.top;
      if (f.deferredNs > 0) {
        // An interrupt split this work earlier but was not taken: finish the work first.
        t.clock += f.deferredNs;
        f.deferredNs = 0;
        this.exec = null;
        this.step++;
        this.updateEnabled(t);
        return;
      }
      this.advance(t);
    } else {
      if (kind === OP_ACCESS && t.opFx !== null) t.opFx(t, t.opFxA, t.opFxB, t.frames.length - 1);
      this.advance(t);
    }
    this.step++;
    this.exec = null;
    this.stepObj = STEP_NONE;
    this.afterStep(start);
    this.updateEnabled(t);
    if (this.obs !== null) {
      // A step reads the clock (timers, horizon, finite window) when any of them is live.
      if (this.timers.size > 0 || this.clockBound) this.fp.all = true;
      if (this.obs.stepDone(t.id, this.fp)) this.stopped = true;
    }
  }

  // ---- footprints (DPOR) ----

  private fpReset(): void {
    this.fp.all = false;
    this.fp.len = 0;
  }

  private fpAdd(key: number, write: number): void {
    const fp = this.fp;
    if (fp.len === fp.keys.length) {
      const k = new Int32Array(fp.len * 2);
      k.set(fp.keys);
      fp.keys = k;
      const w = new Uint8Array(fp.len * 2);
      w.set(fp.writes);
      fp.writes = w;
    }
    fp.keys[fp.len] = key;
    fp.writes[fp.len++] = write;
  }

  /** Reads of a predicate: the declared objects, or everything when undeclared (null). */
  private fpReads(reads: readonly number[] | null): void {
    if (reads === null) this.fp.all = true;
    else for (let i = 0; i < reads.length; i++) this.fpAdd(fpObject(reads[i]), 0);
  }

  /** What a step declares before it runs: its op's object, spin reads, its pending interrupts. */
  private stepFootprint(t: Thread, kind: number): void {
    this.fpReset();
    // Whether (and which) interrupt lands at this step depends on t's pending set.
    this.fpAdd(fpPending(t.id), 0);
    for (let i = 0; i < t.pendingIrqs.length; i++) {
      const s = t.pendingIrqs[i];
      if (s.canDeliver !== undefined) this.fpReads(s.reads);
    }
    if (kind === OP_ACCESS || kind === OP_RELAX) {
      if (t.opA !== NO_OBJECT) this.fpAdd(fpObject(t.opA), t.opB === 1 ? 1 : 0);
    } else if (kind === OP_ACQUIRE || kind === OP_RELEASE) {
      this.fpAdd(fpObject(t.opA), 1);
    } else if (kind === OP_SPIN) {
      this.fpReads(t.opReads);
    }
  }

  /**
   * Delivery point on thread t. Forced (no "not now" option) when t is blocked, spinning or
   * finished with an interrupt due; in timed mode every interrupt whose raise time has come is
   * taken at once, as hardware would.
   */
  private tryDeliver(t: Thread): boolean {
    const forced = t.top.state !== F_RUN || t.opKind === P_EXIT;
    const list = t.pendingIrqs;
    if (this.irqIds.length <= list.length) this.irqIds = new Int32Array(list.length * 2 + 2);
    const ids = this.irqIds;
    let n = 0;
    const offerNone = !forced && !this.timed;
    if (offerNone) ids[n++] = NONE;
    let later = Infinity;
    for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (!this.canTake(s, t)) continue;
      if (this.timed && s.raiseTime > t.clock) {
        if (s.raiseTime < later) later = s.raiseTime;
        continue;
      }
      ids[n++] = s.id;
    }
    if (n === (offerNone ? 1 : 0)) {
      if (forced && later !== Infinity) {
        // Timed mode: an idle thread whose interrupt is raised later idles until then.
        this.setClock(t, later);
        return true;
      }
      return false;
    }
    this.target = t.id;
    const idx = n > 1 ? this.choose(IRQ, ids, n, 0) : 0;
    this.target = -1;
    const id = ids[idx];
    if (id === NONE) return false;
    this.deliver(t, this.sources[id]);
    return true;
  }

  private deliver(t: Thread, src: InterruptSource): void {
    const f = t.top;
    f.sKind = t.opKind;
    f.sA = t.opA;
    f.sB = t.opB;
    f.sObj = t.opObj;
    f.sFx = t.opFx;
    f.sFxA = t.opFxA;
    f.sFxB = t.opFxB;
    f.sInterruptible = t._interruptible;
    f.sReads = t.opReads;
    if (this.obs !== null) this.fpAdd(fpPending(t.id), 1);
    if (t.inSpinners) this.removeSpinner(t);
    const list = t.pendingIrqs;
    list.splice(list.indexOf(src), 1);
    src.pending = false;
    src.delivered++;
    this.interrupts++;
    if (src.raiseTime > t.clock) t.clock = src.raiseTime;
    if (src.masks && t._interruptible) {
      t._interruptible = false;
      this._maskChanged(t, false);
    }
    if (this.instrument) this.log(`irq ${src.name} delivered on ${t.name}`);
    this.stepObj = NO_OBJECT; // the delivery step declares no object of the interrupted op
    this.hash = mix(this.hash, 0x1e9 + src.id);
    const hf = new Frame(t, src.handler(t, src), src);
    t.frames.push(hf);
    t.top = hf;
    this.advance(t);
  }

  /**
   * Resume t's top frame and run it to its next scheduling point: a visible op, a block, a
   * spin, the end of a frame, or (timed mode) local work. Local work in interleave mode is
   * invisible and runs inline.
   */
  private advance(t: Thread): void {
    let inline = 0;
    // The yield watch: plain stores (see watch.ts); the op kind rides in the thread slot's top byte.
    const hb = this.hb;
    hb[W_STEP] = this.step;
    hb[W_THREAD] = t.id | (t.opKind << 24);
    hb[W_OBJ] = t.opA;
    for (;;) {
      const f = t.top;
      let r: IteratorResult<unknown, unknown>;
      try {
        r = f.gen.next();
      } catch (e) {
        throw this.threadError(t, e);
      }
      if (r.done === true) {
        this.finishFrame(t);
        return;
      }
      if (r.value !== OP) {
        throw new OpError(t,
          `thread ${t.name} yielded ${describe(r.value)}${r.value === undefined ? ' (a bare `yield`)' : ''} instead of an op: write \`yield t.work(ns)\`, and call helpers with \`yield* helper(t)\``,
        );
      }
      switch (t.opKind) {
        case OP_WORK: {
          const ns = t.opA;
          if (!(ns >= 0) || !Number.isFinite(ns)) throw new OpError(t, `thread ${t.name}: work(${ns}): duration must be a finite number of ns >= 0`);
          if (this.timed) {
            t.workStart = t.clock;
            t.clock += ns;
            t.opKind = P_CONT;
            return;
          }
          t.clock += ns;
          if (++inline > INLINE_LIMIT) {
            this.report({
              kind: 'step_budget',
              fingerprint: `step_budget:inline:${t.name}`,
              headline: `thread ${t.name} did ${INLINE_LIMIT} pieces of local work without a scheduling point`,
              fatal: true,
            });
            return;
          }
          continue;
        }
        case OP_BLOCK: {
          const w = t.opObj as Waitable;
          if (!(w instanceof Waitable)) throw new OpError(t, `thread ${t.name}: block() needs a waitable`);
          f.state = F_BLOCKED;
          w.waiters.push(f);
          if (this.obs !== null) this.fpAdd(fpWaitable(w.id), 1);
          return;
        }
        case OP_SPIN:
          if (typeof t.opObj !== 'function') throw new OpError(t, `thread ${t.name}: spinUntil() needs a predicate function, got ${describe(t.opObj)}`);
          return;
        case OP_ACQUIRE:
        case OP_RELEASE:
          if (!(t.opObj instanceof Resource)) throw new OpError(t, `thread ${t.name}: acquire()/release() need a Resource`);
          return;
        case OP_ACCESS:
        case OP_RELAX:
          return;
        default:
          throw new OpError(t, `thread ${t.name}: unknown op ${t.opKind}`);
      }
    }
  }

  /** The top frame of t returned. */
  private finishFrame(t: Thread): void {
    const done = t.top;
    if (done.irq === null) {
      // The thread body finished. An interrupt still due on it is taken before it is gone.
      if (this.hasDeliverable(t)) {
        t.opKind = P_EXIT;
        return;
      }
      this.exitThread(t);
      return;
    }
    t.frames.pop();
    const f = t.frames[t.frames.length - 1];
    t.top = f;
    t.opKind = f.sKind;
    t.opA = f.sA;
    t.opB = f.sB;
    t.opObj = f.sObj;
    t.opFx = f.sFx;
    t.opFxA = f.sFxA;
    t.opFxB = f.sFxB;
    t.opReads = f.sReads;
    f.sFx = null;
    f.sFxA = f.sFxB = null;
    f.sReads = null;
    if (t._interruptible !== f.sInterruptible) {
      t._interruptible = f.sInterruptible;
      this._maskChanged(t, f.sInterruptible);
    }
    if (this.instrument) this.log(`irq ${done.irq.name} returns on ${t.name}`);
    if (f.state === F_RUN) {
      if (f.wakeClock > t.clock) t.clock = f.wakeClock;
      f.wakeClock = 0;
      if (t.opKind === P_CONT && f.deferredNs > 0) {
        // Back to work an interrupt split: the rest of it follows the handler, and may be
        // split again by an interrupt raised while the handler ran with interrupts masked.
        t.workStart = t.clock;
        t.clock += f.deferredNs;
        f.deferredNs = 0;
        const next = this.earliestRaise(t);
        if (next !== Infinity) this.splitWork(t, next);
      }
      if (t.opKind === P_EXIT && !this.hasDeliverable(t)) this.exitThread(t);
    } else if (f.state === F_SPIN) {
      if (this.obs !== null) this.fpReads(t.opReads);
      if (this.pred(t)) f.state = F_RUN;
      else this.addSpinner(t);
    }
  }

  private exitThread(t: Thread): void {
    t.frames.pop();
    t.done = true;
    if (t.inSpinners) this.removeSpinner(t);
    if (this.instrument) this.log(`${t.name} exits`);
    // The exit is what joiners read (DPOR footprint), and it wakes them.
    if (this.obs !== null) this.fpAdd(fpPending(t.id), 1);
    if (t.exitWait !== null) this.wakeAll(t.exitWait);
  }

  /** @internal Thread.join: the joiner's step reads whether `other` has exited. */
  _joinCheck(other: Thread): void {
    if (this.obs !== null) this.fpAdd(fpPending(other.id), 0);
  }

  /** @internal Thread.join: the waitable joiners of `t` block on. */
  _exitWaitable(t: Thread): Waitable {
    return (t.exitWait ??= this.waitable(`exit:${t.name}`));
  }

  /** Earliest raise time among the interrupts t could take now, or Infinity. */
  private earliestRaise(t: Thread): number {
    let r = Infinity;
    if (!t._interruptible) return r;
    for (const s of t.pendingIrqs) if (s.raiseTime < r && this.canTake(s, t)) r = s.raiseTime;
    return r;
  }

  private wakeFrame(f: Frame, clock: number): void {
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

  private growObjTime(o: number): void {
    const a = new Float64Array(Math.max(o + 1, this.objTime.length * 2));
    a.set(this.objTime);
    this.objTime = a;
  }

  private setClock(t: Thread, c: number): void {
    t.clock = c;
    if (this.timed && t.inReady) this.heap.update(t.id, c);
  }

  // ---- spinners ----

  private addSpinner(t: Thread): void {
    if (!t.inSpinners) {
      t.inSpinners = true;
      this.spinners.push(t);
    }
  }

  private removeSpinner(t: Thread): void {
    t.inSpinners = false;
    const i = this.spinners.indexOf(t);
    if (i >= 0) this.spinners.splice(i, 1);
  }

  private recheckSpinners(now: number): void {
    const sp = this.spinners;
    let j = 0;
    for (let i = 0; i < sp.length; i++) {
      const t = sp[i];
      if (t.top.state === F_SPIN && this.pred(t)) {
        t.top.state = F_RUN;
        t.inSpinners = false;
        if (now > t.clock) this.setClock(t, now);
        this.updateEnabled(t);
      } else {
        sp[j++] = t;
      }
    }
    sp.length = j;
  }

  // ---- ready structures ----

  private hasDeliverable(t: Thread): boolean {
    if (!t._interruptible) return false;
    const list = t.pendingIrqs;
    for (let i = 0; i < list.length; i++) {
      if (this.canTake(list[i], t)) return true;
    }
    return false;
  }

  /** Re-derive whether t can take a step and put it in or out of the ready structure. */
  private updateEnabled(t: Thread): void {
    let en: boolean;
    if (t.done || t.starting) en = false;
    else if (t.top.state === F_RUN && t.opKind !== P_EXIT) en = true;
    else {
      en = t.pendingIrqs.length > 0 && this.hasDeliverable(t);
      if (!en) {
        if (t.opKind === P_EXIT && t.top.state === F_RUN && t.frames.length === 1) {
          // The interrupt it waited for at exit went elsewhere or can no longer land.
          this.exitThread(t);
        } else if (t.pendingIrqs.length > 0 && !t.inIrqWatch && t.pendingIrqs.some((s) => s.canDeliver !== undefined)) {
          // A canDeliver condition may turn true later: look again after every step.
          t.inIrqWatch = true;
          this.irqWatch.push(t);
        }
      }
    }
    if (en === t.inReady) {
      // A thread kept in the heap during its step (unique minimum) has a stale key.
      if (en && this.timed && this.heap.keyOf(t.id) !== t.clock) this.heap.update(t.id, t.clock);
      return;
    }
    if (en) this.readyInsert(t);
    else this.readyRemove(t);
  }

  /**
   * Called with the length of every span a thread spent with asynchronous events masked (the
   * kernel model: IRQs off), when it ends. Null: no accounting.
   */
  onMaskedSpan: ((t: Thread, ns: number) => void) | null = null;

  /** @internal A thread's interruptibility changed: open or close a masked span. */
  _maskChanged(t: Thread, interruptible: boolean): void {
    if (this.onMaskedSpan === null) return;
    if (!interruptible) t.maskedAt = t.clock;
    else if (t.maskedAt >= 0) {
      const ns = t.clock - t.maskedAt;
      t.maskedAt = -1;
      this.onMaskedSpan(t, ns);
    }
  }

  /** @internal Thread.interruptible setter. */
  _interruptibilityChanged(t: Thread): void {
    if (this.exec !== t && this.obs !== null) this.fpAdd(fpPending(t.id), 1);
    if (this.exec !== t) this.updateEnabled(t);
  }

  private readyInsert(t: Thread): void {
    t.inReady = true;
    if (this.obs !== null && this.exec !== t) this.obs.noteEnabled(t.id);
    if (this.timed) {
      this.heap.push(t.id, t.clock);
      return;
    }
    if (this.runqLen === this.runq.length) {
      const r = new Int32Array(this.runq.length * 2);
      r.set(this.runq);
      this.runq = r;
    }
    const rq = this.runq;
    let i = this.runqLen++;
    const id = t.id;
    while (i > 0 && rq[i - 1] > id) {
      rq[i] = rq[i - 1];
      i--;
    }
    rq[i] = id;
  }

  private readyRemove(t: Thread): void {
    t.inReady = false;
    if (this.timed) {
      this.heap.remove(t.id);
      return;
    }
    const rq = this.runq;
    const id = t.id;
    let i = 0;
    while (rq[i] !== id) i++;
    this.runqLen--;
    for (; i < this.runqLen; i++) rq[i] = rq[i + 1];
  }

  // ---- end of run ----

  private quiescent(): void {
    const stuck: Thread[] = [];
    for (const t of this.threads) if (!t.done && !t.daemon) stuck.push(t);
    if (stuck.length === 0) {
      this.endReason = 'done';
      return;
    }
    this.endReason = 'quiescent';
    for (const h of this.quiescentHooks) {
      h(stuck);
      if (this.stopped) return;
    }
    const parts = stuck.map((t) => `${t.name}: ${this.describeWait(t)}`);
    this.report({
      kind: 'no_progress',
      fingerprint: `no_progress:${[...new Set(stuck.map((t) => `${t.name}@${this.waitSite(t)}`))].sort().join('+')}`,
      headline: `no progress: ${stuck.length} thread(s) blocked and nothing pending`,
      text: `no progress: every thread is blocked and no event is pending\n${parts.map((p) => `  ${p}`).join('\n')}`,
      fatal: true,
    });
  }

  private waitSite(t: Thread): string {
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

  private endTime(): number {
    let m = this.timerNow;
    for (const t of this.threads) if (t.clock > m) m = t.clock;
    return m;
  }

  private result(): RunResult {
    const metrics: RunMetrics = {
      steps: this.step,
      choices: this.choices,
      preemptions: this.preemptions,
      switches: this.switches,
      interrupts: this.interrupts,
      coalesced: this.coalesced,
      timers: this.timersFired,
      faults: this.faults,
      deviations: this.devLen >> 2,
      endTime: this.endTime(),
      threads: this.threads.length,
    };
    if (this.counters !== null) metrics.counters = this.counters;
    if (this.peaks !== null) metrics.peaks = this.peaks;
    let packed = NO_DEVIATIONS;
    if (this.devLen > 0) {
      // An element loop beats TypedArray.prototype.slice for the short lists a run has.
      packed = new Int32Array(this.devLen);
      const d = this.dev;
      for (let i = 0; i < packed.length; i++) packed[i] = d[i];
    }
    const coverage = this.coverSet === null ? null : [...this.coverSet];
    const findings = this.findingList.length === 0 ? [] : this.findingList;
    return new PackedRunResult(this.seed, this.endReason, findings, metrics, this.hash >>> 0, packed, this.events, coverage, this.classHash >>> 0);
  }

  // ---- helpers ----

  private menuCapacity(n: number): void {
    if (n <= this.menuIds.length) return;
    this.menuIds = new Int32Array(n * 2);
    this.menuWeights = new Float64Array(n * 2);
  }

  private sortedMenu(ids: number[]): number {
    this.menuCapacity(ids.length);
    ids.sort((a, b) => a - b);
    for (let i = 0; i < ids.length; i++) this.menuIds[i] = ids[i];
    return ids.length;
  }

  private log(msg: string): void {
    this.events!.push(`${this.step} @${this.now()} ${msg}`);
  }

  private logStep(t: Thread): void {
    const k = t.opKind;
    const what =
      k === OP_ACCESS
        ? t.opA === NO_OBJECT
          ? 'point'
          : `${t.opB ? 'write' : 'read'} ${this.objectName(t.opA)}`
        : k === OP_ACQUIRE || k === OP_RELEASE
          ? `${OP_NAMES[k]} ${(t.opObj as Resource).name}`
          : (OP_NAMES[k] ?? `op${k}`);
    const ctx = t.frames.length > 1 ? ` [irq ${t.top.irq!.name}]` : '';
    this.events!.push(`${this.step} @${t.clock} ${t.name}${ctx} ${what}`);
  }

  /** An exception from a thread's code: kept as thrown (its stack places it); the crash handler names the thread. */
  private threadError(_t: Thread, e: unknown): unknown {
    return e;
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

/** An exception from program code outside a thread body (timer, predicate): a ProgramError. */
function wrapError(where: string, e: unknown): Error {
  if (e instanceof ProgramError || e instanceof InputError) return e;
  const err = new ProgramError(`${where} threw: ${e instanceof Error ? e.message : String(e)}`);
  if (e instanceof Error) err.stack = e.stack;
  return err;
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'object' && v !== null && typeof (v as { next?: unknown }).next === 'function') return 'a generator (use `yield*` to call a helper)';
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}
