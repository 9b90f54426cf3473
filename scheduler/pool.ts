/**
 * Parallel hunts on worker threads. Programs are closures, so a worker cannot receive one: it
 * gets a ProgramSource (a module and the JSON arguments of the function there that builds the
 * program) and builds its own copy. The main thread plans the hunt (calibration, DFS prefixes),
 * hands units out in increasing order to whichever worker is free (itself included: `workers`
 * counts the main thread), and folds the records in unit order as they become contiguous: the result is the one process's, whatever the number
 * of workers and whoever finished first. When the fold stops, the workers are terminated.
 */
import { join } from 'path';
import { Worker } from 'worker_threads';
import { InputError, ProgramError } from './errors';
import { checkShard, engineOptions, finishHunt, foldOptions, planHunt, type HuntOptions, type HuntResult } from './explorer';
import { HuntFold } from './fold';
import type { Program } from './program';
import type { IterationRecord } from './record';
import { UnitRunner, unitCount } from './units';
import type { FromWorker, WorkerInit } from './worker';

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

/**
 * Hunt `program` (built in each worker from `source`) on `workers` threads. Same options and
 * same result as hunt(); `done`, `shard`, `plan` and `onUnit` work as there.
 */
export async function huntParallel(program: Program, source: ProgramSource, opts: HuntOptions & { workers: number }): Promise<HuntResult> {
  const workers = opts.workers;
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 256) throw new InputError(`bad worker count ${workers}: expected an integer from 1 to 256`);
  const plan = opts.plan ?? planHunt(program, opts, true);
  const fold = new HuntFold(foldOptions(opts, plan.iterations));
  const shard = opts.shard ? checkShard(opts.shard) : null;
  const units: number[] = [];
  for (let u = 0; u < unitCount(plan); u++) if (!shard || u % shard.count === shard.index - 1) units.push(u);
  const results = new Map<number, readonly IterationRecord[]>(opts.done ?? []);
  let foldAt = 0; // index into units of the next unit to fold
  let handAt = 0; // index into units of the next unit to hand out

  /** Fold every unit that is now contiguous; true when the hunt is over. */
  const advance = (): boolean => {
    while (!fold.stopped && foldAt < units.length) {
      const u = units[foldAt];
      const recs = results.get(u);
      if (recs === undefined) return false;
      for (let j = 0; j < recs.length; j++) if (fold.push(recs[j], plan.prefixes ? fold.run : u * plan.chunk + j)) break;
      results.delete(u);
      foldAt++;
    }
    return true;
  };

  if (!advance()) {
    const typescript = __filename.endsWith('.ts');
    const init: WorkerInit = { typescript, source, opts: portable(opts), plan };
    const pool: Worker[] = [];
    // The main thread is one of the `workers`: it runs units itself from the start, while the
    // worker threads boot (loading the scenario takes a second or two), and between messages.
    const local = new UnitRunner(program, opts, engineOptions({ ...opts, instrument: false }), plan);
    try {
      await new Promise<void>((resolve, reject) => {
        let finished = false;
        const finish = (e?: Error) => {
          if (finished) return;
          finished = true;
          if (e) reject(e);
          else resolve();
        };
        const take = (): number => {
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
        const feed = (w: Worker, n: number) => {
          for (let k = 0; k < n; k++) {
            const u = take();
            if (u < 0) return;
            w.postMessage({ type: 'unit', unit: u });
          }
        };
        const threads = Math.min(workers - 1, Math.max(0, units.length - foldAt - 1));
        for (let k = 0; k < threads; k++) {
          const w = new Worker(join(__dirname, 'worker-entry.js'), { workerData: init });
          pool.push(w);
          w.on('message', (m: FromWorker) => {
            if (finished) return;
            if (m.type === 'ready') feed(w, PREFETCH);
            else if (m.type === 'unit') {
              arrived(m.unit, m.records);
              if (!finished) feed(w, 1);
            } else finish(m.kind === 'input' ? new InputError(m.message) : m.kind === 'program' ? new ProgramError(m.message) : new Error(`worker: ${m.message}`));
          });
          w.on('error', (e) => finish(e instanceof Error ? e : new Error(String(e))));
          w.on('exit', (code) => {
            if (!finished && code !== 0) finish(new Error(`a hunt worker exited with code ${code}`));
          });
        }
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
    } finally {
      await Promise.all(pool.map((w) => w.terminate()));
    }
  }
  return finishHunt(program, opts, plan, fold);
}
