/** irqsim run <scenario> --trace <out.json>: one variant's iteration 0, traced (a Chrome trace). */
import { InputError } from '../../../scheduler';
import type { ScenarioDef } from '../../scenario/define';
import { applyParams } from '../../scenario/params';
import { judge } from '../../scenario/verdict';
import { traceRun } from '../../scenario/trace-run';
import { writeAtomic } from '../../report/write-atomic';
import { exitCode, perturbationOf, variantsOf, type Io } from '../command';
import { machineOf, type CliOptions } from '../options';
import { JSON_VERSION } from '../../report/json';

export function cmdRunTrace(o: CliOptions, io: Io, def: ScenarioDef): number {
  const vs = variantsOf(def, o.variant);
  if (vs.length !== 1) throw new InputError(`--trace writes one run: pick the variant with --variant (${def.variants.map((x) => x.name).join(', ')})`);
  const params = applyParams(def, o.params, perturbationOf(def, o.perturb)?.params);
  const t = traceRun(def, vs[0].name, params, { hunt: o.hunt, machine: machineOf(o) });
  writeAtomic(o.trace as string, JSON.stringify(t.trace));
  io.err(`irqsim: wrote ${o.trace} (${t.trace.traceEvents.length} events, ${t.run.findings.length} finding(s))`);
  const unexpected = judge(vs[0].expect, t.run.findings.map((f) => f.kind), {}).unexpected;
  if (!o.json) for (const f of t.run.findings) io.out(`${f.text}\n`);
  else io.out(JSON.stringify({ version: JSON_VERSION, scenario: { id: def.id, name: def.name, file: def.file }, variant: vs[0].name, trace: o.trace, findings: t.run.findings.map((f) => ({ kind: f.kind, fingerprint: f.fingerprint, headline: f.headline })) }));
  return exitCode(unexpected.length === 0, t.run.findings.map((f) => f.kind));
}
