/**
 * The irqsim command: list, run, hunt, replay (CONTRACT.md). Output is kernel-style text, or
 * with --json one JSON object on stdout and nothing else. Exit codes: 0 as expected, 1 a run not
 * as expected, 2 bad input (one line on stderr, no stack trace unless --debug).
 */
import { InputError, ProgramError, programHash, replay } from '../../scheduler';
import { readFileSync, renameSync, writeFileSync } from 'fs';
import { renderHtml } from '../report/html';
import { findingJson } from '../report/json';
import { scenarioProgram, type Perturbation, type ScenarioDef, type VariantDef } from '../scenario/define';
import { huntVariant, replayCommand, variantHuntOptions, type RunJson } from '../scenario/hunt';
import { allScenarios, findScenario } from '../scenario/registry';
import { judge } from '../scenario/verdict';
import { applyParams, parseCli, type CliOptions } from './options';

export type { RunJson } from '../scenario/hunt';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: Io = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
};

const USAGE = `usage: irqsim <list|run|hunt|replay|report> [scenario] [options]
  irqsim list [--json]
  irqsim hunt <scenario|all> [--variant v] [--seed n] [--iterations n] [--strategy random|pct|fair-pct|dfs] [--json] ...
  irqsim run <scenario> [--variant v] [--json]
  irqsim replay <scenario> <schedule> [--variant v] [--continue] [--json]
  irqsim report <results.json> --html <out.html>`;

export function main(argv: string[], io: Io = stdio): number {
  let debug = argv.includes('--debug');
  try {
    const o = parseCli(argv);
    debug = o.debug;
    if (o.html !== undefined && o.command !== 'report') throw new InputError('--html belongs to irqsim report <results.json> --html <out.html>');
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
      case 'report':
        return cmdReport(o, io);
      case 'shrink':
      case 'merge':
        throw new InputError(`irqsim ${o.command} is not available yet (it arrives with the parallel-hunts and reports issue)`);
      default:
        throw new InputError(`unknown command "${o.command}": expected list, run, hunt, replay or report`);
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

function cmdHunt(o: CliOptions, io: Io, single: boolean): number {
  const target = o.positionals[0];
  if (!target) throw new InputError(`${single ? 'run' : 'hunt'} needs a scenario (a file or an id; "all" for every scenario)`);
  if (o.positionals.length > 1) throw new InputError(`unexpected argument "${o.positionals[1]}"`);
  const defs = target === 'all' && !single ? allScenarios() : [findScenario(target)];
  if (target === 'all' && o.params.length) throw new InputError('--param needs a single scenario');
  if (target === 'all' && o.perturb !== undefined) throw new InputError('--perturb needs a single scenario');
  const outputs = defs.map((def) => {
    const pert = perturbationOf(def, o.perturb);
    const params = applyParams(def, o.params, pert?.params);
    const program = scenarioProgram(def, def.variants[0].name, params, machineOverrides(o));
    const runs = variantsOf(def, o.variant).map((v) => {
      const over = { ...o.hunt };
      if (pert && over.iterations === undefined) over.iterations = Math.max(1, Math.round((variantHuntOptions(def, v).iterations ?? 1000) * (pert.scale ?? 1)));
      return huntVariant(def, v, params, { hunt: over, all: o.all, confirm: o.confirm, shrink: o.shrink ? undefined : false, checkDeterminism: o.checkDeterminism, single, machine: machineOverrides(o) });
    });
    return {
      scenario: { id: def.id, name: def.name, file: def.file, hash: programHash(program, o.hunt) },
      options: { seed: o.hunt.seed ?? 0, strategy: o.hunt.strategy ?? 'random', iterations: o.hunt.iterations ?? def.options?.iterations ?? 1000, ...o.hunt, params, ...(pert ? { perturbation: pert.name } : {}) },
      runs,
    };
  });
  const ok = outputs.every((x) => x.runs.every((r) => r.verdict === 'as-expected'));
  if (o.json) io.out(JSON.stringify(outputs.length === 1 ? outputs[0] : { scenarios: outputs }));
  else for (const [i, x] of outputs.entries()) printText(io, x.scenario, x.runs, defs[i].keyMetrics ?? []);
  return ok ? 0 : 1;
}

function printText(io: Io, s: { id: string; name: string }, runs: RunJson[], keyMetrics: string[]): void {
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
  if (keyMetrics.length > 0) {
    io.out('');
    io.out(metricsTable(runs, keyMetrics));
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

function cmdReplay(o: CliOptions, io: Io): number {
  const [target, schedule, extra] = o.positionals;
  if (!target || !schedule) throw new InputError('replay needs a scenario and a schedule string');
  if (extra) throw new InputError(`unexpected argument "${extra}"`);
  const def = findScenario(target);
  const params = applyParams(def, o.params);
  const v = variantsOf(def, o.variant === 'all' ? def.variants[0].name : o.variant)[0];
  const program = scenarioProgram(def, v.name, params, machineOverrides(o));
  const r = replay(program, schedule, { ...o.hunt, mode: o.continueReplay ? 'continue' : 'strict' });
  const findings = r.findings.map((f) => findingJson({ ...f, iteration: 0, schedule: r.ran, runs: 1, totalCount: f.count }, replayCommand(def, v.name, params, r.ran, machineOverrides(o))));
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

/** irqsim report <results.json> --html <out.html>: the self-contained HTML page of a hunt's JSON. */
function cmdReport(o: CliOptions, io: Io): number {
  const [file, extra] = o.positionals;
  if (!file) throw new InputError('report needs a results file (the output of irqsim hunt --json)');
  if (extra) throw new InputError(`unexpected argument "${extra}"`);
  if (o.html === undefined) throw new InputError('report needs --html <out.html>');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InputError(`${file} is not JSON (expected the output of irqsim hunt --json)`);
  }
  const keyMetrics = Object.fromEntries(allScenarios().map((d) => [d.id, d.keyMetrics ?? []]));
  let html: string;
  try {
    html = renderHtml(json as Parameters<typeof renderHtml>[0], { keyMetrics });
  } catch (e) {
    throw new InputError(`${file}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  // Written whole, then renamed: a reader never sees half a page.
  const tmp = `${o.html}.tmp-${process.pid}`;
  writeFileSync(tmp, html);
  renameSync(tmp, o.html);
  io.err(`irqsim: wrote ${o.html}`);
  return 0;
}

/** For scenario files: `npx ts-node scenarios/x.ts [options]` behaves as `irqsim hunt <file>`. */
export function runScenarioFile(file: string, argv: string[]): number {
  return main(['hunt', file, ...argv]);
}
