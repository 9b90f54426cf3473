/**
 * Claims (lib/scenario/claims.ts): quantities normalised from folded sums, judged over the
 * variants' hunts and over parameter values; printed, in the JSON, in the exit code; exact across
 * shards and merge; "not judged" when a variant it needs was not hunted. And every claim of S1,
 * S7, S9 and S14 says "no" under a deliberately wrong model: the variant it is about replaced by
 * another design (or a parameter that removes what the claim is about).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { mainAsync, type Io } from '../../lib/cli/main';
import { judgeClaims, quantityValue, type ClaimJson } from '../../lib/scenario/claims';
import type { ScenarioDef } from '../../lib/scenario/define';
import type { RunJson } from '../../lib/scenario/hunt';
import { huntClaims } from '../../lib/testing';
import s01 from '../../scenarios/s01-rpi4-dmabuf';
import s02 from '../../scenarios/s02-noio-deadlock';
import s03 from '../../scenarios/s03-swiotlb-nvme';
import s07 from '../../scenarios/s07-coco-decrypt';
import s08 from '../../scenarios/s08-dyn-list-lookup';
import s09 from '../../scenarios/s09-chunked-growth-burst';
import s14 from '../../scenarios/s14-coco-sizing';

const TOY = join(__dirname, 'fixtures', 'claim-toy.ts');

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) };
  const code = await mainAsync(argv, io);
  return { code, out, err };
}

const run = (variant: string, schedulesRun: number, metrics: Record<string, number>): RunJson => ({ variant, expect: {}, verdict: 'as-expected', schedulesRun, findings: [], metrics, coverage: {} });

/** The scenario with some variants running another variant's design (a deliberately wrong model). */
function swapped(def: ScenarioDef, map: Record<string, string>): ScenarioDef {
  const real = (v: string) => map[v] ?? v;
  return {
    ...def,
    machine: def.machine && ((p, v) => def.machine!(p, real(v))),
    prepare: def.prepare && ((p, v) => def.prepare!(p, real(v))),
    build: (m, ctx) => def.build(m, { ...ctx, variant: real(ctx.variant) }),
  };
}

const byName = (cs: ClaimJson[], name: string) => cs.find((c) => c.name === name) as ClaimJson;

describe('claims: judged from folded sums', function () {
  this.timeout(120_000);

  it('a quantity is a ratio of folded sums (per schedule, per operation with a scale, a peak as folded), null on a zero denominator', () => {
    const r = run('buggy', 4, { 'mm.hypercalls': 30, 'swiotlb.maps': 12, 'x.peak': 7 });
    expect(quantityValue({ metric: 'mm.hypercalls', per: 'schedule' }, r)).to.equal(7.5);
    expect(quantityValue({ metric: 'mm.hypercalls', per: 'swiotlb.maps', scale: 1000 }, r)).to.equal(2500);
    expect(quantityValue({ metric: ['mm.hypercalls', 'swiotlb.maps'], per: 'schedule' }, r)).to.equal(10.5);
    expect(quantityValue({ metric: 'x.peak', per: 'peak' }, r)).to.equal(7);
    expect(quantityValue({ metric: 'missing.peak', per: 'peak' }, r)).to.equal(null);
    expect(quantityValue({ metric: 'mm.hypercalls', per: 'nothing.counted' }, r)).to.equal(null);
    expect(quantityValue({ metric: 'never.counted', per: 'schedule' }, r)).to.equal(0);
  });

  it('two shards of 2 and 6 schedules fold to the ratio of the sums, not the mean of the shard ratios', () => {
    const def = { id: 't', params: {}, variants: [{ name: 'buggy', expect: {} }, { name: 'fixed', expect: {} }], claims: [{ name: 'c', text: 't', left: { variant: 'fixed', metric: 'a', per: 'b' }, op: '<=', right: 0.3 }] } as unknown as ScenarioDef;
    // shard 1: a/b = 1/2 = 0.5; shard 2: 1/10 = 0.1; mean 0.3 would hold, the folded 2/12 = 0.167 is the true ratio
    const folded = run('fixed', 8, { a: 2, b: 12 });
    const c = judgeClaims(def, { runs: [folded, run('buggy', 1, {})], params: {} })[0];
    expect(c.values['fixed a per b']).to.be.closeTo(2 / 12, 1e-12);
    expect(c.holds).to.equal(true);
    const d = judgeClaims(def, { runs: [run('fixed', 8, { a: 4, b: 12 }), run('buggy', 1, {})], params: {} })[0];
    expect(d.holds).to.equal(false); // 0.333 > 0.3
    const z = judgeClaims(def, { runs: [run('fixed', 8, { a: 4 }), run('buggy', 1, {})], params: {} })[0];
    expect(z.holds, 'a zero denominator does not pass').to.equal(false);
    expect(z.note).to.match(/could not be computed/);
  });

  it('irqsim hunt: each claim printed with its numbers and holds/FAILS; JSON carries top-level claims; a failing claim exits 1', async () => {
    const ok = await cli('hunt', TOY, '--json');
    expect(ok.code, ok.err).to.equal(0);
    const j = JSON.parse(ok.out) as { claims: ClaimJson[] };
    expect(j.claims.map((c) => [c.name, c.holds])).to.deep.equal([['fixed-4x-cheaper', true], ['same-work', true], ['cost-rises', true]]);
    expect(byName(j.claims, 'fixed-4x-cheaper').values).to.deep.equal({ 'fixed toy.ns per toy.ops': 125, 'buggy toy.ns per toy.ops': 1000 });
    expect(byName(j.claims, 'cost-rises').values).to.deep.equal({ 'buggy [costNs=500] toy.ns per toy.ops': 500, 'buggy [costNs=1000] toy.ns per toy.ops': 1000, 'buggy [costNs=2000] toy.ns per toy.ops': 2000 });
    for (const c of j.claims) expect(c.text).to.match(/^toy thread: "/);
    const bad = await cli('hunt', TOY, '--param', 'speedup=2');
    expect(bad.code).to.equal(1);
    expect(bad.out).to.match(/^claim fixed-4x-cheaper: FAILS {2}500 <= 0\.250 x 1000 /m);
    expect(bad.out).to.match(/^claim same-work: holds {2}5 >= 5 /m);
    const badJson = JSON.parse((await cli('hunt', TOY, '--param', 'speedup=2', '--json')).out) as { runs: RunJson[]; claims: ClaimJson[] };
    expect(badJson.runs.every((r) => r.verdict === 'as-expected'), 'the runs themselves are as expected: only the claim fails').to.equal(true);
    expect(byName(badJson.claims, 'fixed-4x-cheaper').holds).to.equal(false);
  });

  it('--variant buggy: claims naming fixed are "not judged" (holds null, exit 0); a claim over parameter values of buggy runs its extra hunts', async () => {
    const r = await cli('hunt', TOY, '--variant', 'buggy', '--json');
    expect(r.code, r.err).to.equal(0);
    const j = JSON.parse(r.out) as { claims: ClaimJson[] };
    expect(byName(j.claims, 'fixed-4x-cheaper').holds).to.equal(null);
    expect(byName(j.claims, 'fixed-4x-cheaper').note).to.match(/^not judged: needs variant fixed, which this hunt did not run \(hunted: buggy\)$/);
    expect(byName(j.claims, 'cost-rises').holds).to.equal(true);
    const t = await cli('hunt', TOY, '--variant', 'fixed', '--param', 'speedup=2');
    expect(t.code, 'a claim not judged does not fail the hunt').to.equal(0);
    expect(t.out).to.match(/^claim fixed-4x-cheaper: not judged /m);
  });

  it('S7 --shard 1/2 and 2/2 merged: the same claim values as one process (the shards themselves judge none)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'irqsim-claims-'));
    try {
      const argv = ['hunt', 'S7', '--all', '--iterations', '2', '--no-shrink', '--json'];
      const one = JSON.parse((await cli(...argv)).out) as { claims: ClaimJson[] };
      const files: string[] = [];
      for (const i of [1, 2]) {
        const s = await cli(...argv, '--shard', `${i}/2`);
        const j = JSON.parse(s.out) as { claims: ClaimJson[] };
        expect(j.claims.every((c) => c.holds === null && /shard/.test(c.note ?? '')), 'a shard judges no claim').to.equal(true);
        const f = join(dir, `s${i}.json`);
        writeFileSync(f, s.out);
        files.push(f);
      }
      const merged = await cli('merge', ...files, '--json');
      expect(merged.code, merged.err).to.equal(0);
      expect((JSON.parse(merged.out) as { claims: ClaimJson[] }).claims).to.deep.equal(one.claims);
      expect(one.claims.length).to.be.greaterThan(0);
      expect(one.claims.every((c) => c.holds === true)).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Each claim under a wrong model: [scenario, claim, variants swapped (hunted name -> design run), params].
 * One schedule per variant keeps it cheap; the claim must say no.
 */
const WRONG: [ScenarioDef, string, Record<string, string>, Record<string, number | string>][] = [
  [s01 as unknown as ScenarioDef, 'buggy-every-frame-fails', { buggy: 'fixed' }, {}],
  [s01 as unknown as ScenarioDef, 'fixed-shows-every-frame', { fixed: 'buggy' }, {}],
  [s01 as unknown as ScenarioDef, 'below-1g-no-bounce', { 'below-1g': 'fixed' }, {}],
  [s01 as unknown as ScenarioDef, 'below-1g-shows-every-frame', { 'below-1g': 'buggy' }, {}],
  [s07 as unknown as ScenarioDef, 'buggy-converts-every-map-and-unmap', { buggy: 'atomic' }, {}],
  [s07 as unknown as ScenarioDef, 'fixed-decrypts-only-at-boot', { fixed: 'upstream' }, {}],
  [s07 as unknown as ScenarioDef, 'fixed-hypercalls-per-map', { fixed: 'upstream' }, {}],
  [s07 as unknown as ScenarioDef, 'upstream-converts-per-pool', { upstream: 'buggy' }, {}],
  [s07 as unknown as ScenarioDef, 'atomic-no-conversion-per-map', { atomic: 'buggy' }, {}],
  [s07 as unknown as ScenarioDef, 'atomic-pool-runs-dry', { atomic: 'fixed' }, {}],
  [s07 as unknown as ScenarioDef, 'fixed-map-latency', { fixed: 'buggy' }, {}],
  [s09 as unknown as ScenarioDef, 'fails-only-while-growing', {}, { maxChunks: 1 }],
  [s09 as unknown as ScenarioDef, 'full-falls-with-2m-chunks', { buggy: 'fixed' }, {}],
  [s09 as unknown as ScenarioDef, 'large-reserve-fewer-failures', { 'large-reserve': 'buggy' }, {}],
  [s09 as unknown as ScenarioDef, 'fixed-never-full', { fixed: 'buggy' }, {}],
  [s14 as unknown as ScenarioDef, 'static-idle-under-light-io', { buggy: 'fixed' }, {}],
  [s14 as unknown as ScenarioDef, 'static-too-small-under-heavy-io', { buggy: 'fixed' }, {}],
  [s14 as unknown as ScenarioDef, 'growing-pool-small-under-light-io', { fixed: 'buggy' }, {}],
  [s14 as unknown as ScenarioDef, 'growing-pool-grows-under-heavy-io', { fixed: 'buggy' }, {}],
  // S2, S3, S8 on the devices the patches served (issue 19)
  [s02 as unknown as ScenarioDef, 'dynamic-path-taken', { fixed: 'nvme' }, {}],
  [s02 as unknown as ScenarioDef, 'nvme-never-allocates', { nvme: 'fixed' }, {}],
  [s02 as unknown as ScenarioDef, 'nvme-refused', { nvme: 'fixed' }, {}],
  [s03 as unknown as ScenarioDef, 'several-locked-lookups-per-unmap', { fixed: 'nvme' }, {}],
  [s03 as unknown as ScenarioDef, 'nvme-refused-pool-runs-out', { nvme: 'fixed' }, {}],
  [s03 as unknown as ScenarioDef, 'nvme-pool-runs-out', { nvme: 'fixed' }, {}],
  [s08 as unknown as ScenarioDef, 'list-lookup-costs-more-than-tree', { buggy: 'fixed' }, {}],
  [s08 as unknown as ScenarioDef, 'list-lookup-grows-with-depth', { buggy: 'fixed' }, {}],
  [s08 as unknown as ScenarioDef, 'non-bounced-unmaps-pay-for-the-list', { buggy: 'fixed' }, {}],
  [s08 as unknown as ScenarioDef, 'nvme-never-on-the-list', { nvme: 'buggy' }, {}],
  [s08 as unknown as ScenarioDef, 'nvme-refused-not-unserved', { nvme: 'buggy' }, {}],
];

describe('claims: every claim of S1, S2, S3, S7, S8, S9, S14 fails under a wrong model', function () {
  this.timeout(300_000);

  it('every declared claim is covered below', () => {
    const covered = new Set(WRONG.map(([d, c]) => `${d.id}/${c}`));
    for (const d of [s01, s02, s03, s07, s08, s09, s14] as unknown as ScenarioDef[]) for (const c of d.claims ?? []) expect(covered.has(`${d.id}/${c.name}`), `${d.id}/${c.name}`).to.equal(true);
  });

  for (const [def, name, swap, params] of WRONG) {
    const how = [...Object.entries(swap).map(([a, b]) => `${a} runs ${b}`), ...Object.entries(params).map(([k, v]) => `${k}=${v}`)].join(', ');
    it(`${def.id} ${name}: holds false when ${how}`, () => {
      const wrong = Object.keys(swap).length ? swapped(def, swap) : def;
      const c = def.claims!.find((x) => x.name === name)!;
      const variants = 'quantity' in c ? [c.quantity.variant] : [c.left.variant, ...(typeof c.right === 'number' ? [] : [c.right.variant])];
      const r = huntClaims(wrong, { variants: [...new Set(variants)], params, iterations: 1, seed: 1 });
      const j = byName(r.claims, name);
      expect(j.holds, `${j.relation} ${j.note ?? ''}`).to.equal(false);
    });
  }
});
