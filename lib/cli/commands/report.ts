/**
 * irqsim report <results.json> --html <out.html>: the self-contained HTML page of a hunt's JSON.
 * A finding without a timeline gets one from a traced replay of its (shrunk) schedule, when its
 * scenario is still here and unchanged.
 */
import { existsSync } from 'fs';
import { InputError } from '../../../scheduler';
import type { Params } from '../../scenario/define';
import { allScenarios, findScenario } from '../../scenario/registry';
import { renderHtml } from '../../report/html';
import { huntFromJson } from '../../report/json';
import { findingTimeline } from '../../scenario/trace-run';
import { writeAtomic } from '../../report/write-atomic';
import type { Io } from '../command';
import type { CliOptions } from '../options';
import { docOf, readResults } from '../results-file';

export function cmdReport(o: CliOptions, io: Io): number {
  const [file, extra] = o.positionals;
  if (!file) throw new InputError('report needs a results file (the output of irqsim hunt --json)');
  if (extra) throw new InputError(`unexpected argument "${extra}"`);
  if (o.html === undefined) throw new InputError('report needs --html <out.html>');
  const outputs = readResults(file, 'the output of irqsim hunt --json');
  const scenarios = allScenarios();
  let missed = 0;
  for (const x of outputs) {
    const def = (x.scenario.file && existsSync(x.scenario.file) ? findScenario(x.scenario.file) : scenarios.find((d) => d.id === x.scenario.id)) ?? null;
    for (const run of x.runs ?? []) {
      for (const f of run.findings ?? []) {
        if (f.timeline !== undefined || !f.schedule) continue;
        try {
          if (def === null) throw new Error('scenario not found');
          const opts = x.options ?? {};
          const hunt = huntFromJson(Object.fromEntries(['window', 'horizon', 'stepBudget', 'maxFaults'].filter((k) => k in opts).map((k) => [k, opts[k]])));
          const machine = opts.lockdep === 'on' || opts.lockdep === 'off' ? { lockdep: opts.lockdep === 'on' } : {};
          const tl = findingTimeline(def, run.variant, (opts.params ?? def.params) as Params, f.shrunk ?? f.schedule, machine, hunt, f.fingerprint);
          if (tl !== undefined) f.timeline = tl;
        } catch {
          missed++;
        }
      }
    }
  }
  if (missed > 0) io.err(`irqsim: ${missed} finding(s) drawn without a timeline (their schedule no longer replays: the scenario changed or is not here)`);
  const keyMetrics = Object.fromEntries(scenarios.map((d) => [d.id, d.keyMetrics ?? []]));
  let html: string;
  try {
    html = renderHtml(docOf(outputs) as Parameters<typeof renderHtml>[0], { keyMetrics });
  } catch (e) {
    throw new InputError(`${file}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  writeAtomic(o.html, html);
  io.err(`irqsim: wrote ${o.html}`);
  return 0;
}
