/**
 * A demo worker process: receives scenario files from the parent, hunts every variant of each
 * with its declared defaults (exactly `irqsim hunt <file>`), sends the runs back.
 */
import { applyParams } from '../lib/cli/options';
import { huntVariant, type RunJson } from '../lib/scenario/hunt';
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
  error?: string;
}

process.on('message', (msg: CatalogRequest) => {
  let reply: CatalogReply;
  try {
    const def = loadScenarioFile(msg.file);
    const params = applyParams(def, []);
    reply = { index: msg.index, id: def.id, name: def.name, keyMetrics: def.keyMetrics ?? [], runs: def.variants.map((v) => huntVariant(def, v, params)) };
  } catch (e) {
    reply = { index: msg.index, id: msg.file, name: '', keyMetrics: [], runs: [], error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
  }
  process.send!(reply);
});
