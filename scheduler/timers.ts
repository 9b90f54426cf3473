/**
 * Pending timers of a run, in (time, creation order). A daemon timer (a watchdog's check) fires
 * in that order while something else keeps the run going, but never keeps the run alive on its
 * own: `live` counts the others. Firing a timer is a step of the run loop (engine.ts).
 */
import { ProgramError } from './errors';
import { TimerHeap } from './heap';

export interface Timer {
  fn: () => void;
  name: string;
  daemon: boolean;
}

export class TimerQueue {
  private readonly heap = new TimerHeap<Timer>();
  /** Pending timers that are not daemon timers. */
  live = 0;

  get size(): number {
    return this.heap.size;
  }

  clear(): void {
    this.heap.clear();
    this.live = 0;
  }

  add(at: number, fn: () => void, name: string, daemon: boolean): void {
    if (!(at >= 0) || !Number.isFinite(at)) throw new ProgramError(`timer time must be a finite non-negative number, got ${at}`);
    if (!daemon) this.live++;
    this.heap.push(Math.max(at, 0), { fn, name, daemon });
  }

  /** Time of the next timer; only when size > 0. */
  peekTime(): number {
    return this.heap.peekTime();
  }

  pop(): Timer {
    const tm = this.heap.pop();
    if (!tm.daemon) this.live--;
    return tm;
  }
}
