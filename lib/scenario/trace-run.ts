/**
 * A scenario variant's run, traced: the tracer (lib/report/trace.ts) attached to a replay of a
 * schedule or to iteration 0 of a hunt. Here, not in lib/report, because it runs scenarios: the
 * report layer only records and draws.
 */
import { engineOptions, replay, runIteration, type HuntOptions, type ReplayResult, type RunResult } from '../../scheduler';
import { MACHINE_OBSERVER } from '../kernel/hooks';
import type { Machine, MachineOptions } from '../kernel/machine';
import { chromeTrace, findingTime, timelineOf, Tracer, type ChromeTrace, type TraceLog } from '../report/trace';
import type { ContextState } from '../kernel/show-state';
import type { TimelineJson } from '../report/timeline';
import { scenarioProgram, type Params, type ScenarioDef } from './define';

export interface TraceRunOptions {
  /** Replay this schedule (strict unless continueReplay); absent: iteration 0 of a hunt. */
  schedule?: string;
  hunt?: Partial<HuntOptions>;
  machine?: Partial<MachineOptions>;
  continueReplay?: boolean;
}

export interface TraceRunResult {
  trace: ChromeTrace;
  /** The tracer's own record (what timelineOf reads fastest). */
  log: TraceLog;
  run: RunResult;
  /** The schedule string of what ran (replays); undefined for an iteration run. */
  ran?: string;
  /** The replay itself (with a schedule): what `irqsim replay` reports. */
  replayed?: ReplayResult;
}

/**
 * Run one variant traced: replay `schedule`, or run iteration 0 of a hunt with the variant's
 * options (as `irqsim run` does), fully instrumented.
 */
export function traceRun(def: ScenarioDef, variant: string, params: Params, opts: TraceRunOptions = {}): TraceRunResult {
  const v = def.variants.find((x) => x.name === variant);
  if (v === undefined) throw new Error(`scenario ${def.id} has no variant ${variant}`);
  const tracer = new Tracer();
  const machine: Partial<MachineOptions> = { ...(opts.machine ?? {}), [MACHINE_OBSERVER]: (m: Machine) => tracer.attach(m) };
  const program = scenarioProgram(def, variant, params, machine);
  // variantHuntOptions' merge (not imported: lib/scenario/hunt.ts may import this file)
  const hopts: HuntOptions = { iterations: 1000, ...def.options, ...v.options, ...opts.hunt };
  let run: RunResult;
  let ran: string | undefined;
  let replayed: ReplayResult | undefined;
  if (opts.schedule !== undefined) {
    const r = (replayed = replay(program, opts.schedule, { ...engineOptions(hopts), instrument: true, mode: opts.continueReplay ? 'continue' : 'strict' }));
    run = r;
    ran = r.ran;
  } else {
    run = runIteration(program, { ...hopts, iteration: 0, instrument: true });
  }
  const log = tracer.finish(run.metrics.endTime);
  const trace = chromeTrace(log, {
    scenario: def.id,
    variant,
    ...(ran !== undefined ? { schedule: ran } : { iteration: 0, seed: hopts.seed ?? 0, strategy: String(hopts.strategy ?? 'random') }),
    params,
    endReason: run.endReason,
    steps: run.metrics.steps,
    findings: run.findings.map((f) => f.kind),
  });
  return { trace, log, run, ...(ran !== undefined ? { ran } : {}), ...(replayed ? { replayed } : {}) };
}

/**
 * Replay a (shrunk) schedule traced and return the timeline at its first finding (or at the
 * finding with `fingerprint`), with that finding's time and machine state in this run
 * (`run`); undefined when the replay has no such finding.
 */
export function findingTimeline(
  def: ScenarioDef,
  variant: string,
  params: Params,
  schedule: string,
  machine?: Partial<MachineOptions>,
  hunt?: Partial<HuntOptions>,
  fingerprint?: string,
): TimelineJson | undefined {
  const r = traceRun(def, variant, params, { schedule, machine, hunt });
  const fs = fingerprint === undefined ? [...r.run.findings].sort((a, b) => a.step - b.step) : r.run.findings.filter((f) => f.fingerprint === fingerprint);
  const f = fs[0];
  if (f === undefined) return undefined;
  const tl = timelineOf(r.log, findingTime(f, r.log.end), r.log.cpus);
  // the page's time and machine state come from this same run (CONTRACT: one run per finding)
  const cpuStates = (f.data?.cpuStates as ContextState[] | undefined) ?? [];
  return { ...tl, run: { schedule: r.ran ?? schedule, time: f.fatal ? Math.max(f.time, r.log.stuckAt ?? r.run.metrics.endTime) : f.time, cpuStates } };
}
