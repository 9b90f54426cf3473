/**
 * A demo worker process: receives scenario files from the parent, hunts every variant of each
 * with its declared defaults (exactly `irqsim hunt <file>`), judges its claims, sends them back.
 */
import { applyParams } from '../lib/scenario/params';
import { quantityLabel, quantityValue, type ClaimJson } from '../lib/scenario/claims';
import type { ScenarioDef } from '../lib/scenario/define';
import type { RunJson } from '../lib/scenario/hunt';
import { huntScenario } from '../lib/scenario/hunt-scenario';
import { loadScenarioFile } from '../lib/scenario/registry';

export interface CatalogRequest {
  index: number;
  file: string;
}

export interface CatalogReply {
  index: number;
  id: string;
  name: string;
  keyMetrics: string[];
  runs: RunJson[];
  /** The scenario's claims judged over the runs. */
  claims: ClaimJson[];
  /** The one key metric of the scenario, normalised the same way for every variant: its name and each run's value. */
  key: { label: string; values: (number | null)[] } | null;
  error?: string;
}

/**
 * The scenario's key metric, per schedule or per operation, the same for each of its rows: the
 * first claim's left-hand quantity; without claims the first key metric, as is when the scenario
 * derives it from the hunt's totals (a rate), else its sum per schedule.
 */
export function keyMetric(def: ScenarioDef, runs: RunJson[]): CatalogReply['key'] {
  const c = def.claims?.[0];
  const q = c === undefined ? undefined : 'quantity' in c ? c.quantity : c.left;
  if (q !== undefined) return { label: quantityLabel({ ...q, variant: undefined, params: undefined }), values: runs.map((r) => quantityValue(q, r)) };
  const name = def.keyMetrics?.[0];
  if (name === undefined) return null;
  const derived = runs.some((r) => def.derive !== undefined && name in def.derive(r.metrics, r.schedulesRun));
  if (derived) return { label: name, values: runs.map((r) => (typeof r.metrics[name] === 'number' ? r.metrics[name] : null)) };
  return { label: `${name} per schedule`, values: runs.map((r) => quantityValue({ metric: name, per: 'schedule' }, r)) };
}

process.on('message', (msg: CatalogRequest) => {
  let reply: CatalogReply;
  try {
    const def = loadScenarioFile(msg.file);
    const params = applyParams(def, []);
    const { runs, claims } = huntScenario(def, params);
    reply = { index: msg.index, id: def.id, name: def.name, keyMetrics: def.keyMetrics ?? [], runs, claims, key: keyMetric(def, runs) };
  } catch (e) {
    reply = { index: msg.index, id: msg.file, name: '', keyMetrics: [], runs: [], claims: [], key: null, error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
  process.send!(reply);
});
