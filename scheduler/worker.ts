/**
 * A hunt worker thread: builds the program from its source module, then runs the units the
 * main thread hands it, one at a time and in increasing order, and posts back their records.
 */
import { parentPort, workerData } from 'worker_threads';
import { engineOptions, type HuntOptions } from './explorer';
import type { HuntPlan } from './units';
import { UnitRunner } from './units';
import { loadProgram, type ProgramSource } from './pool';
import type { IterationRecord } from './record';
import { InputError, ProgramError } from './errors';

export interface WorkerInit {
  typescript: boolean;
  source: ProgramSource;
  opts: HuntOptions;
  plan: HuntPlan;
}

export type ToWorker = { type: 'unit'; unit: number } | { type: 'stop' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'unit'; unit: number; records: IterationRecord[] }
  | { type: 'error'; kind: 'input' | 'program' | 'internal'; message: string };

const port = parentPort;
if (port !== null) {
  const init = workerData as WorkerInit;
  let runner: UnitRunner | null = null;
  const fail = (e: unknown) => {
    const kind = e instanceof InputError ? 'input' : e instanceof ProgramError ? 'program' : 'internal';
    port.postMessage({ type: 'error', kind, message: e instanceof Error ? e.message : String(e) } satisfies FromWorker);
  };
  try {
    const program = loadProgram(init.source);
    runner = new UnitRunner(program, init.opts, engineOptions({ ...init.opts, instrument: false }), init.plan);
    port.postMessage({ type: 'ready' } satisfies FromWorker);
  } catch (e) {
    fail(e);
  }
  port.on('message', (m: ToWorker) => {
    if (m.type === 'stop' || runner === null) {
      port.close();
      return;
    }
    try {
      const records: IterationRecord[] = [];
      runner.run(m.unit, (rec) => {
        records.push(rec);
        return false;
      });
      port.postMessage({ type: 'unit', unit: m.unit, records } satisfies FromWorker);
    } catch (e) {
      fail(e);
    }
  });
}
