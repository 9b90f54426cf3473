/**
 * irqsim replay <scenario> <schedule>: the schedule run again (strict, or --continue past where
 * it leaves the program), supervised like the hunt that found it, optionally traced. It prints
 * the report first, the engine's event log only with --events (lock lines name locks as the
 * report does: by lockdep class), and ends with `reproduced <fingerprint>` or what differs.
 */
import { InputError, decodeSchedule, engineOptions, programHash, replay, type ReplayResult } from '../../../scheduler';
import { applyParams } from '../../scenario/params';
import { ownerHint } from '../../scenario/owner';
import type { Params, ScenarioDef, VariantDef } from '../../scenario/define';
import { replayCommand, replaySupervised, variantHuntOptions } from '../../scenario/hunt';
import { scenarioProgram } from '../../scenario/define';
import { judge } from '../../scenario/verdict';
import { MACHINE_OBSERVER } from '../../kernel/hooks';
import type { Lock } from '../../kernel/lock';
import type { Machine, MachineOptions } from '../../kernel/machine';
import { JSON_VERSION, findingJson } from '../../report/json';
import { replayOutcome, replayText, selectEvents, type LockNames } from '../../report/text';
import { traceRun } from '../../scenario/trace-run';
import { writeAtomic } from '../../report/write-atomic';
import { exitCode, scheduleArgs, type Io } from '../command';
import { machineOf, type CliOptions } from '../options';

type Replayed = Pick<ReplayResult, 'findings' | 'ran' | 'divergedAt' | 'events' | 'metrics' | 'endReason'>;

/**
 * A strict replay refused for a program hash of another program: when a scenario and variant
 * of the catalog (default parameters or a declared perturbation) has that hash, the error names
 * it and its replay command (lib/scenario/owner.ts), instead of advising --continue (which
 * would run another program).
 */
export function ownerOfSchedule(e: unknown, schedule: string, def: ScenarioDef, v: VariantDef): never {
  if (!(e instanceof Error) || !/schedule was recorded for program hash/.test(e.message)) throw e;
  const hint = ownerHint(schedule, { id: def.id, variant: v.name });
  if (hint === null) throw e;
  throw new InputError(hint);
}

export function cmdReplay(o: CliOptions, io: Io): number | Promise<number> {
  const { def, params, v, schedule } = scheduleArgs(o, 'replay');
  try {
    const r = replayCmd(o, io, def, params, v, schedule);
    return r instanceof Promise ? r.catch((e) => ownerOfSchedule(e, schedule, def, v)) : r;
  } catch (e) {
    return ownerOfSchedule(e, schedule, def, v);
  }
}

function replayCmd(o: CliOptions, io: Io, def: ScenarioDef, params: Params, v: VariantDef, schedule: string): number | Promise<number> {
  const mode = o.continueReplay ? 'continue' : 'strict';
  // The variant's engine options (a declared timed window) shape the path, as in its hunt.
  const opts = variantHuntOptions(def, v, o.hunt);
  if (o.yieldTimeout > 0 && o.trace === undefined) {
    // Under the same budget as the hunt that found the schedule: a stuck run is stopped and
    // reported as the same scenario_error finding.
    return replaySupervised(def, v, params, schedule, { ...opts, mode }, machineOf(o), o.yieldTimeout).then((r) => printReplay(o, io, def, v, params, schedule, r));
  }
  let r: ReplayResult;
  if (o.trace !== undefined) {
    // The traced replay is the replay: same path, same findings (the tracer only observes).
    const t = traceRun(def, v.name, params, { schedule, hunt: o.hunt, machine: machineOf(o), continueReplay: o.continueReplay });
    writeAtomic(o.trace, JSON.stringify(t.trace));
    io.err(`irqsim: wrote ${o.trace} (${t.trace.traceEvents.length} events)`);
    r = t.replayed as ReplayResult;
  } else r = replay(scenarioProgram(def, v.name, params, machineOf(o)), schedule, { ...engineOptions(opts), mode });
  return printReplay(o, io, def, v, params, schedule, r);
}

/**
 * The lock names of a run, engine resource name -> lockdep class: the same schedule replayed
 * once more in this thread with an observer on the machine (it only observes: the path and the
 * hash are unchanged). `ran` is what the first replay actually ran, so this one is strict.
 */
export function lockNamesOf(def: ScenarioDef, v: VariantDef, params: Params, ran: string, machine: Partial<MachineOptions>, opts: Parameters<typeof engineOptions>[0]): LockNames {
  const names: LockNames = new Map();
  const note = (_cur: unknown, lock: Lock) => {
    if (!names.has(lock.name)) names.set(lock.name, lock.lockClass);
  };
  const observed = { ...machine, [MACHINE_OBSERVER]: (m: Machine) => m.addHooks({ lockAcquire: note, lockAcquired: note, lockRelease: note }) };
  replay(scenarioProgram(def, v.name, params, observed), ran, { ...engineOptions(opts), mode: 'strict', instrument: false });
  return names;
}

function printReplay(o: CliOptions, io: Io, def: ScenarioDef, v: VariantDef, params: Params, schedule: string, r: Replayed): number {
  const findings = r.findings.map((f) => findingJson({ ...f, iteration: 0, schedule: r.ran, runs: 1, totalCount: f.count }, replayCommand(def, v.name, params, r.ran, machineOf(o))));
  const unexpected = judge(v.expect, r.findings.map((f) => f.kind), {}).unexpected;
  const outcome = replayOutcome(decodeSchedule(schedule).steps, r);
  let events: string[] | null = null;
  if (o.events !== undefined && r.events) {
    // a thread stopped by the watchdog leaves no log (r.events is null): nothing to name then
    const names = lockNamesOf(def, v, params, r.ran, machineOf(o), { ...variantHuntOptions(def, v, o.hunt) });
    events = selectEvents(r.events, o.events, names);
  }
  if (o.json) {
    io.out(
      JSON.stringify({
        version: JSON_VERSION,
        scenario: { id: def.id, name: def.name, file: def.file },
        variant: v.name,
        schedule: r.ran,
        divergedAt: r.divergedAt,
        steps: r.metrics.steps,
        findings,
        reproduced: outcome.reproduced,
        ...(outcome.differs ? { differs: outcome.differs } : {}),
        ...(events ? { events } : {}),
        ...(o.trace ? { trace: o.trace } : {}),
      }),
    );
  } else for (const line of replayText(`${def.id}/${v.name}`, schedule, r.divergedAt, findings, outcome, events)) io.out(line);
  return exitCode(unexpected.length === 0, r.findings.map((f) => f.kind));
}
