/**
 * The watchdog: the supervisor's side of the yield watch (watch.ts). JavaScript cannot
 * interrupt a synchronous loop on its own thread, so supervised runs happen on worker threads;
 * the main thread polls each busy worker's watch and, when it has not changed for the yield
 * budget, calls the worker's stuck handler, which terminates the worker and reports the run
 * as a `scenario_error` finding built here from what the watch mirrored: the stuck step, the
 * thread and the op it last issued, and the run's seed and deviations (its schedule).
 * Wall-clock time is read here, by the supervisor only: never by simulation code.
 */
import type { Finding } from './finding';
import { OP_ACCESS, OP_ACQUIRE, OP_NAMES, OP_RELEASE } from './ops';
import type { IterationRecord } from './record';
import { encodeSchedule } from './schedule';
import { W_BEAT, type Watch, type WatchSnapshot } from './watch';
import { zeroMetrics } from './fold';

/** Default budget of `--yield-timeout` (seconds). */
export const DEFAULT_YIELD_TIMEOUT = 10;

/** The op a stuck thread last issued, as words. */
function opWords(s: WatchSnapshot): string {
  const name = OP_NAMES[s.op] ?? `op ${s.op}`;
  const onObj = s.op === OP_ACCESS || s.op === OP_ACQUIRE || s.op === OP_RELEASE;
  return onObj && s.objName ? `${name} ${s.objName}` : name;
}

function formatSeconds(s: number): string {
  return Number.isInteger(s) ? `${s}s` : `${s.toFixed(3).replace(/0+$/, '')}s`;
}

/** The finding of a run whose thread did not yield within `seconds`. */
export function yieldTimeoutFinding(s: WatchSnapshot, seconds: number): Finding {
  const who = s.thread >= 0 ? `thread ${s.threadName}` : s.threadName;
  const headline = `scenario error: ${who} did not yield within ${formatSeconds(seconds)} (a loop in scenario code?)`;
  const last = s.thread >= 0 ? `; the op it last issued: ${opWords(s)}` : '';
  const text = [
    headline,
    `stopped from outside after ${formatSeconds(seconds)} of wall-clock time without a step (--yield-timeout)`,
    `last step: step ${s.step}, ${who}${last}`,
    ...(s.devsComplete ? [] : ['(the run made more choices than the watch mirrors: its schedule is cut short)']),
  ].join('\n');
  return {
    kind: 'scenario_error',
    subkind: 'yield_timeout',
    // Neither the step nor the budget: the same loop on a shrunk schedule or another budget.
    fingerprint: `scenario_error:yield_timeout@${s.thread >= 0 ? s.threadName : s.threadName.replace(/ /g, '_')}`,
    headline,
    text,
    fatal: true,
    step: s.step,
    time: 0,
    thread: s.thread,
    count: 1,
    logged: true,
    loggedCount: 1,
    data: { step: s.step, thread: s.threadName, op: opWords(s), yieldTimeout: seconds },
  };
}

/**
 * The schedule string of the stuck run: its seed and the deviations made up to the stuck step.
 * The run never ended, so it has no event hash to carry (a replay does not check one).
 */
export function stuckSchedule(s: WatchSnapshot, hash: string, strategy: string): string {
  return encodeSchedule({ hash, events: null, strategy, seed: s.seed, steps: s.step, devs: s.devs });
}

/** The record of a stuck hunt iteration, as its worker would have sent it. */
export function stuckRecord(s: WatchSnapshot, hash: string, strategy: string, seconds: number): IterationRecord {
  const f = yieldTimeoutFinding(s, seconds);
  const metrics = zeroMetrics();
  metrics.steps = s.step;
  metrics.deviations = s.devs.length;
  return {
    seed: s.seed,
    steps: s.step,
    findings: [{ fingerprint: f.fingerprint, kind: f.kind, count: 1, full: f, schedule: stuckSchedule(s, hash, strategy) }],
    metrics,
    coverage: null,
    interleaving: 0,
  };
}

interface Watched {
  watch: Watch;
  pulse: string;
  since: number;
  busy: boolean;
  onStuck: () => void;
}

/**
 * Polls watches on the main thread. A watch counts only while busy (a unit or a job handed
 * to its worker and not yet answered): an idle worker waiting for messages is not stuck.
 */
export class Watchdog {
  private readonly list = new Set<Watched>();
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly seconds: number) {}

  /** Watch `w`; `onStuck` runs once when it stays unchanged for the budget while busy. */
  add(watch: Watch, onStuck: () => void): { busy: (b: boolean) => void; remove: () => void } {
    const e: Watched = { watch, pulse: watch.pulse(), since: Date.now(), busy: false, onStuck };
    this.list.add(e);
    if (this.timer === null) {
      const every = Math.max(20, Math.min(250, (this.seconds * 1000) / 5));
      this.timer = setInterval(() => this.poll(), every);
    }
    return {
      busy: (b) => {
        if (b && !e.busy) {
          e.pulse = watch.pulse();
          e.since = Date.now();
        }
        e.busy = b;
      },
      remove: () => this.remove(e),
    };
  }

  private remove(e: Watched): void {
    this.list.delete(e);
    if (this.list.size === 0) this.stop();
  }

  private poll(): void {
    const now = Date.now();
    for (const e of [...this.list]) {
      const p = e.watch.pulse();
      // Before the first beat the worker is still loading modules: no thread code runs yet.
      if (p !== e.pulse || !e.busy || e.watch.head[W_BEAT] === 0) {
        e.pulse = p;
        e.since = now;
        continue;
      }
      if (now - e.since >= this.seconds * 1000) {
        this.remove(e);
        e.onStuck();
      }
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.list.clear();
  }
}
