/**
 * Run a strategy to exhaustion (or `limit` runs) on one engine and collect the terminal states it
 * reaches: the differential tests compare DPOR's set with plain DFS's. A run DPOR pruned (its
 * prefix was sleep-set blocked) reaches no new state and is not counted as one.
 */
import { Dpor, Engine, type EngineOptions, type Finding, type Program, type Strategy } from '../../scheduler';

export interface Explored {
  states: Set<string>;
  runs: number;
  exhausted: boolean;
}

/** The terminal state of a run: the program's world (or `pick` of it) and its findings. */
export function terminalState(e: Engine, findings: readonly Pick<Finding, 'fingerprint'>[], pick: (world: unknown) => unknown = (w) => w): string {
  return JSON.stringify(pick(e.world)) + '|' + findings.map((f) => f.fingerprint).sort().join(',');
}

export function explore(p: Program, s: Strategy, limit: number, opts: EngineOptions = {}, pick?: (world: unknown) => unknown): Explored {
  const e = new Engine(opts);
  const states = new Set<string>();
  let runs = 0;
  while (!s.exhausted() && runs < limit) {
    const r = e.run(p, s, 0, 50);
    runs++;
    if (s instanceof Dpor && s.lastPruned) continue;
    states.add(terminalState(e, r.findings, pick));
  }
  return { states, runs, exhausted: s.exhausted() };
}
