/**
 * What each visible op does at its step in the run loop (engine.ts): the effect that decides
 * whether the thread runs on to its next op. Functions of the engine, kept apart so the run
 * loop stays short enough for the compiler to inline its hot path.
 */
import { fpWaitable } from './choice';
import { OpError } from './crash';
import type { Engine } from './engine';
import { describeValue, wrapError } from './errors';
import { fpAdd } from './footprint';
import { OP_BLOCK, OP_SPIN } from './ops';
import { Resource } from './resource';
import { F_BLOCKED, F_SPIN, type Effect, type Thread } from './thread';
import { Waitable } from './waitable';

export function badOp(t: Thread, what: string): never {
  throw new OpError(t, `thread ${t.name}: ${what}`);
}

/** An acquire step: take a free unit (true: run on), or queue for the hand-over. */
export function acquireStep(t: Thread): boolean {
  const r = t.opObj as Resource;
  if (r.free > 0) {
    r.free--;
    if (t.opFx !== null) t.opFx(t, t.opFxA, t.opFxB, t.frames.length - 1);
    return true;
  }
  // The releaser hands the unit over, runs our effect in its step, and wakes us.
  const f = t.top;
  f.state = F_BLOCKED;
  f.hoFx = t.opFx;
  f.hoFxA = t.opFxA;
  f.hoFxB = t.opFxB;
  r.queue.waiters.push(f);
  return false;
}

/** A release step: the unit goes straight to the first waiter, or back to the resource. */
export function releaseStep(e: Engine, t: Thread): void {
  const r = t.opObj as Resource;
  const q = r.queue.waiters;
  if (q.length === 0 && r.free >= r.capacity) badOp(t, `release of ${r.name} with all ${r.capacity} unit(s) free`);
  if (t.opFx !== null) t.opFx(t, t.opFxA, t.opFxB, t.frames.length - 1);
  if (q.length === 0) {
    r.free++;
    return;
  }
  const f = q.shift()!;
  e.wakeFrame(f, t.clock);
  const w = f.thread;
  const depth = f === w.top ? w.frames.length - 1 : w.frames.indexOf(f);
  if (r.onHandover !== null) r.onHandover(w, depth);
  const fx: Effect | null = f.hoFx;
  if (fx !== null) {
    f.hoFx = null;
    fx(w, f.hoFxA, f.hoFxB, depth);
  }
}

/** A spin step: its predicate true runs on (true); false, it waits among the spinners. */
export function spinStep(e: Engine, t: Thread): boolean {
  if (pred(t)) {
    if (t.opFx !== null) t.opFx(t, t.opFxA, t.opFxB, t.frames.length - 1);
    return true;
  }
  t.top.state = F_SPIN;
  e.addSpinner(t);
  return false;
}

/** An interrupt split this thread's work earlier but was not taken: the step finishes the work. */
export function finishDeferred(e: Engine, t: Thread): void {
  const f = t.top;
  t.clock += f.deferredNs;
  f.deferredNs = 0;
  e.exec = null;
  e.step++;
  e.updateEnabled(t);
}

/** advance's rarer ops: a block (the frame waits on its waitable) or a spin. */
export function otherOp(e: Engine, t: Thread, k: number): void {
  if (k === OP_BLOCK) {
    const w = t.opObj as Waitable;
    if (!(w instanceof Waitable)) badOp(t, 'block() needs a waitable');
    t.top.state = F_BLOCKED;
    w.waiters.push(t.top);
    if (e.obs !== null) fpAdd(e.fp, fpWaitable(w.id), 1);
  } else if (k === OP_SPIN) {
    if (typeof t.opObj !== 'function') badOp(t, `spinUntil() needs a predicate function, got ${describeValue(t.opObj)}`);
  } else badOp(t, `unknown op ${k}`);
}

export function pred(t: Thread): boolean {
  try {
    return (t.opObj as () => boolean)() === true;
  } catch (e) {
    throw wrapError(`spin predicate of thread ${t.name}`, e);
  }
}
