/**
 * Parallel hunts on worker threads. Programs are closures, so a worker cannot receive one: it
 * gets a ProgramSource (a module and the JSON arguments of the function there that builds the
 * program) and builds its own copy. The main thread plans the hunt (calibration, DFS prefixes),
 * hands units out in increasing order to whichever worker is free (itself included: `workers`
 * counts the main thread), and folds the records in unit order as they become contiguous: the result is the one process's, whatever the number
 * of workers and whoever finished first. When the fold stops, the workers are terminated.
 *
 * Supervised (`yieldTimeout` seconds > 0), every piece of scenario code runs on a worker
 * thread and the main thread only supervises (watchdog.ts): the plan's calibration runs, the
 * units, and shrinking. A worker whose run stops making steps for the budget is terminated;
 * its stuck iteration becomes a record with a `scenario_error` finding, its unit is handed
 * again (to a replacement worker) with that record in place of the stuck run, and the hunt goes
 * on until the fold stops. A stuck DFS path ends its subtree (the tree below it was never
 * expanded). Otherwise the result is the same as unsupervised: the same records, folded alike.
 */
import { join } from 'path';
import { Worker } from 'worker_threads';
import { InputError, ProgramError, ScheduleError } from './errors';
import { checkShard, engineOptions, finishHunt, foldOptions, planHunt, type HuntOptions, type HuntResult } from './explorer';
import { HuntFold, shardUnits } from './fold';
import { StrategyPicker } from './portfolio';
import { programHash, type Program } from './program';
import type { IterationRecord } from './record';
import { checkPositiveInt, checkSeed } from './rng';
import { CHUNK, UnitRunner, type HuntPlan } from './units';
import { Watch, type WatchSnapshot } from './watch';
import { Watchdog, stuckRecord } from './watchdog';
import type { FromWorker, Job, WorkerInit } from './worker';

/** Units queued on a worker thread at a time. */
const PREFETCH = 2;

export interface ProgramSource {
  /** Absolute path of a module (TypeScript or JavaScript). */
  module: string;
  /** The exported function that builds the program from `args`. */
  export: string;
  /** JSON arguments. */
  args: unknown;
}

export function loadProgram(src: ProgramSource): Program {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(src.module) as Record<string, unknown>;
  const f = mod[src.export];
  if (typeof f !== 'function') throw new InputError(`${src.module} does not export a function ${src.export}`);
  return (f as (a: unknown) => Program)(src.args);
}

/** The hunt options a worker can receive: no functions, no records, no plan. */
function portable(opts: HuntOptions): HuntOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (typeof v === 'function' || k === 'done' || k === 'plan' || k === 'shard') continue;
    out[k] = v;
  }
  return out as HuntOptions;
}


/** A worker thread with its shared yield watch (supervised) and the units queued on it. */
class PoolWorker {
  readonly worker: Worker;
  readonly watch: Watch | null;
  readonly queued: number[] = [];
  dead = false;
  /** Planning (calibration) or a job in progress: busy though no unit is queued. */
  working = false;
  guard: { busy: (b: boolean) => void; remove: () => void } | null = null;

  constructor(init: WorkerInit, supervised: boolean) {
    this.watch = supervised ? new Watch() : null;
    const data: WorkerInit = { ...init, stackTraceLimit: Error.stackTraceLimit, ...(this.watch ? { watch: this.watch.buffer } : {}) };
    this.worker = new Worker(join(__dirname, 'worker-entry.js'), { workerData: data });
  }

  busyNow(): void {
    this.guard?.busy(this.working || this.queued.length > 0);
  }

  kill(): Promise<number> {
    this.dead = true;
    this.guard?.remove();
    return this.worker.terminate();
  }
}

function workerError(m: Extract<FromWorker, { type: 'error' }>): Error {
  return m.kind === 'schedule' ? new ScheduleError(m.message) : m.kind === 'input' ? new InputError(m.message) : m.kind === 'program' ? new ProgramError(m.message) : new Error(`worker: ${m.message}`);
}

/**
 * Hunt `program` (built in each worker from `source`) on `workers` threads. Same options and
 * same result as hunt(); `done`, `shard`, `plan` and `onUnit` work as there. With
 * `yieldTimeout` > 0 the hunt is supervised (see the top of this file).
 */
export async function huntParallel(program: Program, source: ProgramSource, opts: HuntOptions & { workers: number; yieldTimeout?: number }): Promise<HuntResult> {
  const workers = opts.workers;
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 256) throw new InputError(`bad worker count ${workers}: expected an integer from 1 to 256`);
  const seconds = opts.yieldTimeout ?? 0;
  const supervised = seconds > 0;
  const typescript = __filename.endsWith('.ts');
  const portableOpts = portable(opts);
  const dog = supervised ? new Watchdog(seconds) : null;
  const pool: PoolWorker[] = [];
  // Bad options are one-line errors before any worker boots (supervised, the plan is made there).
  const picker = new StrategyPicker(opts);
  engineOptions(opts);
  checkSeed(opts.seed ?? 0);
  checkPositiveInt(opts.iterations ?? 1000, 'iteration count');
  let plan: HuntPlan | null = opts.plan ?? (supervised ? null : planHunt(program, opts, true));
  let fold: HuntFold | null = null;
  try {
    if (plan === null) {
      // Calibration runs scenario code: make the plan on a supervised worker.
      const planned = await planOnWorker(source, portableOpts, typescript, dog as Watchdog, pool);
      if ('stuck' in planned) {
        // The calibration run got stuck: that run is the hunt's one record.
        const eopts = engineOptions({ ...opts, instrument: false });
        plan = { strategy: picker.name, seed: checkSeed(opts.seed ?? 0), iterations: 1, expectedSteps: 0, hash: programHash(program, eopts), chunk: CHUNK, prefixes: null };
        fold = new HuntFold(foldOptions(opts, 1));
        fold.push(stuckRecord(planned.stuck, plan.hash, 'replay', seconds), 0);
        return finishHunt(program, { ...opts, shrink: false }, plan, fold, eopts);
      }
      plan = planned.plan;
    }
    fold = new HuntFold(foldOptions(opts, plan.iterations));
    const ctx: PoolContext = { workers, typescript, source, portableOpts, dog, pool, picker, seconds, stuckRuns: 0 };
    await runUnits(program, opts, plan, fold, ctx);
    if (!supervised) return finishHunt(program, opts, plan, fold);
    const result = finishHunt(program, { ...opts, shrink: false }, plan, fold);
    // A stuck DFS path cut its subtree short: the search did not cover the tree.
    if (ctx.stuckRuns > 0) result.exhausted = false;
    if (opts.shrink) await shrinkOnWorkers(result, { typescript, source, portableOpts, dog: dog as Watchdog, pool, plan });
    return result;
  } finally {
    dog?.stop();
    await Promise.all(pool.filter((w) => !w.dead).map((w) => w.kill()));
  }
}

interface PoolContext {
  workers: number;
  typescript: boolean;
  source: ProgramSource;
  portableOpts: HuntOptions;
  dog: Watchdog | null;
  pool: PoolWorker[];
  picker: StrategyPicker;
  seconds: number;
  /** Runs stopped by the watchdog so far. */
  stuckRuns: number;
}

/** Boot a worker without a plan; it calibrates, posts the plan and then serves units. */
function planOnWorker(source: ProgramSource, portableOpts: HuntOptions, typescript: boolean, dog: Watchdog, pool: PoolWorker[]): Promise<{ plan: HuntPlan } | { stuck: WatchSnapshot }> {
  return new Promise((resolve, reject) => {
    const w = new PoolWorker({ typescript, source, opts: portableOpts, plan: null }, true);
    pool.push(w);
    let settled = false;
    const done = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
    };
    w.worker.on('message', (m: FromWorker) => {
      if (m.type === 'plan') {
        // Calibration is over; the worker is idle until handed units.
        w.working = false;
        w.busyNow();
        done(() => resolve({ plan: m.plan }));
      } else if (m.type === 'error') done(() => reject(workerError(m)));
    });
    w.worker.on('error', (e) => done(() => reject(e instanceof Error ? e : new Error(String(e)))));
    w.worker.on('exit', (code) => {
      if (!w.dead) done(() => reject(new Error(`a hunt worker exited with code ${code} while planning`)));
    });
    w.working = true;
    w.guard = dog.add(w.watch as Watch, () => {
      const snap = (w.watch as Watch).snapshot();
      void w.kill();
      done(() => resolve({ stuck: snap }));
    });
    w.busyNow();
  });
}

/**
 * Hand the plan's units to the pool (and, unsupervised, run them on this thread too) and fold
 * their records in unit order until the fold stops or every unit is folded.
 */
async function runUnits(program: Program, opts: HuntOptions, plan: HuntPlan, fold: HuntFold, c: PoolContext): Promise<void> {
  const supervised = c.dog !== null;
  const shard = opts.shard ? checkShard(opts.shard) : null;
  const units = shardUnits(plan, shard);
  const results = new Map<number, readonly IterationRecord[]>(opts.done ?? []);
  /** Supervised: the stuck iterations of each unit (index in the unit -> record). */
  const stuck = new Map<number, Map<number, IterationRecord>>();
  /** Units handed to a worker that was stopped: handed again first. */
  const again: number[] = [];
  let foldAt = 0; // index into units of the next unit to fold
  let handAt = 0; // index into units of the next unit to hand out

  /** Fold every unit that is now contiguous; true when the hunt is over. */
  const advance = (): boolean => {
    while (!fold.stopped && foldAt < units.length) {
      const u = units[foldAt];
      const recs = results.get(u);
      if (recs === undefined) return false;
      fold.pushUnit(plan, u, recs);
      results.delete(u);
      foldAt++;
    }
    return true;
  };
  if (advance()) return;

  const init: WorkerInit = { typescript: c.typescript, source: c.source, opts: c.portableOpts, plan };
  // Unsupervised, the main thread is one of the `workers`: it runs units itself from the
  // start, while the worker threads boot (loading the scenario takes a second or two), and
  // between messages. Supervised, it only supervises: every unit runs on a worker.
  const local = supervised ? null : new UnitRunner(program, opts, engineOptions({ ...opts, instrument: false }), plan);
  await new Promise<void>((resolve, reject) => {
    let finished = false;
    const finish = (e?: Error) => {
      if (finished) return;
      finished = true;
      if (e) reject(e);
      else resolve();
    };
    const take = (): number => {
      while (again.length > 0) {
        const u = again.shift() as number;
        if (!results.has(u) && units.indexOf(u) >= foldAt) return u;
      }
      // Units before foldAt are folded (`done` ones too, and deleted from results): never again.
      if (handAt < foldAt) handAt = foldAt;
      while (handAt < units.length && results.has(units[handAt])) handAt++;
      return handAt < units.length ? units[handAt++] : -1;
    };
    const arrived = (u: number, recs: IterationRecord[]) => {
      results.set(u, recs);
      opts.onUnit?.(u, recs, false, plan);
      if (advance()) finish();
    };
    // Each worker has up to PREFETCH units queued, so it never waits for the main thread.
    const feed = (w: PoolWorker, n: number) => {
      for (let k = 0; k < n; k++) {
        const u = take();
        if (u < 0) break;
        w.queued.push(u);
        const st = stuck.get(u);
        w.worker.postMessage({ type: 'unit', unit: u, ...(st ? { stuck: [...st.entries()] } : {}) });
      }
      w.busyNow();
    };
    /** A worker's run did not yield: stop it, record the stuck iteration, hand its units again. */
    const onStuck = (w: PoolWorker) => {
      const snap = (w.watch as Watch).snapshot();
      void w.kill();
      if (finished) return;
      const u = snap.unit;
      if (u < 0 || !w.queued.includes(u)) return finish(new Error(`a supervised worker got stuck outside a unit (unit ${u})`));
      const strategy = plan.prefixes ? (c.picker.only.name === 'dfs' ? 'dfs' : c.picker.name) : c.picker.at(u * plan.chunk + snap.index).name;
      c.stuckRuns++;
      const m = stuck.get(u) ?? new Map<number, IterationRecord>();
      m.set(snap.index, stuckRecord(snap, plan.hash, strategy, c.seconds));
      stuck.set(u, m);
      again.push(...w.queued);
      again.sort((a, b) => a - b);
      w.queued.length = 0;
      start(); // the replacement
    };
    const start = () => {
      const w = new PoolWorker(init, supervised);
      c.pool.push(w);
      if (c.dog !== null) w.guard = c.dog.add(w.watch as Watch, () => onStuck(w));
      wire(w);
    };
    const wire = (w: PoolWorker) => {
      w.worker.on('message', (m: FromWorker) => {
        if (finished || w.dead) return;
        if (m.type === 'ready') feed(w, PREFETCH);
        else if (m.type === 'unit') {
          const k = w.queued.indexOf(m.unit);
          if (k >= 0) w.queued.splice(k, 1);
          arrived(m.unit, m.records);
          if (!finished) feed(w, 1);
        } else if (m.type === 'error') finish(workerError(m));
      });
      w.worker.on('error', (e) => finish(e instanceof Error ? e : new Error(String(e))));
      w.worker.on('exit', (code) => {
        if (!finished && !w.dead && code !== 0) finish(new Error(`a hunt worker exited with code ${code}`));
      });
    };
    // Supervised, the worker that made the plan is already up (and idle): use it first.
    const planner = c.pool.find((w) => !w.dead);
    let threads = Math.min(c.workers - (supervised ? 0 : 1), Math.max(supervised ? 1 : 0, units.length - foldAt - (supervised ? 0 : 1)));
    if (planner !== undefined) {
      wire(planner);
      planner.guard?.remove();
      if (c.dog !== null) planner.guard = c.dog.add(planner.watch as Watch, () => onStuck(planner));
      feed(planner, PREFETCH);
      threads--;
    }
    for (let k = 0; k < threads; k++) start();
    if (local === null) return;
    const pump = () => {
      if (finished) return;
      const u = take();
      if (u < 0) return; // the rest is queued on workers
      try {
        const recs: IterationRecord[] = [];
        local.run(u, (rec) => (recs.push(rec), false));
        arrived(u, recs);
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
      setImmediate(pump);
    };
    setImmediate(pump);
  });
}

/** Run `job` on a live worker of the pool (or a new one), under the watchdog; null when stuck. */
function jobOnPool(job: Job, c: { typescript: boolean; source: ProgramSource; portableOpts: HuntOptions; dog: Watchdog; pool: PoolWorker[]; plan: HuntPlan | 'none' }): Promise<{ result: unknown } | { stuck: WatchSnapshot }> {
  return new Promise((resolve, reject) => {
    let w = c.pool.find((x) => !x.dead);
    if (w === undefined) {
      w = new PoolWorker({ typescript: c.typescript, source: c.source, opts: c.portableOpts, plan: c.plan }, true);
      c.pool.push(w);
    }
    const pw = w;
    let settled = false;
    const done = (f: () => void) => {
      if (settled) return;
      settled = true;
      pw.worker.off('message', onMessage);
      pw.working = false;
      pw.busyNow();
      f();
    };
    const onMessage = (m: FromWorker) => {
      if (m.type === 'job') done(() => resolve({ result: m.result }));
      else if (m.type === 'error') done(() => reject(workerError(m)));
    };
    pw.worker.removeAllListeners('message');
    pw.worker.on('message', onMessage);
    pw.worker.once('error', (e) => done(() => reject(e instanceof Error ? e : new Error(String(e)))));
    pw.worker.once('exit', (code) => {
      if (!pw.dead) done(() => reject(new Error(`a worker exited with code ${code}`)));
    });
    pw.guard?.remove();
    pw.guard = c.dog.add(pw.watch as Watch, () => {
      const snap = (pw.watch as Watch).snapshot();
      void pw.kill();
      done(() => resolve({ stuck: snap }));
    });
    pw.working = true;
    pw.busyNow();
    pw.worker.postMessage({ type: 'job', job });
  });
}

/**
 * Shrink each finding's schedule on a supervised worker, as finishHunt does in-process. A
 * finding of a stuck run keeps its schedule (replaying it is getting stuck again); a shrink
 * that gets stuck on a candidate schedule keeps the schedule it started from.
 */
async function shrinkOnWorkers(result: HuntResult, c: { typescript: boolean; source: ProgramSource; portableOpts: HuntOptions; dog: Watchdog; pool: PoolWorker[]; plan: HuntPlan }): Promise<void> {
  for (const f of result.findings) {
    if (f.kind === 'nondeterminism' || f.subkind === 'yield_timeout') continue;
    const r = await jobOnPool({ type: 'shrink', schedule: f.schedule, fingerprint: f.fingerprint }, c);
    if ('result' in r) f.shrunk = r.result as string;
  }
}

/**
 * Run one job (a replay, one iteration) on a fresh supervised worker: its result, or the
 * snapshot of the stuck run when a thread did not yield within `seconds`.
 */
export async function runJobSupervised(source: ProgramSource, opts: HuntOptions, job: Job, seconds: number): Promise<{ result: unknown } | { stuck: WatchSnapshot }> {
  const dog = new Watchdog(seconds);
  const pool: PoolWorker[] = [];
  try {
    return await jobOnPool(job, { typescript: __filename.endsWith('.ts'), source, portableOpts: portable(opts), dog, pool, plan: 'none' });
  } finally {
    dog.stop();
    await Promise.all(pool.filter((w) => !w.dead).map((w) => w.kill()));
  }
}
