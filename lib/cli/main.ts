/**
 * The irqsim command: list, run, hunt, replay (CONTRACT.md). Output is kernel-style text, or
 * with --json one JSON object on stdout and nothing else. Exit codes: 0 as expected, 1 a run not
 * as expected, 2 bad input (one line on stderr, no stack trace unless --debug), 3 an
 * internal_error was found (a bug in irqsim itself; it wins over 1).
 *
 * hunt, run and replay run supervised by default (--yield-timeout, 10 s): the runs happen on
 * worker threads the main thread stops when a scenario thread does not yield in time, so the
 * command returns a promise. --yield-timeout 0 runs them in this thread, synchronously.
 */
import { InputError, ProgramError, engineOptions, programHash, replay, shrinkSchedule, type HuntCoverage, type HuntOptions, type ReplayResult } from '../../scheduler';
import { existsSync } from 'fs';
import { formatCoverage } from '../report/coverage';
import { renderHtml } from '../report/html';
import { findingJson } from '../report/json';
import { findingTimeline, traceRun, writeTrace } from '../report/trace';
import { scenarioProgram, type Params, type Perturbation, type ScenarioDef, type VariantDef } from '../scenario/define';
import { huntVariant, huntVariantAsync, partialRun, replayCommand, replaySupervised, variantHuntOptions, type HuntState, type RunJson, type VariantHuntOptions } from '../scenario/hunt';
import { claimsHold, describeClaim, formatClaims, judgeClaims, type ClaimJson } from '../scenario/claims';
import { claimHunter } from '../scenario/hunt-scenario';
import { allScenarios, findScenario } from '../scenario/registry';
import { judge } from '../scenario/verdict';
import { applyParams, parseCli, type CliOptions } from './options';
import { progressBar, wantProgressBar } from './progress';
import { ResultsWriter, checkWritable, docOf, readResults, writeAtomic, type ScenarioOutput } from './results-file';

export type { RunJson } from '../scenario/hunt';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: Io = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
};

const USAGE = `usage: irqsim <list|run|hunt|replay|shrink|merge|report> [scenario] [options]
  irqsim list [--json]
  irqsim hunt <scenario|all> [--variant v] [--seed n] [--iterations n] [--strategy random|pct|fair-pct|dfs|dpor|ipb|idb | --portfolio]
              [--depth d] [--pct-steps k] [--preemption-bound n] [--irq-bound n] [--delay-bound n]
              [--workers n] [--shard i/n] [--out results.json [--resume]] [--yield-timeout s] [--json] ...
  irqsim run <scenario> [--variant v] [--trace out.json] [--yield-timeout s] [--json]
  irqsim replay <scenario> <schedule> [--variant v] [--continue] [--trace out.json] [--yield-timeout s] [--json]
  --yield-timeout s: stop a scenario thread that runs s seconds without yielding and report it as
              a scenario_error (default 10; 0: off, everything in this thread; not with --trace)
  irqsim shrink <scenario> <schedule> [--variant v] [--json]
  irqsim merge <shard.json>... [--out merged.json] [--json]
  irqsim report <results.json> --html <out.html>`;

/**
 * The command; a promise only when the hunt runs on worker threads (--workers n > 1), so
 * every other command stays synchronous for callers and tests.
 */
export function main(argv: string[], io: Io = stdio): number | Promise<number> {
  let debug = argv.includes('--debug');
  const failed = (e: unknown): number => {
    if (e instanceof InputError) {
      io.err(`irqsim: ${e.message}`);
      if (debug && e.stack) io.err(e.stack);
      return 2;
    }
    if (e instanceof ProgramError) {
      io.err(`irqsim: scenario error: ${e.message}`);
      if (debug && e.stack) io.err(e.stack);
      return 2;
    }
    io.err(`irqsim: internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}${debug ? '' : ' (--debug prints the stack)'}`);
    if (debug && e instanceof Error && e.stack) io.err(e.stack);
    return 2;
  };
  try {
    const r = command(argv, io, (d) => (debug = d));
    return r instanceof Promise ? r.catch(failed) : r;
  } catch (e) {
    return failed(e);
  }
}

/** main() that always gives a promise. */
export async function mainAsync(argv: string[], io: Io = stdio): Promise<number> {
  return main(argv, io);
}

function command(argv: string[], io: Io, setDebug: (d: boolean) => void): number | Promise<number> {
  {
    const o = parseCli(argv);
    setDebug(o.debug);
    if (o.help) {
      io.out(USAGE);
      return 0;
    }
    if (o.html !== undefined && o.command !== 'report') throw new InputError('--html belongs to irqsim report <results.json> --html <out.html>');
    checkApplies(o);
    switch (o.command) {
      case 'list':
        return cmdList(o, io);
      case 'hunt':
        return cmdHunt(o, io, false);
      case 'run':
        return cmdHunt(o, io, true);
      case 'replay':
        return cmdReplay(o, io);
      case '':
        throw new InputError('no command given: expected list, run, hunt, replay, shrink, merge or report (irqsim --help shows the usage)');
      case 'report':
        return cmdReport(o, io);
      case 'shrink':
        return cmdShrink(o, io);
      case 'merge':
        return cmdMerge(o, io);
      default:
        throw new InputError(`unknown command "${o.command}": expected list, run, hunt, replay, shrink, merge or report`);
    }
  }
}

/** The options each command reads (besides --debug and --help); any other is refused, not silently ignored. */
const REPLAY_OPTIONS = ['variant', 'param', 'kernel', 'lockdep', 'json', 'mode', 'window', 'horizon', 'max-steps'];
const APPLIES: Record<string, string[]> = {
  list: ['json'],
  report: ['html'],
  merge: ['out', 'json'],
  replay: [...REPLAY_OPTIONS, 'continue', 'trace', 'yield-timeout'],
  shrink: REPLAY_OPTIONS,
};

function checkApplies(o: CliOptions): void {
  const ok = APPLIES[o.command];
  const bad = ok ? o.given.find((k) => k !== 'debug' && !ok.includes(k)) : o.given.includes('continue') && (o.command === 'hunt' || o.command === 'run') ? 'continue' : undefined;
  if (bad === undefined) return;
  const takes = ok ? (ok.length ? `it takes ${ok.map((k) => `--${k}`).join(', ')}` : 'it takes no options') : '--continue belongs to irqsim replay';
  throw new InputError(`--${bad} does not apply to irqsim ${o.command}: ${takes}`);
}

function cmdList(o: CliOptions, io: Io): number {
  if (o.positionals.length > 0) throw new InputError(`unexpected argument "${o.positionals[0]}": irqsim list takes none`);
  const list = allScenarios().map((s) => ({
    id: s.id,
    name: s.name,
    file: s.file,
    description: s.description,
    params: s.params,
    variants: s.variants.map((v) => ({ name: v.name, expect: v.expect })),
    perturbations: (s.perturbations ?? []).map((p) => ({ name: p.name, params: p.params, ...(p.scale !== undefined ? { scale: p.scale } : {}) })),
    claims: (s.claims ?? []).map((c) => ({ name: c.name, text: c.text, relation: describeClaim(c) })),
  }));
  if (o.json) io.out(JSON.stringify(list));
  else for (const s of list) io.out(`${s.id.padEnd(8)} ${s.name}  [${s.variants.map((v) => v.name).join(', ')}]  ${s.file}`);
  return 0;
}

function variantsOf(def: ScenarioDef, which: string): VariantDef[] {
  if (which === 'all') return def.variants;
  const v = def.variants.find((x) => x.name === which);
  if (!v) throw new InputError(`scenario ${def.id} has no variant "${which}": it has ${def.variants.map((x) => x.name).join(', ')}`);
  return [v];
}

/** Machine options the command line overrides. */
function machineOverrides(o: CliOptions): { lockdep?: boolean } {
  return o.lockdep === undefined ? {} : { lockdep: o.lockdep };
}

/** --perturb <name>: the scenario's declared parameter change and its budget scale. */
function perturbationOf(def: ScenarioDef, name: string | undefined): Perturbation | null {
  if (name === undefined) return null;
  const p = (def.perturbations ?? []).find((x) => x.name === name);
  if (!p) throw new InputError(`scenario ${def.id} has no perturbation "${name}": it has ${(def.perturbations ?? []).map((x) => x.name).join(', ') || '(none)'}`);
  return p;
}

/** What a hunt was asked to do: stored with its records so merge and --resume redo exactly it. */
interface HuntRequest {
  hunt: Partial<HuntOptions>;
  all: boolean;
  confirm: boolean;
  shrink: boolean;
  checkDeterminism: boolean;
  machine: { lockdep?: boolean };
}

function requestOf(o: CliOptions): HuntRequest {
  return { hunt: o.hunt, all: o.all, confirm: o.confirm, shrink: o.shrink, checkDeterminism: o.checkDeterminism, machine: machineOverrides(o) };
}

/** The request back from JSON (Infinity, which JSON writes as null, comes back). */
function requestFromJson(r: unknown, where: string): HuntRequest {
  const q = r as HuntRequest | undefined;
  if (!q || typeof q !== 'object' || typeof q.hunt !== 'object') throw new InputError(`${where} has no hunt request: it was not written by irqsim hunt --shard or --out`);
  const hunt = { ...q.hunt } as Record<string, unknown>;
  for (const k of ['window', 'horizon']) if (hunt[k] === null) hunt[k] = Infinity;
  return { ...q, hunt: hunt as Partial<HuntOptions>, machine: q.machine ?? {} };
}

/** The `options` object of the JSON output (CONTRACT.md), the same for every way of running a hunt. */
function optionsJson(o: CliOptions, def: ScenarioDef, params: Params, pert: Perturbation | null): Record<string, unknown> {
  return {
    seed: o.hunt.seed ?? 0,
    strategy: o.hunt.portfolio ? 'portfolio' : (o.hunt.strategy ?? 'random'),
    iterations: o.hunt.iterations ?? def.options?.iterations ?? 1000,
    ...o.hunt,
    params,
    ...(pert ? { perturbation: pert.name } : {}),
    ...(o.lockdep !== undefined ? { lockdep: o.lockdep ? 'on' : 'off' } : {}),
    ...(o.shard ? { shard: `${o.shard.index}/${o.shard.count}` } : {}),
  };
}

interface Task {
  out: ScenarioOutput;
  def: ScenarioDef;
  v: VariantDef;
  params: Params;
  vo: VariantHuntOptions;
  pert: Perturbation | null;
}

function cmdHunt(o: CliOptions, io: Io, single: boolean): number | Promise<number> {
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
  const defs = target === 'all' && !single ? allScenarios() : [findScenario(target)];
  if (target === 'all' && o.params.length) throw new InputError('--param needs a single scenario');
  if (target === 'all' && o.perturb !== undefined) throw new InputError('--perturb needs a single scenario');
  if (single && o.trace !== undefined) return cmdRunTrace(o, io, defs[0]);
  const previous = o.resume ? readResults(o.out as string, 'a results file written by irqsim hunt --out') : null;
  if (o.out !== undefined) checkWritable(o.out);
  const keep = o.out !== undefined || o.shard !== undefined;
  const request = requestOf(o);
  const outputs: ScenarioOutput[] = [];
  const tasks: Task[] = [];
  for (const def of defs) {
    const pert = perturbationOf(def, o.perturb);
    const params = applyParams(def, o.params, pert?.params);
    const program = scenarioProgram(def, def.variants[0].name, params, machineOverrides(o));
    const out: ScenarioOutput = {
      scenario: { id: def.id, name: def.name, file: def.file, hash: programHash(program, o.hunt) },
      options: optionsJson(o, def, params, pert),
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
        hunt: over,
        all: o.all,
        confirm: o.confirm,
        shrink: o.shrink ? undefined : false,
        checkDeterminism: o.checkDeterminism,
        single,
        machine: machineOverrides(o),
        workers: o.workers,
        yieldTimeout: o.yieldTimeout,
        ...(o.shard ? { shard: o.shard } : {}),
        ...(keep ? { keepState: true, request } : {}),
        ...(before?.state ? { resumeFrom: before.state } : {}),
      };
      tasks.push({ out, def, v, params, vo, pert });
    }
  }
  const bar = progressBar(wantProgressBar(o.json));
  let current: { task: Task; state: HuntState | null } | null = null;
  const writer = o.out === undefined ? null : new ResultsWriter(o.out, () => docOf(outputs.map((x) => (current && current.task.out === x && current.state ? { ...x, runs: [...x.runs, partialRun(current.task.def, current.task.v, current.task.params, current.state, current.task.vo.machine)] } : x))));
  const finish = (): number => {
    current = null;
    // irqsim run is one schedule per variant: it judges no claims.
    if (!single) {
      for (const [i, x] of outputs.entries()) {
        const def = defs[i];
        const mine = tasks.filter((t) => t.out === x);
        const hunter = claimHunter(def, { hunt: o.hunt, all: o.all, machine: machineOverrides(o) }, (variant) => mine.find((t) => t.v.name === variant)?.vo.hunt ?? o.hunt);
        x.claims = judgeClaims(def, { runs: x.runs, params: x.options.params as Params, hunt: hunter, ...(o.shard ? { notJudged: `not judged: shard ${o.shard.index}/${o.shard.count} of the hunt (irqsim merge judges the claims)` } : {}) });
      }
    }
    writer?.update(true);
    const ok = outputs.every((x) => x.runs.every((r) => r.verdict === 'as-expected') && claimsHold(x.claims));
    if (o.json) io.out(JSON.stringify(docOf(outputs)));
    else for (const [i, x] of outputs.entries()) printText(io, x.scenario, x.runs, defs[i].keyMetrics ?? [], x.claims);
    return exitCode(ok, outputs.flatMap((x) => x.runs.flatMap((r) => r.findings.map((f) => f.kind))));
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

/** irqsim run <scenario> --trace <out.json>: one variant's iteration 0, traced. */
function cmdRunTrace(o: CliOptions, io: Io, def: ScenarioDef): number {
  const vs = variantsOf(def, o.variant);
  if (vs.length !== 1) throw new InputError(`--trace writes one run: pick the variant with --variant (${def.variants.map((x) => x.name).join(', ')})`);
  const params = applyParams(def, o.params, perturbationOf(def, o.perturb)?.params);
  const t = traceRun(def, vs[0].name, params, { hunt: o.hunt, machine: machineOverrides(o) });
  writeTrace(o.trace as string, t.trace);
  io.err(`irqsim: wrote ${o.trace} (${t.trace.traceEvents.length} events, ${t.run.findings.length} finding(s))`);
  const unexpected = judge(vs[0].expect, t.run.findings.map((f) => f.kind), {}).unexpected;
  if (!o.json) for (const f of t.run.findings) io.out(`${f.text}\n`);
  else io.out(JSON.stringify({ scenario: { id: def.id, name: def.name, file: def.file }, variant: vs[0].name, trace: o.trace, findings: t.run.findings.map((f) => ({ kind: f.kind, fingerprint: f.fingerprint, headline: f.headline })) }));
  return exitCode(unexpected.length === 0, t.run.findings.map((f) => f.kind));
}

/**
 * irqsim merge <a.json> <b.json> ...: the shards of one hunt back into the report one process
 * gives. Every shard 1..n must be there exactly once, complete, of the same hunt; the records
 * are folded in unit order (nothing is run again except shrinking and --confirm, as one process
 * would).
 */
function cmdMerge(o: CliOptions, io: Io): number {
  if (o.positionals.length === 0) throw new InputError('merge needs the shard files (irqsim hunt ... --shard i/n --json > shard-i.json)');
  const files = o.positionals.map((f) => ({ file: f, outs: readResults(f, 'a shard output (irqsim hunt ... --shard i/n --json)') }));
  const ids: string[] = [];
  for (const f of files) for (const s of f.outs) if (!ids.includes(s.scenario.id)) ids.push(s.scenario.id);
  const outputs: ScenarioOutput[] = [];
  for (const id of ids) {
    const parts = files.flatMap((f) => f.outs.filter((s) => s.scenario.id === id).map((s) => ({ file: f.file, s })));
    const shards = parts.map(({ file, s }) => {
      const sh = typeof s.options.shard === 'string' ? /^(\d+)\/(\d+)$/.exec(s.options.shard) : null;
      if (!sh) throw new InputError(`${file}: ${id} is not a shard output (no options.shard)`);
      return { file, s, index: Number(sh[1]), count: Number(sh[2]) };
    });
    const n = shards[0].count;
    for (const x of shards) {
      if (x.count !== n) throw new InputError(`${x.file}: shard ${x.index}/${x.count} of ${id} does not go with ${shards[0].file} (${shards[0].index}/${n})`);
      if (x.s.scenario.hash !== shards[0].s.scenario.hash) throw new InputError(`${x.file}: ${id} has program hash ${x.s.scenario.hash}, ${shards[0].file} has ${shards[0].s.scenario.hash}: not the same hunt`);
      const { shard: _a, ...oa } = x.s.options;
      const { shard: _b, ...ob } = shards[0].s.options;
      if (JSON.stringify(oa) !== JSON.stringify(ob)) throw new InputError(`${x.file}: ${id} was hunted with other options than ${shards[0].file}`);
    }
    for (let i = 1; i <= n; i++) {
      const have = shards.filter((x) => x.index === i);
      if (have.length === 0) throw new InputError(`shard ${i}/${n} of ${id} is missing`);
      if (have.length > 1) throw new InputError(`shard ${i}/${n} of ${id} is given twice (${have.map((x) => x.file).join(', ')})`);
    }
    const first = shards[0].s;
    const def = findScenario(first.scenario.file && existsSync(first.scenario.file) ? first.scenario.file : id);
    const params = first.options.params as Params;
    const { shard: _s, ...options } = first.options;
    const out: ScenarioOutput = { scenario: first.scenario, options, runs: [] };
    for (const run0 of first.runs) {
      const v = variantsOf(def, run0.variant)[0];
      const states = shards.map((x) => {
        const r = x.s.runs.find((y) => y.variant === run0.variant);
        if (!r || !r.state) throw new InputError(`${x.file}: no records of ${id}/${run0.variant}`);
        if (!r.state.complete) throw new InputError(`${x.file}: shard ${x.index}/${n} of ${id}/${run0.variant} did not finish (killed?): finish it with --out <file> --resume, then merge`);
        return r.state;
      });
      const plan = states[0].plan;
      if (states.some((st) => JSON.stringify(st.plan) !== JSON.stringify(plan))) throw new InputError(`the shards of ${id}/${run0.variant} were planned differently: not the same hunt`);
      const req = requestFromJson(states[0].request, `${shards[0].file} (${id}/${run0.variant})`);
      const units = states.flatMap((st) => st.units).sort((a, b) => a[0] - b[0]);
      out.runs.push(
        huntVariant(def, v, params, {
          hunt: req.hunt,
          all: req.all,
          confirm: req.confirm,
          shrink: req.shrink ? undefined : false,
          checkDeterminism: req.checkDeterminism,
          machine: req.machine,
          resumeFrom: { plan, shard: null, units, complete: true },
          foldOnly: true,
        }),
      );
    }
    // The claims, judged over the merged runs as one process would have judged them.
    const req0 = requestFromJson(shards[0].s.runs[0]?.state?.request, `${shards[0].file} (${id})`);
    out.claims = judgeClaims(def, { runs: out.runs, params, hunt: claimHunter(def, { hunt: req0.hunt, all: req0.all, machine: req0.machine }) });
    outputs.push(out);
  }
  const ok = outputs.every((x) => x.runs.every((r) => r.verdict === 'as-expected') && claimsHold(x.claims));
  if (o.out !== undefined) writeAtomic(o.out, JSON.stringify(docOf(outputs)));
  if (o.json) io.out(JSON.stringify(docOf(outputs)));
  else for (const x of outputs) printText(io, x.scenario, x.runs, findScenario(x.scenario.file && existsSync(x.scenario.file) ? x.scenario.file : x.scenario.id).keyMetrics ?? [], x.claims);
  return exitCode(ok, outputs.flatMap((x) => x.runs.flatMap((r) => r.findings.map((f) => f.kind))));
}

/** irqsim shrink <scenario> <schedule>: the smallest schedule that still gives its first finding. */
function cmdShrink(o: CliOptions, io: Io): number {
  const { def, params, v, schedule } = scheduleArgs(o, 'shrink');
  const program = scenarioProgram(def, v.name, params, machineOverrides(o));
  const eopts = engineOptions({ ...variantHuntOptions(def, v, o.hunt), instrument: false });
  const r = replay(program, schedule, { ...eopts, instrument: false, mode: 'strict' });
  // Keep the fatal finding (a deadlock) when there is one: lockdep's earlier warning would shrink away the deadlock itself.
  const f = r.findings.find((x) => x.fatal) ?? r.findings[0];
  if (f === undefined) throw new InputError('the schedule gives no finding: there is nothing to keep while shrinking');
  const s = shrinkSchedule(program, schedule, f.fingerprint, eopts);
  const replayCmd = replayCommand(def, v.name, params, s.schedule, machineOverrides(o));
  if (o.json) io.out(JSON.stringify({ scenario: { id: def.id, name: def.name, file: def.file }, variant: v.name, fingerprint: f.fingerprint, schedule, shrunk: s.schedule, deviations: { before: s.before, after: s.after }, runs: s.runs, replay: replayCmd }));
  else {
    io.out(`${f.headline}`);
    io.out(`shrunk ${s.before} deviation(s) to ${s.after} in ${s.runs} run(s): ${s.schedule}`);
    io.out(`replay: ${replayCmd}`);
  }
  return 0;
}

function isHuntCoverage(c: unknown): c is HuntCoverage {
  return typeof c === 'object' && c !== null && 'groups' in c && 'interleavingClasses' in c;
}

function printText(io: Io, s: { id: string; name: string }, runs: RunJson[], keyMetrics: string[], claims: ClaimJson[] = []): void {
  io.out(`== ${s.id}: ${s.name}`);
  for (const r of runs) {
    const kinds = r.findings.map((f) => `${f.kind}${f.count > 1 ? ` x${f.count}` : ''}`).join(', ') || 'clean';
    io.out(`-- ${r.variant}: ${r.verdict} after ${r.schedulesRun} schedule(s): ${kinds}${r.why ? `  (${r.why})` : ''}`);
    if (r.search) {
      const d = r.dpor;
      const extra = d ? `; dpor: ${d.traces} trace(s), ${d.sleepBlocked} sleep-set blocked, defaulted: ${d.defaulted.join(', ') || 'none'}; bounds: ${d.bounds}; off: ${(d.off ?? []).join('; ')}` : '';
      io.out(`   search: ${r.search}${extra}`);
    }
    if (isHuntCoverage(r.coverage)) for (const line of formatCoverage(r.coverage)) io.out(`   ${line}`);
    for (const f of r.findings) {
      io.out('');
      io.out(f.text);
      if (f.confirmed) io.out(`\nlockdep prediction ${f.confirmed}`);
      if (f.replay) io.out(`\nreplay: ${f.replay}`);
    }
    io.out('');
  }
  const w = Math.max(7, ...runs.map((r) => r.variant.length));
  io.out(`${'variant'.padEnd(w)}  verdict       schedules  findings`);
  for (const r of runs) io.out(`${r.variant.padEnd(w)}  ${r.verdict.padEnd(12)}  ${String(r.schedulesRun).padStart(9)}  ${r.findings.map((f) => f.kind).join(', ') || '-'}`);
  if (keyMetrics.length > 0) {
    io.out('');
    io.out(metricsTable(runs, keyMetrics));
  }
  if (claims.length > 0) {
    io.out('');
    for (const line of formatClaims(claims)) io.out(line);
  }
}

/** The claim's metrics, one column per variant (summed over each hunt's schedules). */
export function metricsTable(runs: RunJson[], names: string[]): string {
  const rows = [['metric', ...runs.map((r) => r.variant)], ...names.map((n) => [n, ...runs.map((r) => formatMetric(r.metrics[n]))])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

export function formatMetric(v: number | undefined): string {
  if (v === undefined) return '-';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/** `<scenario> <schedule>` of replay and shrink, with the variant (default: the first) and parameters. */
function scheduleArgs(o: CliOptions, cmd: string): { def: ScenarioDef; params: Params; v: VariantDef; schedule: string } {
  const [target, schedule, extra] = o.positionals;
  if (!target || !schedule) throw new InputError(`${cmd} needs a scenario and a schedule string`);
  if (extra) throw new InputError(`unexpected argument "${extra}"`);
  const def = findScenario(target);
  const params = applyParams(def, o.params);
  const v = variantsOf(def, o.variant === 'all' ? def.variants[0].name : o.variant)[0];
  return { def, params, v, schedule };
}

function cmdReplay(o: CliOptions, io: Io): number | Promise<number> {
  const { def, params, v, schedule } = scheduleArgs(o, 'replay');
  const mode = o.continueReplay ? 'continue' : 'strict';
  // The variant's engine options (a declared timed window) shape the path, as in its hunt.
  const eopts = engineOptions(variantHuntOptions(def, v, o.hunt));
  if (o.yieldTimeout > 0 && o.trace === undefined) {
    // Under the same budget as the hunt that found the schedule: a stuck run is stopped and
    // reported as the same scenario_error finding.
    return replaySupervised(def, v, params, schedule, { ...variantHuntOptions(def, v, o.hunt), mode }, machineOverrides(o), o.yieldTimeout).then((r) => printReplay(o, io, def, v, params, schedule, r));
  }
  let r: ReplayResult;
  if (o.trace !== undefined) {
    // The traced replay is the replay: same path, same findings (the tracer only observes).
    const t = traceRun(def, v.name, params, { schedule, hunt: o.hunt, machine: machineOverrides(o), continueReplay: o.continueReplay });
    writeTrace(o.trace, t.trace);
    io.err(`irqsim: wrote ${o.trace} (${t.trace.traceEvents.length} events)`);
    r = t.replayed as ReplayResult;
  } else r = replay(scenarioProgram(def, v.name, params, machineOverrides(o)), schedule, { ...eopts, mode });
  return printReplay(o, io, def, v, params, schedule, r);
}

function printReplay(o: CliOptions, io: Io, def: ScenarioDef, v: VariantDef, params: Params, schedule: string, r: Pick<ReplayResult, 'findings' | 'ran' | 'divergedAt' | 'events'>): number {
  const findings = r.findings.map((f) => findingJson({ ...f, iteration: 0, schedule: r.ran, runs: 1, totalCount: f.count }, replayCommand(def, v.name, params, r.ran, machineOverrides(o))));
  const unexpected = judge(v.expect, r.findings.map((f) => f.kind), {}).unexpected;
  if (o.json) {
    io.out(JSON.stringify({ scenario: { id: def.id, name: def.name, file: def.file }, variant: v.name, schedule: r.ran, divergedAt: r.divergedAt, events: r.events, findings, ...(o.trace ? { trace: o.trace } : {}) }));
  } else {
    io.out(`== replay ${def.id}/${v.name} ${schedule}${r.divergedAt >= 0 ? ` (left the schedule at step ${r.divergedAt}; continued with seeded choices)` : ''}`);
    for (const e of r.events ?? []) io.out(`  ${e}`);
    for (const f of findings) io.out(`\n${f.text}`);
    if (findings.length === 0) io.out('\nno findings');
  }
  return exitCode(unexpected.length === 0, r.findings.map((f) => f.kind));
}

/** CONTRACT.md exit codes: 3 when irqsim found a bug in itself, else 0 as expected, else 1. */
function exitCode(ok: boolean, kinds: readonly string[]): number {
  if (kinds.includes('internal_error')) return 3;
  return ok ? 0 : 1;
}

/**
 * irqsim report <results.json> --html <out.html>: the self-contained HTML page of a hunt's JSON.
 * A finding without a timeline gets one from a traced replay of its (shrunk) schedule, when its
 * scenario is still here and unchanged.
 */
function cmdReport(o: CliOptions, io: Io): number {
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
          const hunt = Object.fromEntries(['window', 'horizon', 'stepBudget', 'maxFaults'].filter((k) => k in opts).map((k) => [k, opts[k] === null ? Infinity : opts[k]])) as Partial<HuntOptions>;
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

/** For scenario files: `npx ts-node scenarios/x.ts [options]` behaves as `irqsim hunt <file>`. */
export function runScenarioFile(file: string, argv: string[]): number {
  const r = main(['hunt', file, ...argv]);
  if (typeof r === 'number') return r;
  void r.then((code) => (process.exitCode = code));
  return 0; // replaced by the hunt's code when it ends
}
