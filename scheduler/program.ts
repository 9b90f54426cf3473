/**
 * What the engine runs: a program sets up threads, waitables, interrupt sources and timers on
 * a fresh engine for every run. Scenario files and the kernel model build Programs.
 */
import type { Engine, EngineOptions } from './engine';
import { fnv1a, hex32 } from './hash';

export interface Program {
  /** Name used in reports and in the program hash. */
  name: string;
  /**
   * Version of code the hash cannot see (helpers the setup calls). Bump it when such code
   * changes so old schedules are recognised as recorded against another program.
   */
  version?: string;
  /**
   * The identity of the program's code, when the layer that built it has one (a scenario: its
   * file's text and the model version). The hash then uses it instead of the source text of
   * setup and finish, which depends on the transpiler (tsc, ts-node, sucrase print it apart) and
   * says nothing of the helpers they call.
   */
  code?: string;
  /** Parameters (the hash covers them). */
  params?: Record<string, unknown>;
  /** Build the run: spawn threads, declare interrupt sources and timers. */
  setup(sim: Engine): void;
  /** Called when a run ends without a fatal finding: end-state checks (sim.assert). */
  finish?(sim: Engine): void;
}

/** JSON with sorted keys, so equal parameter objects hash equally whatever their key order. */
export function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'undefined';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

/**
 * Hash of a program and the options that shape its paths (window, horizon, fault budget, and
 * the step budget, which decides where a runaway run stops).
 * A schedule carries it so a replay against a changed program says so instead of silently
 * taking another path.
 */
export function programHash(p: Program, opts: EngineOptions = {}): string {
  const parts = [
    p.name,
    p.version ?? '',
    stableJson(p.params ?? {}),
    ...(p.code !== undefined ? [`code=${p.code}`, ''] : [p.setup.toString(), p.finish ? p.finish.toString() : '']),
    `window=${opts.window ?? Infinity};horizon=${opts.horizon ?? Infinity};faults=${opts.maxFaults ?? 1};budget=${opts.stepBudget ?? 1_000_000}`,
  ];
  return hex32(fnv1a(parts.join('\u0000')));
}
