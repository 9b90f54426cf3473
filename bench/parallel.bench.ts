/**
 * Parallel hunt benchmark (npm run bench runs it last). Ratio against a baseline measured in
 * the same run: (p) one scenario variant hunted with --all on 1 thread (the baseline), then on 2
 * and on `os.availableParallelism()` worker threads, same seed and budget; the results must be
 * identical (checked), only the wall time differs. Worker start-up (ts-node in each thread, ~1-2
 * s) is included: it is what a user pays.
 */
import { availableParallelism } from 'os';
import { hunt, type HuntResult } from '../scheduler';
import { huntParallel } from '../scheduler/pool';
import { scenarioProgram } from '../lib/scenario/define';
import { findScenario } from '../lib/scenario/registry';
import { scenarioSource } from '../lib/scenario/source';

const QUICK = process.argv.includes('--quick');
const ITERATIONS = QUICK ? 64 : 320;

async function main(): Promise<void> {
  const def = findScenario('S3');
  const v = 'fixed';
  const params = { ...def.params };
  const opts = { ...def.options, ...def.variants.find((x) => x.name === v)!.options, seed: 11, iterations: ITERATIONS, stopAtFirst: false };
  const key = (h: HuntResult) => JSON.stringify({ f: h.findings, n: h.schedulesRun, t: h.totals, c: h.coverage });
  let t = process.hrtime.bigint();
  const base = hunt(scenarioProgram(def, v, params), opts);
  const t1 = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(`(p) S3/${v} --all, ${ITERATIONS} schedules: 1 thread ${t1.toFixed(2)} s (baseline)`);
  for (const w of [...new Set([2, availableParallelism()])]) {
    t = process.hrtime.bigint();
    const h = await huntParallel(scenarioProgram(def, v, params), scenarioSource(def, v, params, {}), { ...opts, workers: w });
    const tw = Number(process.hrtime.bigint() - t) / 1e9;
    if (key(h) !== key(base)) throw new Error(`--workers ${w} gave a different result`);
    console.log(`    ${w} workers ${tw.toFixed(2)} s: ${(t1 / tw).toFixed(2)}x the baseline's speed, identical result`);
  }
}

void main();
