/**
 * A portfolio hunt: iteration i runs the strategy PORTFOLIO[i mod 5]. The strategy depends
 * only on the iteration index, so a portfolio hunt is the same on any number of workers or
 * shards. Random walks find shallow races fast; PCT at depths 1-3 gives the probabilistic
 * guarantee for bugs of that depth; fair-PCT is the one whose liveness findings (stall,
 * hung_task) count.
 */
import type { Strategy } from './choice';
import { InputError } from './errors';
import { makeStrategy, type StrategySpec } from './strategies';

export const PORTFOLIO: readonly StrategySpec[] = [
  { strategy: 'random' },
  { strategy: 'pct', depth: 1 },
  { strategy: 'pct', depth: 2 },
  { strategy: 'pct', depth: 3 },
  { strategy: 'fair-pct', depth: 3 },
];

/** Picks the strategy of an iteration: one instance per portfolio entry, or the one strategy. */
export class StrategyPicker {
  private readonly list: Strategy[];

  constructor(spec: StrategySpec & { portfolio?: boolean }) {
    if (spec.portfolio) {
      if (spec.strategy !== undefined && spec.strategy !== 'portfolio') throw new InputError(`--portfolio picks the strategy per iteration: do not give --strategy ${spec.strategy} with it`);
      this.list = PORTFOLIO.map((s) => makeStrategy(s));
    } else this.list = [makeStrategy(spec)];
  }

  get name(): string {
    return this.list.length > 1 ? 'portfolio' : this.list[0].name;
  }

  /** The single strategy (exhaustive DFS keeps state across iterations). */
  get only(): Strategy {
    return this.list[0];
  }

  at(iteration: number): Strategy {
    return this.list[iteration % this.list.length];
  }
}
