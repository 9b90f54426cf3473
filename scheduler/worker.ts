/**
 * A hunt worker thread: builds the program from its source module, then runs the units the
 * main thread hands it, one at a time and in increasing order, and posts back their records.
 * Supervised (watchdog.ts), it also makes the hunt's plan when it was given none, runs the
 * other jobs that execute scenario code (shrinking, a replay, one iteration), and mirrors its
 * progress into the shared watch so the main thread can stop it when a thread does not yield.
 */
import { parentPort, workerData } from 'worker_threads';
import { engineOptions, planHunt, replay, runIteration, type HuntOptions, type ReplayOptions } from './explorer';
import type { HuntPlan } from './units';
import { UnitRunner } from './units';
import { loadProgram, type ProgramSource } from './pool';
import type { IterationRecord } from './record';
import { InputError, ProgramError, ScheduleError } from './errors';
import type { RunResult } from './engine';
import { shrinkSchedule } from './shrinker';
import { W_INDEX, W_UNIT, Watch, watchThisThread } from './watch';

export interface WorkerInit {
  typescript: boolean;
  source: ProgramSource;
  opts: HuntOptions;
  /** null: make the plan here and post it (supervised hunts: calibration runs scenario code); 'none': jobs only. */
  plan: HuntPlan | null | 'none';
  /** The shared yield watch, when supervised. */
  watch?: SharedArrayBuffer;
  /** The parent's Error.stackTraceLimit: a crash's stack (in its finding) is as deep as there. */
  stackTraceLimit?: number;
}

/** A run's result as plain data (it crosses threads). */
export interface PlainRun {
  findings: RunResult['findings'];
  metrics: RunResult['metrics'];
  events: string[] | null;
  deviations: RunResult['deviations'];
  seed: number;
  endReason: RunResult['endReason'];
  hash: number;
  coverage: readonly string[] | null;
  interleaving: number;
  /** Replays: where the run left the schedule, the schedule of what ran, and whether it was the recorded run. */
  divergedAt?: number;
  ran?: string;
  reproduced?: boolean;
}

export type Job =
  | { type: 'shrink'; schedule: string; fingerprint: string }
  | { type: 'replay'; schedule: string; opts: ReplayOptions }
  | { type: 'iteration'; opts: HuntOptions & { iteration: number } };

export type ToWorker = { type: 'unit'; unit: number; stuck?: [number, IterationRecord][] } | { type: 'job'; job: Job } | { type: 'stop' };
export type FromWorker =
  | { type: 'plan'; plan: HuntPlan }
  | { type: 'ready' }
  | { type: 'unit'; unit: number; records: IterationRecord[] }
  | { type: 'job'; result: unknown }
  | { type: 'error'; kind: 'input' | 'program' | 'schedule' | 'internal'; message: string };

export function plainRun(r: RunResult & { divergedAt?: number; ran?: string; reproduced?: boolean }): PlainRun {
  return {
    findings: r.findings,
    metrics: r.metrics,
    events: r.events,
    deviations: r.deviations,
    seed: r.seed,
    endReason: r.endReason,
    hash: r.hash,
    coverage: r.coverage,
    interleaving: r.interleaving,
    ...(r.divergedAt !== undefined ? { divergedAt: r.divergedAt, ran: r.ran, reproduced: r.reproduced } : {}),
  };
}

const port = parentPort;
if (port !== null) {
  const init = workerData as WorkerInit;
  let runner: UnitRunner | null = null;
  let program: ReturnType<typeof loadProgram> | null = null;
  const fail = (e: unknown) => {
    const kind = e instanceof ScheduleError ? 'schedule' : e instanceof InputError ? 'input' : e instanceof ProgramError ? 'program' : 'internal';
    port.postMessage({ type: 'error', kind, message: e instanceof Error ? e.message : String(e) } satisfies FromWorker);
  };
  if (init.stackTraceLimit !== undefined) Error.stackTraceLimit = init.stackTraceLimit;
  try {
    const watch = init.watch ? new Watch(init.watch) : null;
    watchThisThread(watch);
    if (watch !== null) watch.head[W_UNIT] = watch.head[W_INDEX] = -1;
    program = loadProgram(init.source);
    let plan = init.plan;
    if (plan === null) {
      plan = planHunt(program, init.opts, true);
      port.postMessage({ type: 'plan', plan } satisfies FromWorker);
    }
    if (plan !== 'none') runner = new UnitRunner(program, init.opts, engineOptions({ ...init.opts, instrument: false }), plan);
    port.postMessage({ type: 'ready' } satisfies FromWorker);
  } catch (e) {
    fail(e);
  }
  port.on('message', (m: ToWorker) => {
    if (m.type === 'stop' || program === null || (m.type === 'unit' && runner === null)) {
      port.close();
      return;
    }
    try {
      if (m.type === 'job') {
        port.postMessage({ type: 'job', result: runJob(program, init.opts, m.job) } satisfies FromWorker);
        return;
      }
      if (runner === null) return;
      const records: IterationRecord[] = [];
      runner.run(
        m.unit,
        (rec) => {
          records.push(rec);
          return false;
        },
        new Map(m.stuck ?? []),
      );
      port.postMessage({ type: 'unit', unit: m.unit, records } satisfies FromWorker);
    } catch (e) {
      fail(e);
    }
  });
}

function runJob(program: ReturnType<typeof loadProgram>, opts: HuntOptions, job: Job): unknown {
  switch (job.type) {
    case 'shrink':
      return shrinkSchedule(program, job.schedule, job.fingerprint, engineOptions({ ...opts, instrument: false })).schedule;
    case 'replay':
      return plainRun(replay(program, job.schedule, job.opts));
    case 'iteration':
      return plainRun(runIteration(program, job.opts));
  }
}
