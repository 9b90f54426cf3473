/**
 * Every S-scenario declares the kernel profile its thread was about (the parameter `kernel`,
 * lib/kernel/config.ts) and runs under it: the machine's kernel and, where the scenario has a
 * swiotlb, the swiotlb profile (lib/dma/swiotlb/profile.ts) are the declared version; --kernel
 * (the same parameter) moves both.
 */
import { expect } from 'chai';
import { Engine, makeStrategy } from '../../scheduler';
import { isKernelVersion, type KernelVersion } from '../../lib/kernel/config';
import type { Machine } from '../../lib/kernel/machine';
import { swiotlbIfPresent } from '../../lib/dma/swiotlb/state';
import { scenarioProgram, type ScenarioDef } from '../../lib/scenario/define';
import { allScenarios } from '../../lib/scenario/registry';
import { formatMarkdown, kernelOf, withKernelColumn, type CatalogRow } from '../../demo/catalog';

/** The thread each scenario transcribes and the profile it was about (the reasons are in each file). */
const EXPECTED: Record<string, KernelVersion> = {
  S1: '6.3', // RFC v1, 2023-03 (seed 000)
  S2: '6.3',
  S3: '6.3',
  S4: '3.x-arm', // Russell King, 2014-12 (seed 001)
  S5: '3.x-arm',
  S6: '3.x-arm',
  S7: '6.6', // v2, 2023-05, compared with upstream's merged design (first in v6.6)
  S8: '6.3', // v2, 2023-05 (seed 002)
  S9: '6.6',
  S10: '6.3',
  S11: '6.3',
  S12: '6.12', // 2016 arm64 v4.5: no profile; nothing version-dependent, so the newest
  S13: '6.6',
  S14: '6.6',
};

/** One schedule of the first variant (cut short by a small step budget): what the run used. */
function runUsed(def: ScenarioDef, params: ScenarioDef['params']): { kernel: string; swiotlb: string | null } {
  const e = new Engine({ window: Infinity, stepBudget: 200 });
  e.run(scenarioProgram(def, def.variants[0].name, params), makeStrategy({ strategy: 'random' }), 1, 200);
  const m = e.world as Machine;
  const st = swiotlbIfPresent(m);
  return { kernel: m.kernel.version, swiotlb: st === null ? null : st.mem.profile.version };
}

describe('kernel profiles of the S-scenarios', () => {
  const s = allScenarios().filter((d) => /^S\d+$/.test(d.id));

  it('every S-scenario declares a known profile, the one its thread was about', () => {
    expect(s.map((d) => d.id).sort()).to.deep.equal(Object.keys(EXPECTED).sort());
    for (const d of s) {
      const k = d.params.kernel;
      expect(typeof k === 'string' && isKernelVersion(k), `${d.id}: kernel ${String(k)}`).to.equal(true);
      expect(k, d.id).to.equal(EXPECTED[d.id]);
    }
  });

  for (const id of Object.keys(EXPECTED)) {
    it(`${id} runs under its declared profile (machine and swiotlb)`, function () {
      this.timeout(300_000);
      const d = s.find((x) => x.id === id)!;
      const used = runUsed(d, d.params);
      expect(used.kernel, `${id}: machine kernel`).to.equal(d.params.kernel);
      if (used.swiotlb !== null) expect(used.swiotlb, `${id}: swiotlb profile`).to.equal(d.params.kernel);
    });
  }

  it('the kernel parameter (--kernel) moves the machine and the swiotlb together', function () {
    this.timeout(300_000);
    const d = s.find((x) => x.id === 'S1')!;
    const used = runUsed(d, { ...d.params, kernel: '6.8' });
    expect(used).to.deep.equal({ kernel: '6.8', swiotlb: '6.8' });
  });

  it("the README table (npm run readme:table) shows each scenario's kernel profile in a column of its own", () => {
    const row = (scenario: string, variant: string): CatalogRow => ({ scenario, name: scenario, variant, verdict: 'as-expected', schedules: 1, findings: 'clean', keyMetric: 'x = 1', claims: '', replay: '' });
    const kernels = new Map(allScenarios().map((d) => [d.id, kernelOf(d)]));
    const md = withKernelColumn(formatMarkdown([row('S4', 'buggy'), row('S4', 'fixed'), row('S9', 'buggy'), row('abba', 'buggy')]), (id) => kernels.get(id) ?? '?');
    const lines = md.split('\n');
    const cols = (l: string) => l.split(' | ').length;
    expect(lines[0]).to.match(/^\| scenario \| kernel \| variant \|/);
    expect(lines[1].split('|').length).to.equal(lines[0].split('|').length);
    for (const l of lines.slice(2)) expect(cols(l)).to.equal(cols(lines[0]));
    expect(lines[2]).to.match(/^\| S4 \| 3\.x-arm \| buggy \|/);
    expect(lines[3]).to.match(/^\| S4 \| 3\.x-arm \| fixed \|/);
    expect(lines[4]).to.match(/^\| S9 \| 6\.6 \| buggy \|/);
    // a scenario that declares nothing runs on the newest profile
    expect(lines[5]).to.match(/^\| abba \| 6\.12 \| buggy \|/);
  });
});
