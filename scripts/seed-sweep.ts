/**
 * npm run hunt:seeds [-- --from 0 --to 20 --only S7,S9 --skip S2,S3,S8] — every variant of every
 * scenario hunted with --all at its declared budget from each seed, and its claims judged: a
 * verdict or a claim that flips for some seed is printed with the seed that shows it. The mocha
 * suite samples a few seeds per scenario (test/scenarios/seeds.test.ts); this is the full run.
 */
import { applyParams } from '../lib/scenario/params';
import { huntScenario } from '../lib/scenario/hunt-scenario';
import { allScenarios } from '../lib/scenario/registry';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
}

const from = Number(arg('from', '0'));
const to = Number(arg('to', '20'));
const only = arg('only', '') ? new Set(arg('only', '').split(',')) : null;
const skip = new Set(arg('skip', '').split(',').filter(Boolean));
const started = Date.now(); // wall time, printed only
let flips = 0;
for (const def of allScenarios()) {
  if (skip.has(def.id) || (only && !only.has(def.id))) continue;
  const params = applyParams(def, []);
  const t0 = Date.now();
  const bad: string[] = [];
  for (let seed = from; seed <= to; seed++) {
    const r = huntScenario(def, params, { hunt: { seed }, all: true, shrink: false });
    for (const run of r.runs) if (run.verdict !== 'as-expected') bad.push(`${run.variant} --seed ${seed}: ${run.why ?? run.verdict} [${run.findings.map((f) => `${f.kind}: ${f.headline}`).join(' | ').slice(0, 300)}]`);
    for (const c of r.claims) if (c.holds !== true) bad.push(`claim ${c.name} --seed ${seed}: ${c.holds === null ? 'not judged' : 'FAILS'} ${c.relation}`);
  }
  flips += bad.length;
  process.stdout.write(`${def.id} seeds ${from}-${to}: ${((Date.now() - t0) / 1000).toFixed(1)} s, ${bad.length ? `${bad.length} flip(s)\n  ${bad.join('\n  ')}` : 'every variant as expected, every claim holds'}\n`);
}
process.stdout.write(`total ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
process.exitCode = flips === 0 ? 0 : 1;
