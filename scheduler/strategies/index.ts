/** Strategy names and the factory the explorer and the CLI use. */
import type { Strategy } from '../choice';
import { InputError } from '../errors';
import { Dfs } from './dfs';
import { Dpor } from './dpor';
import { IterativeBounding } from './iterative';
import { FairPct } from './fair-pct';
import { Pct } from './pct';
import { RandomWalk } from './random';

export const STRATEGIES = ['random', 'pct', 'fair-pct', 'dfs', 'dpor', 'ipb', 'idb'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

export interface StrategySpec {
  strategy?: StrategyName | string;
  /** PCT / fair-PCT depth d (bug depth targeted), default 3. */
  depth?: number;
  /** DFS: maximum preemptions per path (default unbounded). */
  preemptionBound?: number;
  /** DFS: maximum interrupts delivered before the point where they would be forced. */
  irqBound?: number;
  /** PCT / fair-PCT: the step estimate k (default: calibrated from a few runs). */
  pctSteps?: number;
  /** DFS: maximum delays (delay bounding: a round-robin scheduler, each skip is a delay). */
  delayBound?: number;
}

function nonNegInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new InputError(`bad ${what} ${JSON.stringify(v)}: expected a non-negative integer`);
  return v;
}

export function makeStrategy(spec: StrategySpec = {}): Strategy {
  const name = spec.strategy ?? 'random';
  switch (name) {
    case 'random':
      return new RandomWalk();
    case 'pct':
    case 'fair-pct': {
      const d = spec.depth ?? 3;
      if (!Number.isSafeInteger(d) || d < 1 || d > 100) throw new InputError(`bad depth ${JSON.stringify(spec.depth)}: expected an integer from 1 to 100`);
      const k = spec.pctSteps === undefined ? undefined : nonNegInt(spec.pctSteps, 'PCT step estimate');
      if (k === 0) throw new InputError('bad PCT step estimate 0: expected a positive integer');
      return name === 'pct' ? new Pct(d, k) : new FairPct(d, k);
    }
    case 'dfs':
      if (spec.delayBound !== undefined && (spec.preemptionBound !== undefined || spec.irqBound !== undefined)) {
        throw new InputError('--delay-bound replaces --preemption-bound and --irq-bound (a delivered interrupt costs one delay)');
      }
      return new Dfs(
        spec.preemptionBound === undefined ? Infinity : nonNegInt(spec.preemptionBound, 'preemption bound'),
        spec.irqBound === undefined ? Infinity : nonNegInt(spec.irqBound, 'irq bound'),
        spec.delayBound === undefined ? Infinity : nonNegInt(spec.delayBound, 'delay bound'),
      );
    case 'ipb':
    case 'idb':
      if (spec.preemptionBound !== undefined || spec.delayBound !== undefined) throw new InputError(`--strategy ${name} raises the bound itself: drop --preemption-bound / --delay-bound`);
      if (name === 'idb' && spec.irqBound !== undefined) throw new InputError('--strategy idb counts a delivered interrupt as a delay: drop --irq-bound');
      return new IterativeBounding(name === 'ipb' ? 'preemption' : 'delay', spec.irqBound === undefined ? Infinity : nonNegInt(spec.irqBound, 'irq bound'));
    case 'dpor':
      // Source-DPOR is sound only unbounded (a bound would need Coons et al.'s bounded POR).
      if (spec.preemptionBound !== undefined || spec.irqBound !== undefined) throw new InputError('--strategy dpor is bounded by steps only: drop --preemption-bound / --irq-bound (or use --strategy dfs)');
      return new Dpor();
    default:
      throw new InputError(`unknown strategy "${name}": expected one of ${STRATEGIES.join(', ')}`);
  }
}
