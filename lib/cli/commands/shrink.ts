/** irqsim shrink <scenario> <schedule>: the smallest schedule that still gives its first finding. */
import { InputError, engineOptions, replay, shrinkSchedule } from '../../../scheduler';
import { scenarioProgram } from '../../scenario/define';
import { replayCommand, variantHuntOptions } from '../../scenario/hunt';
import { shrinkText } from '../../report/text';
import { scheduleArgs, type Io } from '../command';
import { machineOf, type CliOptions } from '../options';
import { ownerOfSchedule } from './replay';
import { JSON_VERSION } from '../../report/json';

export function cmdShrink(o: CliOptions, io: Io): number {
  const { def, params, v, schedule } = scheduleArgs(o, 'shrink');
  const program = scenarioProgram(def, v.name, params, machineOf(o));
  const eopts = engineOptions({ ...variantHuntOptions(def, v, o.hunt), instrument: false });
  let r;
  try {
    r = replay(program, schedule, { ...eopts, instrument: false, mode: 'strict' });
  } catch (e) {
    return ownerOfSchedule(e, schedule, def, v);
  }
  // Keep the fatal finding (a deadlock) when there is one: lockdep's earlier warning would shrink away the deadlock itself.
  const f = r.findings.find((x) => x.fatal) ?? r.findings[0];
  if (f === undefined) throw new InputError('the schedule gives no finding: there is nothing to keep while shrinking');
  const s = shrinkSchedule(program, schedule, f.fingerprint, eopts);
  const replayCmd = replayCommand(def, v.name, params, s.schedule, machineOf(o));
  if (o.json) io.out(JSON.stringify({ version: JSON_VERSION, scenario: { id: def.id, name: def.name, file: def.file }, variant: v.name, fingerprint: f.fingerprint, schedule, shrunk: s.schedule, deviations: { before: s.before, after: s.after }, runs: s.runs, replay: replayCmd }));
  else for (const line of shrinkText(f.headline, s, replayCmd)) io.out(line);
  return 0;
}
