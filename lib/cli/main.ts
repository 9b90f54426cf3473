/**
 * The irqsim command: list, run, hunt, replay (CONTRACT.md). Output is kernel-style text, or
 * with --json one JSON object on stdout and nothing else. Exit codes: 0 as expected, 1 a run not
 * as expected, 2 bad input (one line on stderr, no stack trace unless --debug).
 */
import {
  InputError,
  ProgramError,
  hunt,
  programHash,
  replay,
  runIteration,
  type FoundFinding,
  type HuntOptions,
  type HuntResult,
} from '../../scheduler';
import { findingJson, type FindingJson } from '../report/json';
import { scenarioProgram, type Params, type ScenarioDef, type VariantDef } from '../scenario/define';
import { allScenarios, findScenario } from '../scenario/registry';
import { decided, hasExpectation, judge } from '../scenario/verdict';
import { applyParams, parseCli, type CliOptions } from './options';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: Io = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
};

export interface RunJson {
  variant: string;
  expect: VariantDef['expect'];
  verdict: 'as-expected' | 'unexpected';
  schedulesRun: number;
  findings: FindingJson[];
  metrics: Record<string, number>;
  coverage: Record<string, number>;
  why?: string;
}

const USAGE = `usage: irqsim <list|run|hunt|replay> [scenario] [options]
  irqsim list [--json]
  irqsim hunt <scenario|all> [--variant v] [--seed n] [--iterations n] [--strategy random|pct|fair-pct|dfs] [--json] ...
  irqsim run <scenario> [--variant v] [--json]
  irqsim replay <scenario> <schedule> [--variant v] [--continue] [--json]`;

export function main(argv: string[], io: Io = stdio): number {
  let debug = argv.includes('--debug');
  try {
    const o = parseCli(argv);
    debug = o.debug;
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
        throw new InputError(`no command given\n${USAGE}`);
      case 'shrink':
      case 'merge':
      case 'report':
        throw new InputError(`irqsim ${o.command} is not available yet (it arrives with the parallel-hunts and reports issue)`);
      default:
        throw new InputError(`unknown command "${o.command}": expected list, run, hunt or replay`);
    }
  } catch (e) {
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
  }
}

function cmdList(o: CliOptions, io: Io): number {
  const list = allScenarios().map((s) => ({
    id: s.id,
    name: s.name,
    file: s.file,
    description: s.description,
    params: s.params,
    variants: s.variants.map((v) => ({ name: v.name, expect: v.expect })),
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

function replayCommand(def: ScenarioDef, variant: string, params: Params, schedule: string, o: CliOptions): string {
  const extra = Object.keys(params)
    .filter((k) => params[k] !== def.params[k])
    .map((k) => ` --param ${k}=${params[k]}`)
    .join('');
  const ld = o.lockdep === undefined ? '' : ` --lockdep ${o.lockdep ? 'on' : 'off'}`;
  return `npx irqsim replay ${def.id} ${schedule} --variant ${variant}${extra}${ld}`;
}

/** Machine options the command line overrides. */
function machineOverrides(o: CliOptions): { lockdep?: boolean } {
  return o.lockdep === undefined ? {} : { lockdep: o.lockdep };
}

/** lockdep subkinds that predict a deadlock a schedule can reach. */
const CONFIRMABLE = new Set(['circular', 'recursive', 'inconsistent', 'irq_safe_unsafe', 'irq_inversion']);

const classesOf = (f: { data?: Record<string, unknown> }): string[] => (f.data?.classes as string[] | undefined) ?? [];

/** A deadlock realises a lockdep prediction when it waits on the predicted classes. */
function realises(prediction: string[], deadlock: string[]): boolean {
  const shared = deadlock.filter((c) => prediction.includes(c.replace(/\/\d+$/, '')) || prediction.includes(c)).length;
  return deadlock.length > 0 && shared >= Math.min(2, prediction.length);
}

/**
 * --confirm: for each lockdep prediction, the schedule that really deadlocks on those classes:
 * one the hunt already found, or a search of up to the hunt's budget from a derived seed.
 */
export function confirmPredictions(program: ReturnType<typeof scenarioProgram>, opts: HuntOptions, h: HuntResult): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of h.findings) {
    if (f.kind !== 'lockdep' || !CONFIRMABLE.has(f.subkind ?? '')) continue;
    const want = classesOf(f);
    const seen = h.findings.find((d) => d.kind === 'deadlock' && realises(want, classesOf(d)));
    if (seen !== undefined) {
      out.set(f.fingerprint, `confirmed by schedule ${seen.shrunk ?? seen.schedule}`);
      continue;
    }
    const budget = opts.iterations ?? 1000;
    const c = hunt(program, {
      ...opts,
      seed: ((opts.seed ?? 0) + 0x5eed) >>> 0,
      iterations: budget,
      stopWhen: (found) => found.some((d) => d.kind === 'deadlock' && realises(want, classesOf(d))),
      shrink: false,
    });
    const d = c.findings.find((x) => x.kind === 'deadlock' && realises(want, classesOf(x)));
    out.set(f.fingerprint, d ? `confirmed by schedule ${d.schedule}` : `not reached in ${c.schedulesRun} schedules`);
  }
  return out;
}

function metricsOf(h: HuntResult): Record<string, number> {
  return {
    schedules: h.schedulesRun,
    steps: h.totals.steps,
    choices: h.totals.choices,
    preemptions: h.totals.preemptions,
    interrupts: h.totals.interrupts,
    maxVirtualTimeNs: h.totals.endTime,
    // The model's own counters (summed over the schedules) and high-water marks (largest).
    ...h.totals.counters,
    ...h.totals.peaks,
  };
}

function huntVariant(def: ScenarioDef, v: VariantDef, params: Params, o: CliOptions, single: boolean): RunJson {
  const program = scenarioProgram(def, v.name, params, machineOverrides(o));
  const opts: HuntOptions = { iterations: 1000, ...def.options, ...v.options, ...o.hunt };
  const kindsOf = (fs: readonly FoundFinding[]) => fs.map((f) => f.kind);
  let h: HuntResult;
  if (single) {
    // `run`: one schedule (iteration 0), fully instrumented.
    const r = runIteration(program, { ...opts, iteration: 0, instrument: true });
    h = {
      program: program.name,
      hash: programHash(program, opts),
      strategy: String(opts.strategy ?? 'random'),
      seed: opts.seed ?? 0,
      iterations: 1,
      schedulesRun: 1,
      firstIteration: r.findings.length ? 0 : -1,
      findings: r.findings.map((f) => ({ ...f, iteration: 0, schedule: '', runs: 1, totalCount: f.count })),
      totals: r.metrics,
      expectedSteps: r.metrics.steps,
      exhausted: false,
    };
  } else {
    h = hunt(program, {
      ...opts,
      stopAtFirst: !o.all && !hasExpectation(v.expect),
      stopWhen: o.all || !hasExpectation(v.expect) ? undefined : (found) => decided(v.expect, kindsOf(found)),
      shrink: o.shrink,
      checkDeterminism: o.checkDeterminism,
    });
  }
  const confirmed = (o.confirm || v.confirm === true) && !single ? confirmPredictions(program, opts, h) : new Map<string, string>();
  const metrics = metricsOf(h);
  const kinds = kindsOf(h.findings);
  const j = judge(v.expect, kinds, metrics);
  // A single run cannot be expected to reach every expected kind: only unexpected ones count.
  const verdict = single ? (j.unexpected.length === 0 && j.missingMetrics.length === 0 ? 'as-expected' : 'unexpected') : j.verdict;
  const why = [
    j.missing.length && !single ? `expected ${j.missing.join(', ')} not seen in ${h.schedulesRun} schedules` : '',
    j.unexpected.length ? `unexpected ${j.unexpected.join(', ')}` : '',
    j.missingMetrics.length ? `metrics missing: ${j.missingMetrics.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
  return {
    variant: v.name,
    expect: v.expect,
    verdict,
    schedulesRun: h.schedulesRun,
    findings: h.findings.map((f) => {
      const j = findingJson(f, f.schedule ? replayCommand(def, v.name, params, f.shrunk ?? f.schedule, o) : '');
      const c = confirmed.get(f.fingerprint);
      return c === undefined ? j : { ...j, confirmed: c };
    }),
    metrics,
    coverage: { schedules: h.schedulesRun, expectedSteps: h.expectedSteps },
    ...(why ? { why } : {}),
  };
}

function cmdHunt(o: CliOptions, io: Io, single: boolean): number {
  const target = o.positionals[0];
  if (!target) throw new InputError(`${single ? 'run' : 'hunt'} needs a scenario (a file or an id; "all" for every scenario)`);
  if (o.positionals.length > 1) throw new InputError(`unexpected argument "${o.positionals[1]}"`);
  const defs = target === 'all' && !single ? allScenarios() : [findScenario(target)];
  if (target === 'all' && o.params.length) throw new InputError('--param needs a single scenario');
  const outputs = defs.map((def) => {
    const params = applyParams(def, o.params);
    const program = scenarioProgram(def, def.variants[0].name, params, machineOverrides(o));
    const runs = variantsOf(def, o.variant).map((v) => huntVariant(def, v, params, o, single));
    return {
      scenario: { id: def.id, name: def.name, file: def.file, hash: programHash(program, o.hunt) },
      options: { seed: o.hunt.seed ?? 0, strategy: o.hunt.strategy ?? 'random', iterations: o.hunt.iterations ?? def.options?.iterations ?? 1000, ...o.hunt, params },
      runs,
    };
  });
  const ok = outputs.every((x) => x.runs.every((r) => r.verdict === 'as-expected'));
  if (o.json) io.out(JSON.stringify(outputs.length === 1 ? outputs[0] : { scenarios: outputs }));
  else for (const x of outputs) printText(io, x.scenario, x.runs);
  return ok ? 0 : 1;
}

function printText(io: Io, s: { id: string; name: string }, runs: RunJson[]): void {
  io.out(`== ${s.id}: ${s.name}`);
  for (const r of runs) {
    const kinds = r.findings.map((f) => `${f.kind}${f.count > 1 ? ` x${f.count}` : ''}`).join(', ') || 'clean';
    io.out(`-- ${r.variant}: ${r.verdict} after ${r.schedulesRun} schedule(s): ${kinds}${r.why ? `  (${r.why})` : ''}`);
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
}

function cmdReplay(o: CliOptions, io: Io): number {
  const [target, schedule, extra] = o.positionals;
  if (!target || !schedule) throw new InputError('replay needs a scenario and a schedule string');
  if (extra) throw new InputError(`unexpected argument "${extra}"`);
  const def = findScenario(target);
  const params = applyParams(def, o.params);
  const v = variantsOf(def, o.variant === 'all' ? def.variants[0].name : o.variant)[0];
  const program = scenarioProgram(def, v.name, params, machineOverrides(o));
  const r = replay(program, schedule, { ...o.hunt, mode: o.continueReplay ? 'continue' : 'strict' });
  const findings = r.findings.map((f) => findingJson({ ...f, iteration: 0, schedule: r.ran, runs: 1, totalCount: f.count }, replayCommand(def, v.name, params, r.ran, o)));
  const unexpected = judge(v.expect, r.findings.map((f) => f.kind), {}).unexpected;
  if (o.json) {
    io.out(JSON.stringify({ scenario: { id: def.id, name: def.name, file: def.file }, variant: v.name, schedule: r.ran, divergedAt: r.divergedAt, events: r.events, findings }));
  } else {
    io.out(`== replay ${def.id}/${v.name} ${schedule}${r.divergedAt >= 0 ? ` (left the schedule at step ${r.divergedAt}; continued with seeded choices)` : ''}`);
    for (const e of r.events ?? []) io.out(`  ${e}`);
    for (const f of findings) io.out(`\n${f.text}`);
    if (findings.length === 0) io.out('\nno findings');
  }
  return unexpected.length === 0 ? 0 : 1;
}

/** For scenario files: `npx ts-node scenarios/x.ts [options]` behaves as `irqsim hunt <file>`. */
export function runScenarioFile(file: string, argv: string[]): number {
  return main(['hunt', file, ...argv]);
}
