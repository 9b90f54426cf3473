/**
 * The deterministic discrete-event engine's run loop (AWS Shuttle's `Execution`). It runs the
 * threads of one program for one schedule: picks which enabled thread takes the next visible
 * step, delivers interrupts at the points the strategy picks (delivery.ts), fires timers in
 * (time, sequence) order (timers.ts), carries virtual time across synchronisation, and records
 * every choice that differs from the default in the run's path (path.ts). What the program
 * touches while it runs is the ExecutionState this class extends (state.ts); the ready set is
 * ready.ts.
 *
 * Knows nothing of kernels: the kernel model (lib/) is a program built from these pieces.
 *
 * Modes, one knob (`window`): a thread is a scheduling candidate when its clock is within
 * `window` ns of the smallest runnable clock. window = Infinity ("interleave") reaches every
 * order; window = 0 ("timed") runs in time order with ties as choices. In timed mode local work
 * is a step of its own (so other threads' earlier events come first) and an interrupt raised
 * while its target is in the middle of local work splits that work.
 */
import { SCHED, type Strategy } from './choice';
import { crashFinding, OpError } from './crash';
import { earliestRaise, hasDeliverable, splitWork, tryDeliver } from './delivery';
import { InputError, ProgramError, describeValue, wrapError } from './errors';
import { fpReads, fpReset, stepFootprint } from './footprint';
import { mix, mixNum } from './hash';
import { NO_OBJECT, OP, OP_ACCESS, OP_ACQUIRE, OP_NAMES, OP_RELEASE, OP_SPIN, OP_WORK, P_CONT, P_EXIT } from './ops';
import type { Program } from './program';
import { Resource } from './resource';
import { runResult, type RunResult } from './run-result';
import { acquireStep, badOp, finishDeferred, otherOp, pred, releaseStep, spinStep } from './op-steps';
import { ExecutionState, STEP_NONE, STEP_TIMER } from './state';
import { ReplayStrategy } from './strategies/replay';
import { F_RUN, F_SPIN, GEN_NEXT, checkBody, type Thread, type ThreadFn } from './thread';
import { W_BEAT, W_OBJ, W_STEP, W_THREAD } from './watch';

// The engine's public types live with their concepts; re-exported so importers of engine.ts keep working.
export { STEP_NONE, STEP_TIMER, type EngineOptions } from './state';
export type { EndReason, RunMetrics, RunResult } from './run-result';
export type { Deviation } from './path';

const INLINE_LIMIT = 1_000_000;

export class Engine extends ExecutionState {
  /** Timed mode: where collectTimed() put the next step's candidates. */
  private next: Int32Array = this.ready.cand;
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
    return runResult(this);
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
    // A light run has no path to re-run; the run made again with its path recorded places it.
    if (this.program === null || !this.recordPath) return null;
    const devs = this.path.deviations();
    const e2 = new Engine({ window: this.window, horizon: this.horizon, stepBudget: this.stepBudget, maxFaults: this.maxFaults, captureOps: true, internalRoots: this.internalRoots });
    e2.run(this.program, new ReplayStrategy(devs, 'lenient'), this.seed, this.expectedSteps);
    void threadId;
    return e2.crashSite;
  }

  private reset(strategy: Strategy, seed: number, expectedSteps: number): void {
    this.strategy = strategy;
    this.countsSubs = this.keepsDeviations || strategy.ignoresSub !== true;
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
    this.ready.clear();
    this.spinners.length = 0;
    this.starts.length = 0;
    this.irqWatch.length = 0;
    this.path.reset();
    this.deviated = 0;
    this.timers.clear();
    this.choices = this.preemptions = this.switches = this.interrupts = 0;
    this.coalesced = this.timersFired = this.faults = 0;
    this.counters = this.peaks = null;
    this.coverSet = null;
    this.classHash = 0;
  }

  private loop(): void {
    if (this.timed) return this.loopTimed();
    const budget = this.stepBudget;
    for (;;) {
      if (this.stopsBeforeStep(budget)) return;
      const n = this.collectWindow();
      if (n < 0) return; // horizon reached
      if (n === 0) {
        this.quiescent();
        return;
      }
      const ids = this.useCand ? this.ready.cand : this.ready.runq;
      const prev = this.current;
      let t: Thread;
      if (n === 1) {
        t = this.threads[ids[0]];
        this.currentEnabled = t.id === prev;
      } else {
        const c = this.pick(ids, n, prev);
        if (c === null) return; // pruned, or a nondeterminism finding
        t = c;
      }
      if (t.id !== prev) this.switches++;
      this.current = t.id;
      this.stepThread(t);
    }
  }

  /**
   * The run loop of timed mode (window 0): the same steps in the same order as loop() would
   * take, with the resumption of local work (half the steps of a contended run) on a short
   * path of its own. Candidates come from the heap (collectTimed).
   */
  private loopTimed(): void {
    const budget = this.stepBudget;
    for (;;) {
      if (this.stopsBeforeStep(budget)) return;
      const n = this.collectTimed();
      if (n <= 0) {
        if (n === 0) this.quiescent();
        return; // quiescent, or the horizon reached
      }
      const prev = this.current;
      let t: Thread;
      if (n === 1) {
        t = this.threads[this.next[0]];
        if (t.opKind === P_CONT && t.pendingIrqs.length === 0 && t.top.deferredNs === 0 && !this.instrument) {
          this.contStep(t);
          continue;
        }
        this.currentEnabled = t.id === prev;
      } else {
        // No candidate resumes local work here: those sort first and go alone (readyClass).
        const c = this.pick(this.next, n, prev);
        if (c === null) return; // pruned, or a nondeterminism finding
        t = c;
      }
      if (t.id !== prev) this.switches++;
      this.current = t.id;
      this.stepThread(t);
    }
  }

  /**
   * The scheduling choice among candidates ids[0..n), n > 1: the default is the thread that ran
   * last (no preemption), else the lowest id. Null when the run stopped at the choice point.
   */
  private pick(ids: Int32Array, n: number, prev: number): Thread | null {
    let def = 0;
    let prevIn = false;
    for (let i = 0; i < n; i++) {
      if (ids[i] === prev) {
        def = i;
        prevIn = true;
        break;
      }
    }
    this.currentEnabled = prevIn;
    const idx = this.choose(SCHED, ids, n, def);
    if (this.stopped) return null;
    const t = this.threads[ids[idx]];
    this.preemptions += prevIn && t.id !== prev ? 1 : 0;
    return t;
  }

  /** Timed mode's resumption of local work with nothing else to decide: a step of its own. */
  private contStep(t: Thread): void {
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
    if (!t.done && t.top.state === F_RUN && (t.opKind as number) !== P_EXIT && t.inReady) this.ready.rekey(t);
    else this.updateEnabled(t);
  }

  /** Before each step: start threads spawned since the last one; true when the run ends here. */
  private stopsBeforeStep(budget: number): boolean {
    if (this.starts.length > 0) this.runStarts();
    if (this.stopped) return true;
    if (this.step < budget) return false;
    this.report({ kind: 'step_budget', fingerprint: 'step_budget', headline: `step budget exhausted: ${budget} steps without the run finishing`, fatal: true });
    return true;
  }

  /**
   * Start the threads spawned since the last step, in spawn order: each body runs to its first
   * op (local code only: it commutes with every other step, so it is no choice).
   */
  private runStarts(): void {
    const list = this.starts;
    if (this.obs !== null) fpReset(this.fp);
    for (let i = 0; i < list.length && !this.stopped; i++) {
      const t = list[i];
      t.starting = false;
      const fn = t.opObj as ThreadFn;
      t.opObj = null;
      this.exec = t;
      this.hash = mix(this.hash, 0x57a7 + t.id);
      if (this.instrument) this.log(`${t.name} starts`);
      t.top.gen = fn(t);
      checkBody(t, t.top.gen, `thread ${t.name}: its function`);
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
   * Timed mode: the candidates of the next step, in `next` (the count returned; 0 quiescent,
   * -1 stopped). A thread resuming local work at the earliest clock goes alone; otherwise the
   * threads tied there with a visible op (ReadySet.now). Fires timers that are due first.
   */
  private collectTimed(): number {
    const r = this.ready;
    const h = r.heap;
    let mc: number; // the earliest clock of a ready thread (Infinity: none is ready)
    for (;;) {
      mc = r.minKey();
      const tt = this.timers.size > 0 ? this.timers.peekTime() : Infinity;
      if (tt <= mc) {
        if (tt === Infinity || (r.nowLen === 0 && h.size === 0 && this.timers.live === 0)) return 0;
        if (tt > this.horizon) return this.endAtHorizon();
        this.fireTimer();
        if (this.stopped) return -1;
        continue;
      }
      break;
    }
    if (mc > this.horizon) return this.endAtHorizon();
    // Resuming local work commutes with every other step: it goes first and alone. It sorts
    // first among equal clocks (readyClass), so it is the heap's top when there is one.
    if (h.size > 0 && h.peekKey() === mc) {
      const top = h.peekId();
      if (this.threads[top].opKind === P_CONT) {
        this.next = r.cand;
        r.cand[0] = top;
        return 1;
      }
    }
    this.next = r.now;
    return r.takeNow();
  }

  /** Interleave mode / finite window: candidates are runnable threads within window of the min clock. */
  private collectWindow(): number {
    for (;;) {
      const rs = this.ready;
      if (!this.clockBound && this.timers.size === 0) return rs.runqLen;
      let mc = Infinity;
      const rq = rs.runq, th = this.threads;
      for (let i = 0; i < rs.runqLen; i++) {
        const c = th[rq[i]].clock;
        if (c < mc) mc = c;
      }
      const tt = this.timers.size > 0 ? this.timers.peekTime() : Infinity;
      if (tt !== Infinity && (rs.runqLen === 0 || mc >= tt)) {
        if (rs.runqLen === 0 && this.timers.live === 0) return 0;
        if (tt > this.horizon) return this.endAtHorizon();
        this.fireTimer();
        if (this.stopped) return -1;
        continue;
      }
      if (mc > this.horizon && mc !== Infinity) return this.endAtHorizon();
      if (this.window === Infinity) return rs.runqLen;
      const cand = rs.candCapacity(rs.runqLen);
      let n = 0;
      const lim = mc + this.window;
      for (let i = 0; i < rs.runqLen; i++) if (th[rq[i]].clock <= lim) cand[n++] = rq[i];
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
      fpReset(this.fp);
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
    if (this.spinners.length > 0 || this.irqWatch.length > 0) this.recheckWaits(at);
  }

  private recheckWaits(at: number): void {
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
    // A clock below 2^31 (every run shorter than 2 s) has no high word to fold in: the same
    // value without the float multiply.
    const hi = c < 2147483648 ? 0 : (c * 2.3283064365386963e-10) | 0;
    this.hash = mix(this.hash, ((t.id << 4) ^ kind ^ (t.opA << 20)) + Math.imul(c | 0, 0x9e3779b1) + hi);
  }

  private stepThread(t: Thread): void {
    this.exec = t;
    const kind = t.opKind;
    this.alsoLen = 0;
    // Timed mode's resumption of local work is unchecked (the code after work() belongs to the
    // op before it in interleave mode, where conformance is checked).
    const objOp = kind === OP_ACCESS || kind === OP_ACQUIRE || kind === OP_RELEASE;
    this.stepObj = objOp ? t.opA : kind === P_CONT ? STEP_NONE : NO_OBJECT;
    if (objOp) {
      // Time is carried through shared objects: what was written at time T is seen at >= T.
      const o = t.opA;
      if (o !== NO_OBJECT) {
        // An access names its object itself; acquire and release use their resource's.
        if (kind === OP_ACCESS && !(o < this.objects.length && o >= 0 && Number.isInteger(o))) {
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
    if (this.obs !== null) stepFootprint(this.fp, t, kind);
    // One call site of advance (the compiler inlines it here): the op's effect decides whether
    // the thread runs on to its next op.
    let go: boolean;
    if (t.pendingIrqs.length > 0 && t._interruptible && tryDeliver(this, t)) {
      go = false; // the step was the interrupt's delivery (or, timed mode, idling until it is raised)
    } else if (t.top.state !== F_RUN || kind === P_EXIT) {
      go = false; // enabled only for an interrupt that can no longer be delivered: nothing to do
    } else if (kind === OP_ACQUIRE) {
      go = acquireStep(t);
    } else if (kind === OP_RELEASE) {
      releaseStep(this, t);
      go = true;
    } else if (kind === OP_SPIN) {
      go = spinStep(this, t);
    } else if (kind === P_CONT && t.top.deferredNs > 0) {
      return finishDeferred(this, t);
    } else {
      if (kind === OP_ACCESS && t.opFx !== null) t.opFx(t, t.opFxA, t.opFxB, t.frames.length - 1);
      go = true;
    }
    if (go) this.advance(t);
    this.step++;
    this.exec = null;
    this.stepObj = STEP_NONE;
    this.afterStep(start);
    // Timed mode's common case first: still running and ready, it only moves in the ready set.
    if (this.timed && t.inReady && !t.done && t.top.state === F_RUN && (t.opKind as number) !== P_EXIT) this.ready.rekey(t);
    else this.updateEnabled(t);
    if (this.obs !== null) {
      // A step reads the clock (timers, horizon, finite window) when any of them is live.
      if (this.timers.size > 0 || this.clockBound) this.fp.all = true;
      if (this.obs.stepDone(t.id, this.fp)) this.stopped = true;
    }
  }

  /**
   * Resume t's top frame and run it to its next scheduling point: a visible op, a block, a
   * spin, the end of a frame, or (timed mode) local work. Local work in interleave mode is
   * invisible and runs inline.
   */
  advance(t: Thread): void {
    // Kept small (the rare ops and every error are methods of their own) so the compiler
    // inlines it into the run loop's fast path and into stepThread.
    let inline = 0;
    // The yield watch: plain stores (see watch.ts); the op kind rides in the thread slot's top byte.
    const hb = this.hb;
    hb[W_STEP] = this.step;
    hb[W_THREAD] = t.id | (t.opKind << 24);
    hb[W_OBJ] = t.opA;
    for (;;) {
      // An exception thrown here propagates as it is: run() turns it into a finding placed at
      // the thread (this.exec) and the code that threw.
      const r: IteratorResult<unknown, unknown> = GEN_NEXT.call(t.top.gen);
      if (r.done === true) return this.finishFrame(t);
      if (r.value !== OP) this.badYield(t, r.value);
      const k = t.opKind;
      if (k === OP_WORK) {
        const ns = t.opA;
        if (!(ns >= 0 && ns < Infinity)) this.badWork(t, ns);
        if (this.timed) {
          t.workStart = t.clock;
          t.clock += ns;
          t.opKind = P_CONT;
          return;
        }
        t.clock += ns;
        if (++inline > INLINE_LIMIT) return this.inlineLimit(t);
        continue;
      }
      if (k === OP_ACQUIRE || k === OP_RELEASE) {
        if (!(t.opObj instanceof Resource)) badOp(t, 'acquire()/release() need a Resource');
        return;
      }
      if (k !== OP_ACCESS) otherOp(this, t, k);
      return;
    }
  }

  private badYield(t: Thread, v: unknown): never {
    throw new OpError(t,
      `thread ${t.name} yielded ${describeValue(v)}${v === undefined ? ' (a bare `yield`)' : ''} instead of an op: write \`yield t.work(ns)\`, and call helpers with \`yield* helper(t)\``,
    );
  }

  private badWork(t: Thread, ns: number): never {
    throw new OpError(t, `thread ${t.name}: work(${ns}): duration must be a finite number of ns >= 0`);
  }


  /** Interleave mode: a thread did INLINE_LIMIT pieces of local work without a scheduling point. */
  private inlineLimit(t: Thread): void {
    this.report({
      kind: 'step_budget',
      fingerprint: `step_budget:inline:${t.name}`,
      headline: `thread ${t.name} did ${INLINE_LIMIT} pieces of local work without a scheduling point`,
      fatal: true,
    });
  }

  /** The top frame of t returned. */
  private finishFrame(t: Thread): void {
    const done = t.top;
    if (done.irq === null) {
      // The thread body finished. An interrupt still due on it is taken before it is gone.
      if (hasDeliverable(t)) {
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
        const next = earliestRaise(t);
        if (next !== Infinity) splitWork(this, t, next);
      }
      if (t.opKind === P_EXIT && !hasDeliverable(t)) this.exitThread(t);
    } else if (f.state === F_SPIN) {
      if (this.obs !== null) fpReads(this.fp, t.opReads);
      if (pred(t)) f.state = F_RUN;
      else this.addSpinner(t);
    }
  }

  private growObjTime(o: number): void {
    const a = new Float64Array(Math.max(o + 1, this.objTime.length * 2));
    a.set(this.objTime);
    this.objTime = a;
  }

  private recheckSpinners(now: number): void {
    const sp = this.spinners;
    let j = 0;
    for (let i = 0; i < sp.length; i++) {
      const t = sp[i];
      if (t.top.state === F_SPIN && pred(t)) {
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
}
