/**
 * Hunting one variant of a scenario: the engine hunt, --confirm, the verdict against the
 * variant's expectation, findings as docs/contract.md's JSON with their replay commands. The CLI,
 * the demo and the mocha `hunt()` helper all go through here, so they agree on every verdict.
 */
import {
  decodeSchedule,
  hunt,
  programHash,
  runIteration,
  type FoundFinding,
  type HuntOptions,
  type HuntPlan,
  type HuntResult,
  type IterationRecord,
  type Shard,
  HuntFold,
  shardUnits,
} from '../../scheduler';
import { huntParallel, runJobSupervised } from '../../scheduler/pool';
import { engineOptions, type RunResult } from '../../scheduler';
import { StrategyPicker } from '../../scheduler/portfolio';
import { stuckSchedule, yieldTimeoutFinding } from '../../scheduler/watchdog';
import { scenarioSource } from './source';
import type { MachineOptions } from '../kernel/machine';
import { findingJson, type HuntRequest, type HuntState, type RunJson } from '../report/json';
import { runOptionsJson } from '../report/run-options';
import { scenarioProgram, type Params, type ScenarioDef, type VariantDef } from './define';
import { decided, hasExpectation, judge } from './verdict';

export type { HuntRequest, HuntState, RunJson } from '../report/json';

/**
 * The scenario layer's options: what the CLI, the demo and the mocha helper ask of a hunt of one
 * variant. Its serialisable part (HuntRequest) is what a results file stores; prepare() turns it
 * into the engine's HuntOptions.
 */
export interface VariantHuntOptions extends HuntRequest {
  /** `run`: one fully instrumented schedule (iteration 0) instead of a hunt. */
  single?: boolean;
  /** Worker threads (huntVariantAsync; 1 or absent: this thread). */
  workers?: number;
  /**
   * Seconds a scenario thread may run without yielding (huntVariantAsync; 0 or absent: no
   * limit, everything in this thread). Above 0 every run happens on worker threads that the
   * main thread supervises and stops (scheduler/watchdog.ts): the CLI's default.
   */
  yieldTimeout?: number;
  /** Run one shard's units. */
  shard?: Shard;
  /** Continue from (--resume) or merge these records; `foldOnly`: run nothing (merge). */
  resumeFrom?: HuntState;
  foldOnly?: boolean;
  /** Keep the records in the result's `state` (--shard, --out). */
  keepState?: boolean;
  /** Called whenever a unit's records arrive, with the state so far (--out writes it). */
  onState?: (state: HuntState) => void;
  /** Stored in the state as `request` (--shard, --out). */
  request?: HuntRequest;
}

/** The hunt options a variant runs with: built-in default, scenario, variant, then the caller's. */
export function variantHuntOptions(def: ScenarioDef, v: VariantDef, over: Partial<HuntOptions> = {}): HuntOptions {
  return { iterations: 1000, ...def.options, ...v.options, ...over };
}

export function replayCommand(def: ScenarioDef, variant: string, params: Params, schedule: string, machine: Partial<MachineOptions> = {}): string {
  const extra = Object.keys(params)
    .filter((k) => params[k] !== def.params[k])
    .map((k) => ` --param ${k}=${params[k]}`)
    .join('');
  const ld = machine.lockdep === undefined ? '' : ` --lockdep ${machine.lockdep ? 'on' : 'off'}`;
  return `npx irqsim replay ${def.id} ${schedule} --variant ${variant}${extra}${ld}`;
}

/** lockdep subkinds that predict a deadlock a schedule can reach. */
const CONFIRMABLE = new Set(['circular', 'recursive', 'inconsistent', 'irq_safe_unsafe', 'irq_inversion']);

const classesOf = (f: { data?: Record<string, unknown> }): string[] => (f.data?.classes as string[] | undefined) ?? [];

/**
 * A hang realises a lockdep prediction when it involves the predicted classes: a deadlock cycle
 * waiting on them, or a hung_task / no_progress whose tasks hold or wait on them (the kernel
 * itself would show the deadlock lockdep predicted only as a hung task).
 */
const HANG_KINDS = new Set(['deadlock', 'hung_task', 'no_progress']);
const isHang = (f: { kind: string }): boolean => HANG_KINDS.has(f.kind);

function realises(prediction: string[], deadlock: string[]): boolean {
  const shared = deadlock.filter((c) => prediction.includes(c.replace(/\/\d+$/, '')) || prediction.includes(c)).length;
  return deadlock.length > 0 && shared >= Math.min(2, prediction.length);
}

/**
 * --confirm: for each lockdep prediction, the schedule that really hangs on those classes:
 * one the hunt already found, or a search of up to the hunt's budget from a derived seed.
 */
export function confirmPredictions(program: ReturnType<typeof scenarioProgram>, opts: HuntOptions, h: HuntResult): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of h.findings) {
    if (f.kind !== 'lockdep' || !CONFIRMABLE.has(f.subkind ?? '')) continue;
    const want = classesOf(f);
    const seen = h.findings.find((d) => isHang(d) && realises(want, classesOf(d)));
    if (seen !== undefined) {
      out.set(f.fingerprint, `confirmed by schedule ${seen.shrunk ?? seen.schedule}`);
      continue;
    }
    const budget = opts.iterations ?? 1000;
    const c = hunt(program, {
      ...opts,
      seed: ((opts.seed ?? 0) + 0x5eed) >>> 0,
      iterations: budget,
      stopWhen: (found) => found.some((d) => isHang(d) && realises(want, classesOf(d))),
      shrink: false,
    });
    const d = c.findings.find((x) => isHang(x) && realises(want, classesOf(x)));
    out.set(f.fingerprint, d ? `confirmed by schedule ${d.schedule}` : `not reached in ${c.schedulesRun} schedules`);
  }
  return out;
}

/** The hunt's metrics: engine totals, the model's counters (summed) and peaks (largest), derived. */
function metricsOf(def: ScenarioDef, h: HuntResult): Record<string, number> {
  const m: Record<string, number> = {
    schedules: h.schedulesRun,
    steps: h.totals.steps,
    choices: h.totals.choices,
    preemptions: h.totals.preemptions,
    interrupts: h.totals.interrupts,
    maxVirtualTimeNs: h.totals.endTime,
    ...h.totals.counters,
    ...h.totals.peaks,
  };
  if (def.derive) {
    for (const [k, v] of Object.entries(def.derive(m, h.schedulesRun))) if (Number.isFinite(v)) m[k] = v;
  }
  return m;
}

interface Prepared {
  program: ReturnType<typeof scenarioProgram>;
  opts: HuntOptions;
  state: HuntState | null;
  units: Map<number, IterationRecord[]>;
}

/** The program and the engine hunt options of one variant (stop rules, resume, records). */
function prepare(def: ScenarioDef, v: VariantDef, params: Params, o: VariantHuntOptions): Prepared {
  const machine = o.machine ?? {};
  const program = scenarioProgram(def, v.name, params, machine);
  const base = variantHuntOptions(def, v, o.hunt);
  const all = o.all === true;
  const kindsOf = (fs: readonly FoundFinding[]) => fs.map((f) => f.kind);
  const units = new Map<number, IterationRecord[]>(o.resumeFrom?.units ?? []);
  const keep = o.keepState === true || o.onState !== undefined;
  const state: HuntState | null = keep
    ? { plan: o.resumeFrom?.plan as HuntPlan, shard: o.shard ?? null, units: [...units.entries()].sort((x, y) => x[0] - y[0]), complete: false, ...(o.request !== undefined ? { request: o.request } : {}) }
    : null;
  const opts: HuntOptions = {
    ...base,
    stopAtFirst: !all && !hasExpectation(v.expect),
    stopWhen: all || !hasExpectation(v.expect) ? undefined : (found) => decided(v.expect, kindsOf(found)),
    // The caller's choice, else the variant's declared one (shrinking long random walks is costly).
    shrink: o.shrink ?? base.shrink ?? true,
    checkDeterminism: o.checkDeterminism ?? false,
    ...(o.shard ? { shard: o.shard } : {}),
    ...(o.resumeFrom ? { plan: o.resumeFrom.plan, done: units } : {}),
    ...(o.foldOnly ? { foldOnly: true } : {}),
    // A hunt that keeps records may be resumed on workers later: split DFS as workers do.
    ...(keep ? { splitDfs: true } : {}),
  };
  if (state !== null) {
    opts.onUnit = (u, recs, _stopped, plan) => {
      state.plan = plan;
      units.set(u, recs);
      state.units = [...units.entries()].sort((x, y) => x[0] - y[0]);
      o.onState?.(state);
    };
  }
  return { program, opts, state, units };
}

/** Hunt (or with `single`, run once) one variant in this thread and judge it. */
export function huntVariant(def: ScenarioDef, v: VariantDef, params: Params, o: VariantHuntOptions = {}): RunJson {
  if (o.single === true) return judgeRun(def, v, params, o, singleRun(def, v, params, o), null);
  const p = prepare(def, v, params, o);
  return judgeRun(def, v, params, o, hunt(p.program, p.opts), p);
}

/** Hunt one variant on `o.workers` worker threads (the same result as huntVariant). */
export async function huntVariantAsync(def: ScenarioDef, v: VariantDef, params: Params, o: VariantHuntOptions = {}): Promise<RunJson> {
  const seconds = o.yieldTimeout ?? 0;
  if (seconds > 0 && o.single === true) return judgeRun(def, v, params, o, await singleRunSupervised(def, v, params, o, seconds), null);
  if (seconds <= 0 && (o.single === true || (o.workers ?? 1) <= 1)) return huntVariant(def, v, params, o);
  const p = prepare(def, v, params, o);
  const h = await huntParallel(p.program, scenarioSource(def, v.name, params, o.machine ?? {}), { ...p.opts, workers: o.workers ?? 1, yieldTimeout: seconds });
  return judgeRun(def, v, params, o, h, p);
}

/**
 * Replay `schedule` on a supervised worker (irqsim replay): the replay's result, or, when a
 * thread does not yield within `seconds`, a result whose one finding is that scenario_error
 * (the same finding the hunt recorded for that schedule).
 */
export async function replaySupervised(def: ScenarioDef, v: VariantDef, params: Params, schedule: string, opts: HuntOptions & { mode?: 'strict' | 'continue' }, machine: Partial<MachineOptions>, seconds: number): Promise<RunResult & { divergedAt: number; ran: string; reproduced: boolean }> {
  const source = scenarioSource(def, v.name, params, machine);
  const { mode, ...hunt } = opts;
  const r = await runJobSupervised(source, hunt, { type: 'replay', schedule, opts: { ...engineOptions(hunt), mode: mode ?? 'strict' } }, seconds);
  if ('result' in r) return r.result as RunResult & { divergedAt: number; ran: string; reproduced: boolean };
  const program = scenarioProgram(def, v.name, params, machine);
  const strategy = decodeSchedule(schedule).strategy;
  const ran = stuckSchedule(r.stuck, programHash(program, engineOptions({ ...hunt, instrument: false })), strategy);
  return stuckRun(r.stuck.seed, r.stuck.step, yieldTimeoutFinding(r.stuck, seconds), ran);
}

function stuckRun(seed: number, steps: number, f: ReturnType<typeof yieldTimeoutFinding>, ran: string): RunResult & { divergedAt: number; ran: string; reproduced: boolean } {
  return {
    seed,
    endReason: 'fatal',
    findings: [f],
    metrics: { steps, choices: 0, preemptions: 0, switches: 0, interrupts: 0, coalesced: 0, timers: 0, faults: 0, deviations: 0, endTime: 0 },
    hash: 0,
    deviations: [],
    events: null,
    coverage: null,
    interleaving: 0,
    divergedAt: -1,
    ran,
    // a stuck run never ends: nothing to compare with the recorded one
    reproduced: false,
  };
}

/** `irqsim run` on a supervised worker: iteration 0, fully instrumented. */
async function singleRunSupervised(def: ScenarioDef, v: VariantDef, params: Params, o: VariantHuntOptions, seconds: number): Promise<HuntResult> {
  const machine = o.machine ?? {};
  const opts = variantHuntOptions(def, v, o.hunt);
  const program = scenarioProgram(def, v.name, params, machine);
  const { stopWhen: _w, onProgress: _p, onUnit: _u, done: _d, plan: _pl, ...plain } = opts;
  const j = await runJobSupervised(scenarioSource(def, v.name, params, machine), plain, { type: 'iteration', opts: { ...plain, iteration: 0, instrument: true } }, seconds);
  let r: RunResult;
  let schedule = '';
  if ('result' in j) r = j.result as RunResult;
  else {
    const hash = programHash(program, engineOptions({ ...opts, instrument: false }));
    schedule = stuckSchedule(j.stuck, hash, new StrategyPicker(opts).at(0).name);
    r = stuckRun(j.stuck.seed, j.stuck.step, yieldTimeoutFinding(j.stuck, seconds), schedule);
  }
  return singleResult(program, opts, r, schedule);
}

/** `irqsim run`: iteration 0, fully instrumented, as a one-schedule hunt result. */
function singleRun(def: ScenarioDef, v: VariantDef, params: Params, o: VariantHuntOptions): HuntResult {
  const program = scenarioProgram(def, v.name, params, o.machine ?? {});
  const opts = variantHuntOptions(def, v, o.hunt);
  return singleResult(program, opts, runIteration(program, { ...opts, iteration: 0, instrument: true }), '');
}

function singleResult(program: ReturnType<typeof scenarioProgram>, opts: HuntOptions, r: RunResult, schedule: string): HuntResult {
  return {
    program: program.name,
    hash: programHash(program, opts),
    strategy: String(opts.strategy ?? 'random'),
    seed: opts.seed ?? 0,
    iterations: 1,
    schedulesRun: 1,
    firstIteration: r.findings.length ? 0 : -1,
    findings: r.findings.map((f) => ({ ...f, iteration: 0, schedule, runs: 1, totalCount: f.count })),
    totals: r.metrics,
    expectedSteps: r.metrics.steps,
    exhausted: false,
  };
}

/** The verdict, metrics and findings JSON of a hunt result. */
function judgeRun(def: ScenarioDef, v: VariantDef, params: Params, o: VariantHuntOptions, h: HuntResult, p: Prepared | null): RunJson {
  const machine = o.machine ?? {};
  const program = p?.program ?? scenarioProgram(def, v.name, params, machine);
  const opts = p?.opts ?? variantHuntOptions(def, v, o.hunt);
  const kindsOf = (fs: readonly FoundFinding[]) => fs.map((f) => f.kind);
  if (p?.state) {
    p.state.plan = h.plan as HuntPlan;
    p.state.units = [...p.units.entries()].sort((x, y) => x[0] - y[0]);
    p.state.complete = true;
  }
  const confirmed = (o.confirm === true || v.confirm === true) && o.single !== true ? confirmPredictions(program, opts, h) : new Map<string, string>();
  const metrics = metricsOf(def, h);
  const j = judge(v.expect, kindsOf(h.findings), metrics);
  // A single run cannot be expected to reach every expected kind: only unexpected ones count.
  const single = o.single === true;
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
      const fj = findingJson(f, f.schedule ? replayCommand(def, v.name, params, f.shrunk ?? f.schedule, machine) : '');
      const c = confirmed.get(f.fingerprint);
      return c === undefined ? fj : { ...fj, confirmed: c };
    }),
    metrics,
    coverage: h.coverage ? { ...h.coverage, expectedSteps: h.expectedSteps } : { schedules: h.schedulesRun, expectedSteps: h.expectedSteps },
    ...(h.search ? { search: h.search } : {}),
    ...(h.dpor ? { dpor: h.dpor } : {}),
    ...(why ? { why } : {}),
    // what this variant actually ran with (the declared defaults merged with the command line)
    options: runOptionsJson(opts, h),
    ...(p?.state ? { state: p.state } : {}),
  };
}

/**
 * The report so far of a hunt still running (or killed): its records folded in unit order up
 * to the first unit not yet there, without stop rules, shrinking or confirmation. Runs nothing.
 */
export function partialRun(def: ScenarioDef, v: VariantDef, params: Params, state: HuntState, machine: Partial<MachineOptions> = {}): RunJson {
  const fold = new HuntFold({ iterations: state.plan.iterations, stopAtFirst: false, wanted: null });
  const have = new Map(state.units);
  for (const u of shardUnits(state.plan, state.shard)) {
    const recs = have.get(u);
    if (recs === undefined) break;
    fold.pushUnit(state.plan, u, recs);
  }
  return {
    variant: v.name,
    expect: v.expect,
    verdict: 'incomplete',
    schedulesRun: fold.run,
    findings: fold.findings().map((f) => findingJson(f, replayCommand(def, v.name, params, f.schedule, machine))),
    metrics: {},
    coverage: {},
    state,
  };
}
