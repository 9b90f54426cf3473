/**
 * irqsim merge <a.json> <b.json> ...: the shards of one hunt back into the report one process
 * gives. Every shard 1..n must be there exactly once, complete, of the same hunt; the records
 * are folded in unit order (nothing is run again except shrinking and --confirm, as one process
 * would).
 */
import { InputError } from '../../../scheduler';
import { claimsHold, formatClaims, judgeClaims } from '../../scenario/claims';
import type { Params } from '../../scenario/define';
import { huntVariant } from '../../scenario/hunt';
import { claimHunter } from '../../scenario/hunt-scenario';
import { requestFromJson, type HuntRequest } from '../../report/json';
import { huntText } from '../../report/text';
import { writeAtomic } from '../../report/write-atomic';
import { exitCode, kindsOf, scenarioOfResult, variantsOf, type Io } from '../command';
import type { CliOptions } from '../options';
import { docOf, readResults, type ScenarioOutput } from '../results-file';

/** The request a shard's records were made with (a one-line error for a file irqsim hunt --shard did not write). */
function storedRequest(r: HuntRequest | undefined, where: string): HuntRequest {
  if (!r || typeof r !== 'object' || typeof r.hunt !== 'object') throw new InputError(`${where} has no hunt request: it was not written by irqsim hunt --shard or --out`);
  return requestFromJson(r);
}

export function cmdMerge(o: CliOptions, io: Io): number {
  if (o.positionals.length === 0) throw new InputError('merge needs the shard files (irqsim hunt ... --shard i/n --json > shard-i.json)');
  const files = o.positionals.map((f) => ({ file: f, outs: readResults(f, 'a shard output (irqsim hunt ... --shard i/n --json)') }));
  const ids: string[] = [];
  for (const f of files) for (const s of f.outs) if (!ids.includes(s.scenario.id)) ids.push(s.scenario.id);
  const outputs: ScenarioOutput[] = [];
  for (const id of ids) {
    const parts = files.flatMap((f) => f.outs.filter((s) => s.scenario.id === id).map((s) => ({ file: f.file, s })));
    const shards = parts.map(({ file, s }) => {
      const sh = typeof s.options.shard === 'string' ? /^(\d+)\/(\d+)$/.exec(s.options.shard) : null;
      if (!sh) throw new InputError(`${file}: ${id} is not a shard output (no options.shard)`);
      return { file, s, index: Number(sh[1]), count: Number(sh[2]) };
    });
    const n = shards[0].count;
    for (const x of shards) {
      if (x.count !== n) throw new InputError(`${x.file}: shard ${x.index}/${x.count} of ${id} does not go with ${shards[0].file} (${shards[0].index}/${n})`);
      if (x.s.scenario.hash !== shards[0].s.scenario.hash) throw new InputError(`${x.file}: ${id} has program hash ${x.s.scenario.hash}, ${shards[0].file} has ${shards[0].s.scenario.hash}: not the same hunt`);
      const { shard: _a, ...oa } = x.s.options;
      const { shard: _b, ...ob } = shards[0].s.options;
      if (JSON.stringify(oa) !== JSON.stringify(ob)) throw new InputError(`${x.file}: ${id} was hunted with other options than ${shards[0].file}`);
    }
    for (let i = 1; i <= n; i++) {
      const have = shards.filter((x) => x.index === i);
      if (have.length === 0) throw new InputError(`shard ${i}/${n} of ${id} is missing`);
      if (have.length > 1) throw new InputError(`shard ${i}/${n} of ${id} is given twice (${have.map((x) => x.file).join(', ')})`);
    }
    const first = shards[0].s;
    const def = scenarioOfResult(first.scenario);
    const params = first.options.params as Params;
    const { shard: _s, ...options } = first.options;
    const out: ScenarioOutput = { scenario: first.scenario, options, runs: [] };
    for (const run0 of first.runs) {
      const v = variantsOf(def, run0.variant)[0];
      const states = shards.map((x) => {
        const r = x.s.runs.find((y) => y.variant === run0.variant);
        if (!r || !r.state) throw new InputError(`${x.file}: no records of ${id}/${run0.variant}`);
        if (!r.state.complete) throw new InputError(`${x.file}: shard ${x.index}/${n} of ${id}/${run0.variant} did not finish (killed?): finish it with --out <file> --resume, then merge`);
        return r.state;
      });
      const plan = states[0].plan;
      if (states.some((st) => JSON.stringify(st.plan) !== JSON.stringify(plan))) throw new InputError(`the shards of ${id}/${run0.variant} were planned differently: not the same hunt`);
      const req = storedRequest(states[0].request, `${shards[0].file} (${id}/${run0.variant})`);
      const units = states.flatMap((st) => st.units).sort((a, b) => a[0] - b[0]);
      out.runs.push(huntVariant(def, v, params, { ...req, resumeFrom: { plan, shard: null, units, complete: true }, foldOnly: true }));
    }
    // The claims, judged over the merged runs as one process would have judged them.
    const req0 = storedRequest(shards[0].s.runs[0]?.state?.request, `${shards[0].file} (${id})`);
    out.claims = judgeClaims(def, { runs: out.runs, params, hunt: claimHunter(def, req0) });
    outputs.push(out);
  }
  const ok = outputs.every((x) => x.runs.every((r) => r.verdict === 'as-expected') && claimsHold(x.claims));
  if (o.out !== undefined) writeAtomic(o.out, JSON.stringify(docOf(outputs)));
  if (o.json) io.out(JSON.stringify(docOf(outputs)));
  else for (const x of outputs) for (const line of huntText(x.scenario, x.runs, scenarioOfResult(x.scenario).keyMetrics ?? [], formatClaims(x.claims ?? []))) io.out(line);
  return exitCode(ok, outputs.flatMap((x) => kindsOf(x.runs)));
}
