/**
 * What one variant's hunt actually ran with: the strategy and budgets after the scenario's,
 * the variant's and the command line's options were merged (a variant may declare PCT with its
 * own budget while the command line asked for nothing). RunJson carries it as `options`; the
 * HTML report prints it per variant. Infinite budgets are written as null (JSON has no Infinity).
 */
import type { HuntOptions, HuntResult } from '../../scheduler';

export interface RunOptionsJson {
  strategy: string;
  seed: number;
  /** The schedule budget. */
  iterations: number;
  portfolio?: boolean;
  depth?: number;
  pctSteps?: number;
  preemptionBound?: number;
  irqBound?: number;
  delayBound?: number;
  window?: number | null;
  horizon?: number | null;
  stepBudget?: number | null;
  maxFaults?: number | null;
  /** DFS bounding the hunt settled on (HuntResult.bound). */
  bound?: string;
  shrink?: boolean;
}

const BUDGETS = ['depth', 'pctSteps', 'preemptionBound', 'irqBound', 'delayBound', 'window', 'horizon', 'stepBudget', 'maxFaults'] as const;

/** The options record of a hunt run with `opts` (the merged engine options) that gave `h`. */
export function runOptionsJson(opts: HuntOptions, h: Pick<HuntResult, 'strategy' | 'seed' | 'iterations' | 'bound'>): RunOptionsJson {
  const out: RunOptionsJson = { strategy: h.strategy, seed: h.seed, iterations: h.iterations };
  if (opts.portfolio) out.portfolio = true;
  for (const k of BUDGETS) {
    const v = opts[k];
    if (typeof v === 'number') (out as unknown as Record<string, number | null>)[k] = Number.isFinite(v) ? v : null;
  }
  if (h.bound) out.bound = `${h.bound.kind}<=${h.bound.value}`;
  if (opts.shrink !== undefined) out.shrink = opts.shrink;
  return out;
}
