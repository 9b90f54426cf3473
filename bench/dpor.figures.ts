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
import { hunt } from '../scheduler/explorer';
import type { Program } from '../scheduler/program';
import { Resource } from '../scheduler/resource';

/**
 * A generated family of growing size: n threads, each doing k writes to an object of its own,
 * then one locked update of a shared counter, then k more private writes. Traces differ only in
 * the order of the lock operations (an acquire that finds the lock taken queues: an event of
 * its own); plain DFS also walks every placement of the private writes.
 */
function family(n: number, k: number): Program {
  return {
    name: `family-${n}-${k}`,
    params: { n, k },
    setup(sim) {
      const lock = new Resource(sim, 'L', 1);
      const shared = sim.object('shared');
      const st = { c: 0 };
      for (let i = 0; i < n; i++) {
        const own = sim.object(`own${i}`);
        sim.spawn(`t${i}`, function* (t) {
          for (let j = 0; j < k; j++) yield t.write(own);
          yield t.acquire(lock);
          yield t.write(shared);
          st.c++;
          yield t.release(lock);
          for (let j = 0; j < k; j++) yield t.write(own);
        });
      }
    },
  };
}

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
if (only.length === 0 || only.includes('family')) {
  for (const [n, k] of [[2, 2], [3, 2], [3, 3], [4, 2], [5, 1]] as const) {
    const cells: string[] = [];
    for (const [name, spec] of STRATS) {
      const t0 = process.hrtime.bigint();
      const r = hunt(family(n, k), { ...spec, iterations: BUDGET, stopAtFirst: false });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      cells.push(`${name}: ${r.schedulesRun} ${r.search} ${s.toFixed(1)}s${r.dpor ? ` traces ${r.dpor.traces} blocked ${r.dpor.sleepBlocked}` : ''}${r.findings.length ? ' FINDING' : ''}`);
    }
    console.log(`family n=${n} k=${k} | ${cells.join(' | ')}`);
  }
}
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
