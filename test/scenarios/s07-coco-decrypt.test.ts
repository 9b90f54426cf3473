/**
 * S7 (Kelley on Tesarik's v2, seed 002): in a CoCo guest a per-mapping bounce buffer costs a
 * decrypt on every map and an encrypt on every unmap; the fixed pool decrypts once at boot and
 * pool-granular growth once per pool. The thresholds are the scenario's claims
 * (scenarios/s07-coco-decrypt.ts); here they are judged on both platforms and under perturbations,
 * and the exit counts are checked against the platform model (lib/mm/decrypt.ts).
 */
import * as chai from 'chai';
import { expect } from 'chai';
import { conversionCost } from '../../lib/mm/decrypt';
import { hunt, huntClaims, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s07-coco-decrypt';

chai.use(irqsimChai);

const failed = (r: ReturnType<typeof huntClaims>) => r.claims.filter((c) => c.holds !== true).map((c) => `${c.name}: ${c.relation} ${c.note ?? ''}`);

describe('S7: CoCo per-mapping decrypt/encrypt (scenarios/s07-coco-decrypt.ts)', function () {
  this.timeout(120_000);

  for (const platform of ['sev-snp', 'tdx']) {
    it(`${platform}: every variant as expected and every claim holds (1 schedule each, seed 1)`, () => {
      const r = huntClaims(scenario, { iterations: 1, seed: 1, params: { platform } });
      for (const run of r.runs) expect(run.verdict, `${run.variant}: ${run.why ?? ''}`).to.equal('as-expected');
      expect(r.claims).to.have.length(7);
      expect(failed(r)).to.deep.equal([]);
    });
  }

  it('buggy: exits per map from the platform model - SEV-SNP one PSC exit and one KVM_HC_MAP_GPA_RANGE per 4K page each way, TDX one MapGPA each way and an accept per page back; the buffer size and the platform change them', async () => {
    const perMap = async (platform: string, segKiB: number) => {
      const r = await hunt(scenario, { variant: 'buggy', iterations: 1, seed: 1, params: { platform, segKiB } });
      expect(r).to.be.asExpected;
      expect(r.metrics['swiotlb.dyn_allocs']).to.equal(r.metrics['swiotlb.maps']);
      return { hc: r.metrics['mm.hypercalls'] / r.metrics['swiotlb.maps'], accepts: (r.metrics['mm.tdx_accepts'] ?? 0) / r.metrics['swiotlb.maps'] };
    };
    // a segment's buffer is segKiB, aligned to its size: never a 2 MiB unit
    const snp = (pages: number) => 2 * (conversionCost('sev-snp', 2 ** 30 + pages * 4096, pages, 4096, false).pscExits + pages);
    expect(await perMap('sev-snp', 64)).to.deep.equal({ hc: snp(16), accepts: 0 });
    expect(snp(16)).to.equal(34);
    expect(await perMap('sev-snp', 32)).to.deep.equal({ hc: snp(8), accepts: 0 });
    expect(await perMap('tdx', 64)).to.deep.equal({ hc: 2, accepts: 16 });
    expect(await perMap('tdx', 32)).to.deep.equal({ hc: 2, accepts: 8 });
  });

  it('the fixed pool: only its boot decryption (64 MiB at 2 MiB units: one PSC exit and 32 MAP_GPA on SEV-SNP, one MapGPA on TDX)', async () => {
    const snp = await hunt(scenario, { variant: 'fixed', iterations: 1, seed: 1 });
    expect(snp.metrics['swiotlb.boot_decrypt_hypercalls']).to.equal(33);
    expect(snp.metrics['mm.hypercalls']).to.equal(undefined);
    const tdx = await hunt(scenario, { variant: 'fixed', iterations: 1, seed: 1, params: { platform: 'tdx' } });
    expect(tdx.metrics['swiotlb.boot_decrypt_hypercalls']).to.equal(1);
  });

  it('fixed stays clean over 10 schedules', async () => {
    const fixed = await hunt(scenario, { variant: 'fixed', iterations: 10, seed: 1 });
    expect(fixed).to.be.clean;
    expect(fixed.schedulesRun).to.equal(10);
  });

  it('perturbation cpus-2: every variant as expected, every claim holds', () => {
    const params = scenario.perturbations!.find((p) => p.name === 'cpus-2')!.params;
    const r = huntClaims(scenario, { iterations: 1, seed: 2, params });
    for (const run of r.runs) expect(run.verdict, run.variant).to.equal('as-expected');
    expect(failed(r)).to.deep.equal([]);
  });
});
