/**
 * Source-DPOR with sleep sets (Abdulla, Aronis, Jonsson, Sagonas, POPL 2014, Algorithm 1), in
 * interleave mode, stateless: each run replays a prefix of recorded choices from the start.
 *
 * Events are steps. A step's footprint is what the engine records for an observing strategy
 * (choice.ts StepObserver): its op's object (read or write), the objects it declared with
 * also(), the waitables it blocked on or woke, the pending-interrupt set of its thread (read by
 * every step of the thread, written by raise, delivery, retarget and masking from outside), and
 * the objects its spin or canDeliver predicates read (undeclared: everything). While a timer is
 * armed, or with a horizon or finite window, every step reads the clocks and so depends on
 * every other step; a timer's firing is part of the step after which it fires.
 *
 * Processes are threads. An interrupt handler runs on its target thread, so its delivery and
 * its steps are that thread's events; whether an interrupt lands at a step of its target, and
 * which waiter a wake-one picks, are branches inside the event, all enumerated (an event's
 * footprint for sleep sets is the union over its branches). Jitter and fault choices keep their
 * default; `defaulted` lists the kinds met. Happens-before is program order, footprint
 * conflict, and "enabled by" (the step that woke, spawned or made a thread deliverable); races
 * are found on each complete run (as Nidhugg does), and for each race e < e' the initials of
 * notdep(e).e' are checked against the backtrack set at the state before e.
 *
 * Bounded by steps only (the engine's step budget): a preemption or interrupt bound would make
 * plain source-DPOR unsound, so it refuses them. A horizon or finite window is refused; the
 * kernel's liveness watchdogs (daemon timers) are never armed, since Engine.liveness is false
 * for a strategy that is not fair in interleave mode; stats().off says all this in the verdict.
 * Any timer armed (daemon or not) makes every step depend on every other: sound, no reduction.
 * See docs/dpor.md for the soundness argument and the figures.
 *
 * Sound relative to the engine's conformance contract: every shared effect happens in a step
 * that declared its object (or with also()); model state outside sim.shared() is not checked.
 */
import { FAULT, JITTER, PRUNE, SCHED, type ChoiceView, type Footprint, type StepObserver, type Strategy } from '../choice';
import { Path, type Branch } from '../path';

/** A footprint kept by the strategy (copied out of the engine's buffer). */
export class Fp {
  constructor(
    public all: boolean,
    public keys: number[],
    public writes: number[],
  ) {}

  static of(f: Footprint): Fp {
    const keys: number[] = new Array(f.len);
    const writes: number[] = new Array(f.len);
    for (let i = 0; i < f.len; i++) {
      keys[i] = f.keys[i];
      writes[i] = f.writes[i];
    }
    return new Fp(f.all, keys, writes);
  }

  merge(f: Footprint | Fp): void {
    if (f.all) this.all = true;
    const n = f instanceof Fp ? f.keys.length : f.len;
    for (let i = 0; i < n; i++) {
      this.keys.push(f.keys[i]);
      this.writes.push(f.writes[i]);
    }
  }

  clone(): Fp {
    return new Fp(this.all, this.keys.slice(), this.writes.slice());
  }
}

/** Two footprints conflict: one depends on everything, or they share a key one of them writes. */
export function dependent(a: Fp, b: Fp): boolean {
  if (a.all || b.all) return true;
  const ak = a.keys, bk = b.keys;
  for (let i = 0; i < ak.length; i++) {
    const k = ak[i];
    for (let j = 0; j < bk.length; j++) if (bk[j] === k && (a.writes[i] | b.writes[j]) !== 0) return true;
  }
  return false;
}

interface Node extends Branch {
  ids: Int32Array;
  /** Index of the event (step) this choice belongs to. */
  event: number;
  /** Branch choices (IRQ, WAKE): the default first, then the others in turn. */
  def: number;
  tried: number;
  // SCHED nodes only:
  /** Threads to explore here (explored and current included). */
  backtrack: Set<number>;
  /** Threads fully explored here, with the union footprint of their branches. */
  done: Map<number, Fp>;
  /** Sleep set inherited from the path above. */
  sleep: Map<number, Fp>;
  /** Union footprint of the current thread's branches explored so far. */
  acc: Fp | null;
}

export interface DporStats {
  /** Complete runs (not cut short as redundant). */
  traces: number;
  /** Runs ended early because every enabled thread was asleep (sleep-set blocked). */
  sleepBlocked: number;
  /** Choice kinds met with more than one candidate that kept their default (not enumerated). */
  defaulted: string[];
  /** Runs that left the path their replayed prefix recorded. */
  divergences: number;
  /**
   * What DPOR turns off or refuses, in words, so a verdict says it: anything that reads the clock
   * would depend on every step.
   */
  off: string[];
  /** Steps whose footprint was "everything" (an armed timer, or an undeclared predicate read). */
  fullSteps: number;
}

/**
 * DPOR's regime, listed in every verdict. Liveness watchdogs (hung_task, soft lockup, RCU stall,
 * stall at the horizon) are installed only where Engine.liveness holds (timed mode or a fair
 * strategy); DPOR is neither (it refuses a window and is not fair), so they are never armed.
 */
export const DPOR_OFF: readonly string[] = [
  'liveness watchdogs (hung_task, soft lockup, RCU stall: each reads the clock)',
  'horizon and finite window (refused)',
  'preemption and IRQ bounds (refused: bounded by steps only)',
];

export class Dpor implements Strategy, StepObserver {
  readonly name = 'dpor';
  readonly observer: StepObserver = this;
  /** The choice points of the path being walked (path.ts's branch stack). */
  private readonly path = new Path<Node>();
  private readonly stack: Node[] = this.path.branches;
  private done = false;
  /** Event index from which races are still to be analysed (the first event after the prefix). */
  private firstNew = 0;

  // ---- the current run's events ----
  private proc: number[] = [];
  private fps: Fp[] = [];
  private enabler: number[] = [];
  private schedNode: number[] = [];
  /** Threads enabled since the last event was recorded (their enabler is the next/merged event). */
  private pendingEnabled: number[] = [];
  /** Per-thread enabler for its next event (-1: none). */
  private nextEnabler = new Map<number, number>();
  private curSleep = new Map<number, Fp>();
  private schedAt = -1;
  private pruned = false;
  private view: ChoiceView | null = null;

  traces = 0;
  sleepBlocked = 0;
  divergences = 0;
  fullSteps = 0;
  private readonly defaultedKinds = new Set<number>();

  stats(): DporStats {
    const names = ['sched', 'irq', 'wake', 'jitter', 'fault'];
    return {
      traces: this.traces,
      sleepBlocked: this.sleepBlocked,
      defaulted: [...this.defaultedKinds].sort().map((k) => names[k]),
      divergences: this.divergences,
      off: DPOR_OFF.slice(),
      fullSteps: this.fullSteps,
    };
  }

  begin(_seed: number, _expected: number): void {
    this.path.restart();
    this.proc.length = 0;
    this.fps.length = 0;
    this.enabler.length = 0;
    this.schedNode.length = 0;
    this.pendingEnabled.length = 0;
    this.nextEnabler.clear();
    this.curSleep = new Map();
    this.schedAt = -1;
    this.pruned = false;
  }

  notePending(_src: number, _view: ChoiceView): void {}

  choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, _w: Float64Array | null): number {
    this.view = view;
    if (kind === JITTER || kind === FAULT) {
      this.defaultedKinds.add(kind);
      return def;
    }
    const ev = this.proc.length;
    const path = this.path;
    const p = path.replayed();
    if (p !== null) {
      if (p.kind !== kind || p.n !== n || p.event !== ev || !sameIds(p.ids, ids, n)) {
        this.divergences++;
        path.diverge();
        view.reportNondeterminism?.(`choice ${path.depth} (step ${ev}) differs from the recorded path the replayed prefix took`);
      } else {
        path.next();
        if (kind === SCHED) this.enterSched(p, path.depth - 1);
        return p.pos;
      }
    }
    const node: Node = { kind, n, ids: ids.slice(0, n), pos: def, event: ev, def, tried: 0, backtrack: new Set(), done: new Map(), sleep: new Map(), acc: null };
    if (kind === SCHED) {
      node.sleep = this.curSleep;
      let pick = -1;
      if (!node.sleep.has(ids[def])) pick = def;
      else for (let i = 0; i < n && pick < 0; i++) if (!node.sleep.has(ids[i])) pick = i;
      if (pick < 0) {
        // Every enabled thread is asleep: whatever follows is covered by an earlier run.
        this.pruned = true;
        this.sleepBlocked++;
        return PRUNE;
      }
      node.pos = pick;
      node.backtrack.add(ids[pick]);
    }
    path.push(node);
    if (kind === SCHED) this.enterSched(node, path.depth - 1);
    return node.pos;
  }

  /** Taking a SCHED node's current thread: the child's sleep set before the step's footprint filter. */
  private enterSched(p: Node, at: number): void {
    this.schedAt = at;
    const s = new Map(p.sleep);
    for (const [t, f] of p.done) s.set(t, f);
    this.curSleep = s;
  }

  noteEnabled(tid: number): void {
    this.pendingEnabled.push(tid);
  }

  stepDone(tid: number, f: Footprint): boolean {
    if (tid < 0) {
      // Starts or a timer after the last step: part of that step.
      const last = this.proc.length - 1;
      if (last < 0) {
        this.pendingEnabled.length = 0;
        return false;
      }
      this.fps[last].merge(f);
      for (const t of this.pendingEnabled) this.nextEnabler.set(t, last);
      this.pendingEnabled.length = 0;
      if (f.all) return this.filterSleep(this.fps[last], -1);
      return this.filterSleep(Fp.of(f), -1);
    }
    const ev = this.proc.length;
    if (f.all) this.fullSteps++;
    const fp = Fp.of(f);
    this.proc.push(tid);
    this.fps.push(fp);
    this.enabler.push(this.nextEnabler.get(tid) ?? -1);
    this.nextEnabler.delete(tid);
    for (const t of this.pendingEnabled) if (t !== tid) this.nextEnabler.set(t, ev);
    this.pendingEnabled.length = 0;
    const sn = this.schedAt >= 0 && this.stack[this.schedAt].event === ev ? this.schedAt : -1;
    this.schedNode.push(sn);
    this.schedAt = -1;
    if (sn >= 0) {
      const node = this.stack[sn];
      if (node.acc === null) node.acc = fp.clone();
      else node.acc.merge(fp);
    } else if (this.curSleep.has(tid)) {
      // The only enabled thread is asleep: covered by an earlier run.
      this.pruned = true;
      this.sleepBlocked++;
      return true;
    }
    return this.filterSleep(fp, tid);
  }

  /** Wake the sleepers a step depends on. */
  private filterSleep(fp: Fp, tid: number): boolean {
    if (this.curSleep.size === 0) return false;
    const s = new Map<number, Fp>();
    for (const [t, f] of this.curSleep) if (t !== tid && !dependent(f, fp)) s.set(t, f);
    this.curSleep = s;
    return false;
  }

  end(_steps: number): void {
    if (!this.pruned) this.traces++;
    this.path.settle();
    this.analyseRaces();
    // Backtrack: the deepest node with something left.
    if (this.path.backtrack(this.advance)) return;
    this.done = true;
  }

  /** Move a node to its next branch; false when it has none left. */
  private readonly advance = (p: Node): boolean => {
    if (p.kind === SCHED) {
      const cur = p.ids[p.pos];
      p.done.set(cur, p.acc ?? new Fp(true, [], []));
      p.acc = null;
      let next = -1;
      for (let i = 0; i < p.n && next < 0; i++) {
        const t = p.ids[i];
        if (p.backtrack.has(t) && !p.done.has(t) && !p.sleep.has(t)) next = i;
      }
      if (next < 0) return false;
      p.pos = next;
    } else if (p.tried + 1 < p.n) {
      p.tried++;
      p.pos = (p.def + p.tried) % p.n;
    } else return false;
    this.firstNew = p.event;
    return true;
  };

  /**
   * Races of the run just ended, for events from firstNew on (earlier ones were analysed when
   * their prefix was new): for each race e_i < e_j, make sure some initial of notdep(e_i).e_j is
   * in the backtrack set at the state before e_i.
   */
  private analyseRaces(): void {
    const m = this.proc.length;
    if (m === 0) return;
    let P = 0;
    for (let i = 0; i < m; i++) if (this.proc[i] + 1 > P) P = this.proc[i] + 1;
    // Vector clocks: vc[i][q] = number of q's events that happen before or are e_i.
    const vc: Int32Array[] = new Array(m);
    const local: number[] = new Array(m);
    const count = new Int32Array(P);
    const lastOf = new Int32Array(P).fill(-1);
    // Per key: the last write, and the reads since it; lastAll: the last event depending on everything.
    const lastWrite = new Map<number, number>();
    const readsSince = new Map<number, number[]>();
    let lastAll = -1;
    const acc = new Int32Array(P);
    const cands: number[] = [];
    const races: number[] = [];
    for (let j = 0; j < m; j++) {
      const q = this.proc[j];
      local[j] = ++count[q];
      const f = this.fps[j];
      // Direct happens-before candidates of e_j.
      cands.length = 0;
      if (lastOf[q] >= 0) cands.push(lastOf[q]);
      if (this.enabler[j] >= 0) cands.push(this.enabler[j]);
      if (f.all) {
        const from = lastAll >= 0 ? lastAll : 0;
        for (let i = from; i < j; i++) cands.push(i);
      } else {
        if (lastAll >= 0) cands.push(lastAll);
        for (let k = 0; k < f.keys.length; k++) {
          const key = f.keys[k];
          const w = lastWrite.get(key);
          if (w !== undefined && w > lastAll) cands.push(w);
          if (f.writes[k]) {
            const rs = readsSince.get(key);
            if (rs !== undefined) for (const r of rs) if (r > lastAll) cands.push(r);
          }
        }
      }
      cands.sort((a, b) => b - a);
      acc.fill(0);
      let prev = -1;
      for (const i of cands) {
        if (i === prev) continue;
        prev = i;
        const pi = this.proc[i];
        if (acc[pi] >= local[i]) continue; // happens before a later direct predecessor
        if (pi !== q && i !== this.enabler[j] && j >= this.firstNew && dependent(this.fps[i], f)) races.push(i, j);
        const v = vc[i];
        for (let r = 0; r < P; r++) if (v[r] > acc[r]) acc[r] = v[r];
      }
      const mine = acc.slice();
      mine[q] = local[j];
      vc[j] = mine;
      lastOf[q] = j;
      if (f.all) {
        lastAll = j;
        lastWrite.clear();
        readsSince.clear();
      } else {
        for (let k = 0; k < f.keys.length; k++) {
          const key = f.keys[k];
          if (f.writes[k]) {
            lastWrite.set(key, j);
            readsSince.delete(key);
          } else {
            let rs = readsSince.get(key);
            if (rs === undefined) readsSince.set(key, (rs = []));
            if (rs[rs.length - 1] !== j) rs.push(j);
          }
        }
      }
    }
    for (let r = 0; r < races.length; r += 2) this.backtrackFor(races[r], races[r + 1], vc, local);
  }

  private backtrackFor(i: number, j: number, vc: Int32Array[], local: number[]): void {
    const sn = this.schedNode[i];
    if (sn < 0 || sn >= this.stack.length) return; // one enabled thread before e_i: not reversible
    const node = this.stack[sn];
    const pi = this.proc[i];
    // v = the events after e_i that do not happen after it, then e_j; its initials are the
    // threads whose first event in v has no happens-before predecessor in v.
    const v: number[] = [];
    for (let k = i + 1; k < j; k++) if (vc[k][pi] < local[i]) v.push(k);
    v.push(j);
    const seen = new Set<number>();
    const initials: number[] = [];
    for (let a = 0; a < v.length; a++) {
      const k = v[a];
      const q = this.proc[k];
      if (seen.has(q)) continue;
      seen.add(q);
      let initial = true;
      for (let b = 0; b < a && initial; b++) {
        const l = v[b];
        if (vc[k][this.proc[l]] >= local[l]) initial = false;
      }
      if (initial) {
        if (node.backtrack.has(q)) return;
        initials.push(q);
      }
    }
    const enabledHere = (q: number): boolean => {
      for (let x = 0; x < node.n; x++) if (node.ids[x] === q) return true;
      return false;
    };
    for (const q of initials) {
      if (enabledHere(q) && !node.sleep.has(q)) {
        node.backtrack.add(q);
        return;
      }
    }
    if (initials.some((q) => node.sleep.has(q))) return; // covered by the run that put it to sleep
    // No initial is enabled before e_i (an enabling the footprints missed): be conservative.
    for (let x = 0; x < node.n; x++) node.backtrack.add(node.ids[x]);
  }

  exhausted(): boolean {
    return this.done;
  }

  /** The last run was cut short as redundant (sleep-set blocked). */
  get lastPruned(): boolean {
    return this.pruned;
  }
}

function sameIds(a: Int32Array, b: Int32Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
