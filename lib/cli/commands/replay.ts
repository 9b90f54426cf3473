/**
 * irqsim replay <scenario> <schedule>: the schedule run again (strict, or --continue past where
 * it leaves the program), supervised like the hunt that found it, optionally traced.
 */
import { engineOptions, replay, type ReplayResult } from '../../../scheduler';
import type { Params, ScenarioDef, VariantDef } from '../../scenario/define';
import { replayCommand, replaySupervised, variantHuntOptions } from '../../scenario/hunt';
import { scenarioProgram } from '../../scenario/define';
import { judge } from '../../scenario/verdict';
import { findingJson } from '../../report/json';
import { replayText } from '../../report/text';
import { traceRun } from '../../scenario/trace-run';
import { writeAtomic } from '../../report/write-atomic';
import { exitCode, scheduleArgs, type Io } from '../command';
import { machineOf, type CliOptions } from '../options';

export function cmdReplay(o: CliOptions, io: Io): number | Promise<number> {
  const { def, params, v, schedule } = scheduleArgs(o, 'replay');
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

function printReplay(o: CliOptions, io: Io, def: ScenarioDef, v: VariantDef, params: Params, schedule: string, r: Pick<ReplayResult, 'findings' | 'ran' | 'divergedAt' | 'events'>): number {
  const findings = r.findings.map((f) => findingJson({ ...f, iteration: 0, schedule: r.ran, runs: 1, totalCount: f.count }, replayCommand(def, v.name, params, r.ran, machineOf(o))));
  const unexpected = judge(v.expect, r.findings.map((f) => f.kind), {}).unexpected;
  if (o.json) {
    io.out(JSON.stringify({ scenario: { id: def.id, name: def.name, file: def.file }, variant: v.name, schedule: r.ran, divergedAt: r.divergedAt, events: r.events, findings, ...(o.trace ? { trace: o.trace } : {}) }));
  } else for (const line of replayText(`${def.id}/${v.name}`, schedule, r.divergedAt, r.events, findings)) io.out(line);
  return exitCode(unexpected.length === 0, r.findings.map((f) => f.kind));
}
