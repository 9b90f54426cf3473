/**
 * The results JSON (docs/contract.md): a finding, a hunted variant (RunJson) with its records
 * (HuntState) and the request that made them. The scenario layer fills these in; the CLI, the
 * HTML report and the mocha helper read them.
 */
import type { FoundFinding, HuntOptions, HuntPlan, HuntResult, IterationRecord, Shard } from '../../scheduler';
import type { MachineOptions } from '../kernel/machine';
import type { ContextState } from '../kernel/show-state';
import type { TimelineJson } from './timeline';
import type { RunOptionsJson } from './run-options';

/**
 * The version of the JSON irqsim prints (docs/contract.md "JSON"): the top-level `version` of
 * every document (list, hunt, run, replay, shrink, merge, results files). It goes up when a field
 * changes meaning or goes away, not when one is added. 2: this field appears; list prints
 * `{version, scenarios}`; `options` holds only what was asked, `runs[].options` what ran.
 */
export const JSON_VERSION = 2;

export interface FindingJson {
  kind: string;
  subkind?: string;
  fingerprint: string;
  headline: string;
  text: string;
  iteration: number;
  time: number;
  cpus: number[];
  count: number;
  logged: number;
  cpuStates: ContextState[];
  stacks: { cpu: number; task: string; context: string; stack: string[] }[];
  schedule: string;
  shrunk?: string;
  replay: string;
  /** What each CPU did in the stretch before the finding (a traced replay of its schedule). */
  timeline?: TimelineJson;
  /** --confirm, on lockdep findings: "confirmed by schedule <s>" or "not reached in N schedules". */
  confirmed?: string;
}

/** docs/contract.md "Variants and expectations": what a hunt of a variant must show. */
export interface Expectation {
  findings?: string[];
  absent?: string[];
  clean?: boolean;
  metrics?: string[];
}

/**
 * What a hunt was asked to do, as it is stored with its records so irqsim merge and --resume
 * redo exactly it: the serialisable part of the scenario layer's VariantHuntOptions (which
 * extends it), nothing else.
 */
export interface HuntRequest {
  /** Overrides of the variant's and scenario's hunt defaults (seed, iterations, strategy...). */
  hunt?: Partial<HuntOptions>;
  /** Spend the whole budget (--all). */
  all?: boolean;
  /** Search for a schedule realising each lockdep prediction (--confirm). */
  confirm?: boolean;
  /** false: do not shrink (--no-shrink); true: shrink; absent: the variant's declared choice, else shrink. */
  shrink?: boolean;
  checkDeterminism?: boolean;
  /** Machine options the command line overrides (--lockdep). */
  machine?: Partial<MachineOptions>;
}

/**
 * A request read back from a results file: JSON wrote Infinity (an unbounded window or horizon)
 * as null, and files of earlier versions stored `shrink: true` for "the default".
 */
export function requestFromJson(q: HuntRequest): HuntRequest {
  return { ...q, hunt: huntFromJson(q.hunt ?? {}), shrink: q.shrink === false ? false : undefined, machine: q.machine ?? {} };
}

/** Hunt options read back from JSON, which wrote Infinity (an unbounded window or horizon) as null. */
export function huntFromJson(h: Partial<HuntOptions> | Record<string, unknown>): Partial<HuntOptions> {
  const out: Record<string, unknown> = { ...h };
  for (const k of ['window', 'horizon']) if (out[k] === null) out[k] = Infinity;
  return out as Partial<HuntOptions>;
}

/** A hunt's iteration records by unit: what irqsim merge folds and --resume continues from. */
export interface HuntState {
  plan: HuntPlan;
  shard: Shard | null;
  /** [unit, records] in unit order. */
  units: [number, IterationRecord[]][];
  /** False while the hunt runs (a killed hunt's file says so). */
  complete: boolean;
  /** What was asked: merge and --resume redo it. */
  request?: HuntRequest;
}

/** One hunted variant. */
export interface RunJson {
  variant: string;
  expect: Expectation;
  /** `incomplete`: a results file written while the hunt ran (--out), or by a killed hunt. */
  verdict: 'as-expected' | 'unexpected' | 'incomplete';
  schedulesRun: number;
  findings: FindingJson[];
  metrics: Record<string, number>;
  coverage: Record<string, unknown>;
  /** Search verdict: exhausted (bounded space covered), budget, or decided (see HuntResult.search). */
  search?: 'exhausted' | 'budget' | 'decided';
  /** --strategy dpor: traces, sleep-set-blocked runs, defaulted choice kinds, bounds. */
  dpor?: HuntResult['dpor'];
  why?: string;
  /** What this variant's hunt actually ran (lib/report/run-options.ts runOptionsJson). */
  options?: RunOptionsJson;
  /** The hunt's iteration records by unit (`--shard`, `--out`). */
  state?: HuntState;
}

export function findingJson(f: FoundFinding, replay: string): FindingJson {
  const states = ((f.data?.cpuStates as ContextState[] | undefined) ?? []).slice();
  // a detector that names its CPUs in the text says so (data.cpus); else the CPUs that wait or hold
  const named = f.data?.cpus;
  const cpus = Array.isArray(named) ? [...(named as number[])].sort((a, b) => a - b) : [...new Set(states.filter((s) => s.waitingFor !== null || s.held.length > 0).map((s) => s.cpu))].sort((a, b) => a - b);
  return {
    kind: f.kind,
    ...(f.subkind ? { subkind: f.subkind } : {}),
    fingerprint: f.fingerprint,
    headline: f.headline,
    text: f.text,
    iteration: f.iteration,
    time: f.time,
    cpus,
    count: f.totalCount,
    logged: f.loggedCount,
    cpuStates: states,
    stacks: states.map((s) => ({ cpu: s.cpu, task: `${s.task}/${s.pid}`, context: s.context, stack: s.stack })),
    schedule: f.schedule,
    ...(f.shrunk ? { shrunk: f.shrunk } : {}),
    replay,
  };
}
