/**
 * DPOR figures (not a test): schedules and time of `--strategy dpor` against plain DFS, bounded
 * (preemption bound 2, irq bound 1) and unbounded, on the fixed variants of the small catalog
 * scenarios at default and scaled parameters. Each hunt runs in this process on one core, with
 * the budget below; a DFS that hits the budget is reported as such (search: budget).
 *
 *   npx ts-node --transpile-only bench/dpor.figures.ts [scenario ...]
 */
import { findScenario } from '../lib/scenario/registry';
import { huntVariant } from '../lib/scenario/hunt';
import type { Params } from '../lib/scenario/define';

const BUDGET = Number(process.env.DPOR_BUDGET ?? 200_000);

const CASES: [string, Params][] = [
  ['abba', {}],
  ['abba', { rounds: 2 }],
  ['abba', { rounds: 3 }],
  ['abba', { cpus: 3, rounds: 2 }],
  ['irq-self-deadlock', {}],
  ['irq-self-deadlock', { requests: 4 }],
  ['irq-self-deadlock', { cpus: 3, requests: 3 }],
  ['sleep-in-atomic', {}],
  ['sleep-in-atomic', { cpus: 3 }],
  ['ipi-irqs-off', {}],
  ['ipi-irqs-off', { cpus: 3 }],
  ['rcu-uaf', {}],
  ['rcu-uaf', { readers: 2 }],
  ['rcu-uaf', { cpus: 3, readers: 2 }],
];

const STRATS: [string, Record<string, unknown>][] = [
  ['dpor', { strategy: 'dpor' }],
  ['dfs pb2 ib1', { strategy: 'dfs', preemptionBound: 2, irqBound: 1 }],
  ['dfs', { strategy: 'dfs' }],
];

const only = process.argv.slice(2);
for (const [id, over] of CASES) {
  if (only.length && !only.includes(id)) continue;
  const def = findScenario(id);
  const v = def.variants.find((x) => x.name === 'fixed')!;
  const params = { ...def.params, ...over } as Params;
  const cells: string[] = [];
  for (const [name, spec] of STRATS) {
    const t0 = process.hrtime.bigint();
    const r = huntVariant(def, v, params, { hunt: { ...spec, iterations: BUDGET }, shrink: false });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const d = r.dpor ? ` traces ${r.dpor.traces} blocked ${r.dpor.sleepBlocked}${r.dpor.defaulted.length ? ` defaulted ${r.dpor.defaulted.join('+')}` : ''}` : '';
    cells.push(`${name}: ${r.schedulesRun} ${r.search} ${s.toFixed(1)}s ${r.verdict}${d}`);
  }
  console.log(`${id} ${JSON.stringify(over)} | ${cells.join(' | ')}`);
}
