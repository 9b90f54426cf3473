/**
 * irqsim hunt <scenario|all> and irqsim run <scenario>: every variant hunted (run: one fully
 * instrumented schedule each), the claims judged, the report printed; --out keeps the results
 * file up to date while the hunt runs, --resume continues one, --shard runs one part of it.
 */
import { InputError, programHash } from '../../../scheduler';
import { judgeClaims, claimsHold, formatClaims } from '../../scenario/claims';
import { scenarioProgram, type Params, type Perturbation, type ScenarioDef, type VariantDef } from '../../scenario/define';
import { huntVariant, huntVariantAsync, partialRun, variantHuntOptions, type HuntState, type RunJson, type VariantHuntOptions } from '../../scenario/hunt';
import { claimHunter } from '../../scenario/hunt-scenario';
import { applyParams } from '../../scenario/params';
import { allScenarios } from '../../scenario/registry';
import { huntText } from '../../report/text';
import { exitCode, kindsOf, perturbationOf, scenarioArg, variantsOf, type Io } from '../command';
import { huntRequestOf, machineOf, type CliOptions } from '../options';
import { progressBar, resultLine, wantProgressBar } from '../progress';
import { checkWritable } from '../../report/write-atomic';
import { ResultsWriter, docOf, readResults, type ScenarioOutput } from '../results-file';
import { cmdRunTrace } from './trace';

/**
 * The scenario's `options` object of the JSON output (docs/contract.md): what the command line
 * asked, and nothing it did not (no filled-in defaults: a variant may declare its own strategy
 * and budget; what each ran is `runs[].options`). --resume and merge compare it whole.
 */
function optionsJson(o: CliOptions, params: Params, pert: Perturbation | null): Record<string, unknown> {
  return {
    ...o.hunt,
    params,
    ...(pert ? { perturbation: pert.name } : {}),
    ...(o.lockdep !== undefined ? { lockdep: o.lockdep ? 'on' : 'off' } : {}),
    ...(o.shard ? { shard: `${o.shard.index}/${o.shard.count}` } : {}),
  };
}

/** --resume: the scenario's entry in the earlier file, which must be the same hunt. */
function resumedScenario(previous: ScenarioOutput[], now: ScenarioOutput, file: string): ScenarioOutput {
  const prev = previous.find((p) => p.scenario.id === now.scenario.id);
  if (!prev) throw new InputError(`cannot resume from ${file}: it has no hunt of ${now.scenario.id}`);
  if (prev.scenario.hash !== now.scenario.hash) throw new InputError(`cannot resume from ${file}: ${now.scenario.id} changed since (program hash ${prev.scenario.hash}, now ${now.scenario.hash})`);
  const a = prev.options, b = JSON.parse(JSON.stringify(now.options)) as Record<string, unknown>;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) throw new InputError(`cannot resume from ${file}: it records a hunt with ${k} ${JSON.stringify(a[k]) ?? '(unset)'}, this one has ${JSON.stringify(b[k]) ?? '(unset)'}`);
  }
  return prev;
}

interface Task {
  out: ScenarioOutput;
  def: ScenarioDef;
  v: VariantDef;
  params: Params;
  vo: VariantHuntOptions;
}

export function cmdHunt(o: CliOptions, io: Io, single: boolean): number | Promise<number> {
  const target = o.positionals[0];
  if (!target) throw new InputError(`${single ? 'run' : 'hunt'} needs a scenario (a file or an id; "all" for every scenario)`);
  if (o.positionals.length > 1) throw new InputError(`unexpected argument "${o.positionals[1]}"`);
  if (single) {
    for (const [flag, set] of [['--workers', o.workers > 1], ['--shard', o.shard !== undefined], ['--out', o.out !== undefined], ['--portfolio', o.hunt.portfolio === true]] as const) {
      if (set) throw new InputError(`${flag} belongs to irqsim hunt: irqsim run runs one schedule per variant`);
    }
  } else if (o.trace !== undefined) {
    throw new InputError('--trace writes one run: use it with irqsim run, or replay a finding with irqsim replay <scenario> <schedule> --trace <out.json>');
  }
  const defs = target === 'all' && !single ? allScenarios() : [scenarioArg(target)];
  if (target === 'all' && o.params.length) throw new InputError('--param needs a single scenario');
  if (target === 'all' && o.perturb !== undefined) throw new InputError('--perturb needs a single scenario');
  if (single && o.trace !== undefined) return cmdRunTrace(o, io, defs[0]);
  const previous = o.resume ? readResults(o.out as string, 'a results file written by irqsim hunt --out') : null;
  if (o.out !== undefined) checkWritable(o.out);
  const keep = o.out !== undefined || o.shard !== undefined;
  const request = huntRequestOf(o);
  const outputs: ScenarioOutput[] = [];
  const tasks: Task[] = [];
  for (const def of defs) {
    const pert = perturbationOf(def, o.perturb);
    const params = applyParams(def, o.params, pert?.params);
    const program = scenarioProgram(def, def.variants[0].name, params, machineOf(o));
    const out: ScenarioOutput = {
      scenario: { id: def.id, name: def.name, file: def.file, hash: programHash(program, o.hunt) },
      options: optionsJson(o, params, pert),
      runs: [],
    };
    outputs.push(out);
    const prev = previous ? resumedScenario(previous, out, o.out as string) : null;
    for (const v of variantsOf(def, o.variant)) {
      const over = { ...o.hunt };
      if (pert && over.iterations === undefined) over.iterations = Math.max(1, Math.round((variantHuntOptions(def, v).iterations ?? 1000) * (pert.scale ?? 1)));
      const before = prev?.runs.find((r) => r.variant === v.name);
      if (prev && (before === undefined || before.state === undefined)) throw new InputError(`cannot resume from ${o.out}: it has no records of ${def.id}/${v.name}`);
      const vo: VariantHuntOptions = {
        ...request,
        hunt: over,
        single,
        workers: o.workers,
        yieldTimeout: o.yieldTimeout,
        ...(o.shard ? { shard: o.shard } : {}),
        ...(keep ? { keepState: true, request } : {}),
        ...(before?.state ? { resumeFrom: before.state } : {}),
      };
      tasks.push({ out, def, v, params, vo });
    }
  }
  const bar = io.progress ?? progressBar(wantProgressBar(o.json));
  let current: { task: Task; state: HuntState | null } | null = null;
  const writer = o.out === undefined ? null : new ResultsWriter(o.out, () => docOf(outputs.map((x) => (current && current.task.out === x && current.state ? { ...x, runs: [...x.runs, partialRun(current.task.def, current.task.v, current.task.params, current.state, current.task.vo.machine)] } : x))));
  const finish = (): number => {
    current = null;
    // irqsim run is one schedule per variant: it judges no claims.
    if (!single) {
      for (const [i, x] of outputs.entries()) {
        const mine = tasks.filter((t) => t.out === x);
        const hunter = claimHunter(defs[i], request, (variant) => mine.find((t) => t.v.name === variant)?.vo.hunt ?? o.hunt);
        x.claims = judgeClaims(defs[i], { runs: x.runs, params: x.options.params as Params, hunt: hunter, ...(o.shard ? { notJudged: `not judged: shard ${o.shard.index}/${o.shard.count} of the hunt (irqsim merge judges the claims)` } : {}) });
      }
    }
    writer?.update(true);
    const ok = outputs.every((x) => x.runs.every((r) => r.verdict === 'as-expected') && claimsHold(x.claims));
    if (o.json) io.out(JSON.stringify(docOf(outputs)));
    else for (const [i, x] of outputs.entries()) for (const line of huntText(x.scenario, x.runs, defs[i].keyMetrics ?? [], formatClaims(x.claims ?? []))) io.out(line);
    return exitCode(ok, outputs.flatMap((x) => kindsOf(x.runs)));
  };
  const drive = (i: number): number | Promise<number> => {
    for (; i < tasks.length; i++) {
      const t = tasks[i];
      current = { task: t, state: null };
      const onProgress = bar.start(`${t.def.id}/${t.v.name}`);
      const vo: VariantHuntOptions = {
        ...t.vo,
        hunt: { ...t.vo.hunt, onProgress, progressEvery: 1 },
        ...(writer ? { onState: (st: HuntState) => ((current!.state = st), writer.update()) } : {}),
      };
      const r = (o.workers > 1 && !single) || o.yieldTimeout > 0 ? huntVariantAsync(t.def, t.v, t.params, vo) : huntVariant(t.def, t.v, t.params, vo);
      const done = (x: RunJson) => {
        // the variant's result line stays on screen as it finishes (the full report comes at the end)
        bar.result(resultLine(t.def.id, x));
        bar.stop();
        t.out.runs.push(x);
        current = null;
        writer?.update(true);
      };
      if (r instanceof Promise) {
        const k = i;
        return r.then(
          (x) => (done(x), drive(k + 1)),
          (e) => {
            bar.stop();
            throw e;
          },
        );
      }
      done(r);
    }
    return finish();
  };
  return drive(0);
}
