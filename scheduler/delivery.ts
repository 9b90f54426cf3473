/**
 * Interrupt delivery: raising an interrupt on its target thread (pending, coalesced), moving a
 * source to another target, and the delivery point at a step of the target, where the strategy
 * picks whether (interleave mode) and which pending interrupt lands. Delivery pushes the
 * handler as a frame of its own on the target; finishing that frame (engine.ts) resumes what it
 * interrupted.
 */
import { IRQ, NONE, fpPending } from './choice';
import type { Engine } from './engine';
import { ProgramError, describeValue, wrapError } from './errors';
import { fpAdd, fpReads } from './footprint';
import { mix } from './hash';
import { InterruptSource } from './interrupt';
import { NO_OBJECT, P_CONT, P_EXIT } from './ops';
import type { ExecutionState } from './state';
import { F_RUN, Frame, checkBody, type Thread } from './thread';

const NO_READS: readonly number[] = [];

/** Raise an interrupt: it becomes pending on its target (coalesced if already pending). */
export function raise(e: ExecutionState, src: InterruptSource): void {
  if (!(src instanceof InterruptSource)) throw new ProgramError(`raise() needs an interrupt source, got ${describeValue(src)}`);
  // A raise reads and writes the target's pending set, coalesced or not (DPOR footprint).
  if (e.obs !== null) {
    fpAdd(e.fp, fpPending(src.target.id), 1);
    fpReads(e.fp, src.canDeliver === undefined ? NO_READS : src.reads);
  }
  if (src.pending) {
    src.coalesced++;
    e.coalesced++;
    return;
  }
  const t = src.target;
  const now = e.now();
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
  if (e.instrument) e.log(`raise ${src.name} -> ${t.name}`);
  e.strategy.notePending(src.id, e);
  if (t.done) return;
  if (t._interruptible && canTake(src, t)) {
    if (t.top.state !== F_RUN || t.opKind === P_EXIT) {
      // An idle (blocked, spinning, exiting) target takes the interrupt no earlier than its raise.
      if (now > t.clock) e.setClock(t, now);
    } else {
      splitWork(e, t, now);
    }
  }
  e.updateEnabled(t);
}

/**
 * Timed mode: if t is in the middle of local work that began before `at`, split the work so
 * an interrupt raised at `at` is taken then; the rest of the work follows the handler.
 */
export function splitWork(e: ExecutionState, t: Thread, at: number): void {
  if (!e.timed || t.opKind !== P_CONT || t.clock <= at) return;
  const start = Math.max(at, t.workStart);
  const rest = t.clock - start;
  if (rest > 0) {
    t.top.deferredNs += rest;
    e.setClock(t, start);
  }
}

/** src's extra delivery condition, with its errors reported as the program's. */
export function canTake(src: InterruptSource, t: Thread): boolean {
  if (src.canDeliver === undefined) return true;
  try {
    return src.canDeliver(t) === true;
  } catch (err) {
    throw wrapError(`canDeliver of interrupt ${src.name}`, err);
  }
}

/** Move an interrupt source to another target thread (e.g. IRQ affinity change). */
export function retarget(e: ExecutionState, src: InterruptSource, t: Thread): void {
  if (src.target === t) return;
  const old = src.target;
  if (e.obs !== null) {
    fpAdd(e.fp, fpPending(old.id), 1);
    fpAdd(e.fp, fpPending(t.id), 1);
  }
  if (src.pending) {
    old.pendingIrqs.splice(old.pendingIrqs.indexOf(src), 1);
    src.pending = false;
    src.target = t;
    raise(e, src);
    e.updateEnabled(old);
  } else {
    src.target = t;
  }
}

/** Whether t could take one of its pending interrupts now. */
export function hasDeliverable(t: Thread): boolean {
  if (!t._interruptible) return false;
  const list = t.pendingIrqs;
  for (let i = 0; i < list.length; i++) {
    if (canTake(list[i], t)) return true;
  }
  return false;
}

/** Earliest raise time among the interrupts t could take now, or Infinity. */
export function earliestRaise(t: Thread): number {
  let r = Infinity;
  if (!t._interruptible) return r;
  for (const s of t.pendingIrqs) if (s.raiseTime < r && canTake(s, t)) r = s.raiseTime;
  return r;
}

/**
 * Delivery point on thread t. Forced (no "not now" option) when t is blocked, spinning or
 * finished with an interrupt due; in timed mode every interrupt whose raise time has come is
 * taken at once, as hardware would.
 */
export function tryDeliver(e: Engine, t: Thread): boolean {
  const forced = t.top.state !== F_RUN || t.opKind === P_EXIT;
  const list = t.pendingIrqs;
  if (e.irqIds.length <= list.length) e.irqIds = new Int32Array(list.length * 2 + 2);
  const ids = e.irqIds;
  let n = 0;
  const offerNone = !forced && !e.timed;
  if (offerNone) ids[n++] = NONE;
  let later = Infinity;
  for (let i = 0; i < list.length; i++) {
    const s = list[i];
    if (!canTake(s, t)) continue;
    if (e.timed && s.raiseTime > t.clock) {
      if (s.raiseTime < later) later = s.raiseTime;
      continue;
    }
    ids[n++] = s.id;
  }
  if (n === (offerNone ? 1 : 0)) {
    if (forced && later !== Infinity) {
      // Timed mode: an idle thread whose interrupt is raised later idles until then.
      e.setClock(t, later);
      return true;
    }
    return false;
  }
  e.target = t.id;
  const idx = n > 1 ? e.choose(IRQ, ids, n, 0) : 0;
  e.target = -1;
  const id = ids[idx];
  if (id === NONE) return false;
  deliver(e, t, e.sources[id]);
  return true;
}

/** Deliver src on t: save the interrupted op, push the handler's frame and run it to its first op. */
function deliver(e: Engine, t: Thread, src: InterruptSource): void {
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
  if (e.obs !== null) fpAdd(e.fp, fpPending(t.id), 1);
  if (t.inSpinners) e.removeSpinner(t);
  const list = t.pendingIrqs;
  list.splice(list.indexOf(src), 1);
  src.pending = false;
  src.delivered++;
  e.interrupts++;
  if (src.raiseTime > t.clock) t.clock = src.raiseTime;
  if (src.masks && t._interruptible) {
    t._interruptible = false;
    e._maskChanged(t, false);
  }
  if (e.instrument) e.log(`irq ${src.name} delivered on ${t.name}`);
  e.stepObj = NO_OBJECT; // the delivery step declares no object of the interrupted op
  e.hash = mix(e.hash, 0x1e9 + src.id);
  const body = src.handler(t, src);
  checkBody(t, body, `interrupt ${src.name}: its handler`);
  const hf = new Frame(t, body, src);
  t.frames.push(hf);
  t.top = hf;
  e.advance(t);
}
