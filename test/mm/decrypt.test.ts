import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { GFP_KERNEL } from '../../lib/kernel/gfp';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { alloc_pages, MIB, mm, type CocoKind } from '../../lib/mm';
import { EIO } from '../../lib/kernel/errno';
import { conversionCost, set_memory_decrypted, set_memory_encrypted, set_memory_vmm_faults } from '../../lib/mm/decrypt';
import { page_address } from '../../lib/mm/slab';
import { memProgram } from '../support/memory';

const kinds = (r: RunResult) => r.findings.map((f) => f.kind);
const HC = 20_000;

/** One task converting 8 pages shared and back (or only shared), on a 4-CPU guest. */
function convert(name: string, coco: CocoKind, st: Record<string, number>, back = true) {
  return memProgram(name, { memory: 64 * MIB, cpus: 4, coco, hypercallNs: HC }, (m) => {
    m.kthread('t', 0, function* (cur) {
      const pfn = yield* alloc_pages(cur, GFP_KERNEL, 3);
      const addr = page_address(m, pfn);
      const t0 = m.sim.now();
      st.dec = yield* set_memory_decrypted(cur, addr, 8);
      st.decNs = m.sim.now() - t0;
      if (back) st.enc = yield* set_memory_encrypted(cur, addr, 8);
      expect(mm(m).coco).to.equal(coco);
    });
  });
}

describe('mm: set_memory_decrypted / encrypted', () => {
  it('in a TDX guest: one MapGPA per conversion, TDG.MEM.PAGE.ACCEPT per page back to private (counted apart), a TLB flush IPI to every other CPU per cpa_flush', () => {
    const st: Record<string, number> = {};
    const r = runIteration(convert('decrypt-tdx', 'tdx', st, false), { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(st.dec).to.equal(0);
    expect(r.metrics.counters).to.deep.include({ 'mm.hypercalls': 1, 'mm.map_gpa_hypercalls': 1, 'mm.decrypted_pages': 8, 'mm.tlb_flush_kernel': 2 });
    expect(r.metrics.counters?.['mm.tdx_accepts']).to.equal(undefined); // to shared: MapGPA only
    expect(r.metrics.interrupts).to.equal(2 * 3); // two flushes, three other CPUs each
    expect(st.decNs).to.be.at.least(HC);
    // Back to private: TDX flushes the TLB only after the change, and accepts each 4K page.
    const both: Record<string, number> = {};
    const r2 = runIteration(convert('decrypt-tdx-back', 'tdx', both), { iteration: 0 });
    expect(both).to.deep.include({ dec: 0, enc: 0 });
    expect(r2.metrics.counters).to.deep.include({ 'mm.hypercalls': 2, 'mm.tdx_accepts': 8, 'mm.encrypted_pages': 8, 'mm.tlb_flush_kernel': 3 });
  });

  it('in an SEV-SNP guest both directions flush before and after; each is one PSC exit (8 entries) and one KVM_HC_MAP_GPA_RANGE per 4K page', () => {
    const st: Record<string, number> = {};
    const r = runIteration(convert('decrypt-snp', 'sev-snp', st), { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(r.metrics.counters).to.deep.include({ 'mm.hypercalls': 18, 'mm.psc_exits': 2, 'mm.map_gpa_hypercalls': 16, 'mm.pvalidate': 16, 'mm.tlb_flush_kernel': 4 });
  });

  describe('conversionCost: what a conversion asks of the hypervisor, by platform and range', () => {
    const K4 = 4096;
    const M2 = 2 * MIB;
    const at = 1024 * MIB; // 1 GiB-aligned
    it('SEV-SNP: PSC entries batched 64 per exit (253 before v6.5); 2M entries for PMD-aligned 2 MiB; MAP_GPA per mapping unit', () => {
      // 1 MiB not 2M-aligned (256 pages): 256 4K entries -> 4 exits of 64, 1 exit of 253+3 -> 2
      expect(conversionCost('sev-snp', at + MIB, 256, K4, false)).to.deep.equal({ pscEntries: 256, pscExits: 4, pvalidate: 256, mapGpa: 256, accepts: 0 });
      expect(conversionCost('sev-snp', at + MIB, 256, K4, false, { pscMaxEntry: 253 }).pscExits).to.equal(2);
      // 4 MiB at a 2 MiB boundary: two 2M entries, one exit, two MAP_GPA
      expect(conversionCost('sev-snp', at + M2, 1024, K4, true)).to.deep.equal({ pscEntries: 2, pscExits: 1, pvalidate: 2, mapGpa: 2, accepts: 0 });
      // 64 KiB: 16 entries, one exit, 16 hypercalls; twice the buffer, twice the hypercalls
      expect(conversionCost('sev-snp', at + 64 * 1024, 16, K4, false).mapGpa).to.equal(16);
      expect(conversionCost('sev-snp', at + 64 * 1024, 32, K4, false).mapGpa).to.equal(32);
      // before the per-CPU GHCBs: the MSR protocol, one exit per page
      expect(conversionCost('sev-snp', at + M2, 1024, K4, false, { ghcb: false }).pscExits).to.equal(1024);
      // no KVM migration control: no MAP_GPA_RANGE hypercalls
      expect(conversionCost('sev-snp', at + MIB, 256, K4, false, { kvmMigrationControl: false }).mapGpa).to.equal(0);
      // 1 GiB aligned: one 1G mapping unit, 512 2M PSC entries -> 8 exits
      expect(conversionCost('sev-snp', at, 262144, K4, false)).to.deep.include({ pscEntries: 512, pscExits: 8, mapGpa: 1 });
    });
    it('TDX: one MapGPA for the range either way; back to private one accept per 1G, 2M or 4K granule', () => {
      expect(conversionCost('tdx', at + MIB, 256, K4, false)).to.deep.equal({ pscEntries: 0, pscExits: 0, pvalidate: 0, mapGpa: 1, accepts: 0 });
      expect(conversionCost('tdx', at + MIB, 256, K4, true).accepts).to.equal(256);
      // 1 MiB + 2 MiB + 1 MiB starting at 1 MiB past a 2M boundary: 256 + 1 + 256
      expect(conversionCost('tdx', at + MIB, 1024, K4, true).accepts).to.equal(256 + 1 + 256);
      expect(conversionCost('tdx', at, 262144, K4, true).accepts).to.equal(1);
      expect(conversionCost('none', at, 16, K4, true)).to.deep.equal({ pscEntries: 0, pscExits: 0, pvalidate: 0, mapGpa: 0, accepts: 0 });
    });
  });

  it('without memory encryption it is free: 0, no hypercall, no IPI, no time', () => {
    const st: Record<string, number> = {};
    const r = runIteration(convert('decrypt-none', 'none', st), { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(st).to.deep.equal({ dec: 0, decNs: 0, enc: 0 });
    expect(r.metrics.counters?.['mm.hypercalls']).to.equal(undefined);
    expect(r.metrics.interrupts).to.equal(0);
  });

  it('from a hardirq handler: might_sleep (vmap_purge_lock) and the cross-call warning', () => {
    const p = memProgram('decrypt-irq', { memory: 64 * MIB, coco: 'tdx' }, (m) => {
      let addr = 0;
      const line = request_irq(m, 0, 'dev_irq', function* (cur) {
        yield* set_memory_decrypted(cur, addr, 1);
      });
      m.kthread('t', 0, function* (cur) {
        addr = page_address(m, yield* alloc_pages(cur, GFP_KERNEL, 0));
        yield* raise_irq(cur, line);
        yield cur.thread.point();
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(kinds(r)).to.include('might_sleep');
    expect(kinds(r)).to.include('ipi_irqs_off');
    expect(r.findings.find((f) => f.kind === 'might_sleep')!.fingerprint).to.equal('might_sleep:mutex_lock@vm_unmap_aliases');
  });

  it('a hypervisor failure (injected fault) warns "CPA VMM failure" and returns -EIO', () => {
    const st: Record<string, number> = {};
    const p = memProgram('decrypt-vmm-fail', { memory: 64 * MIB, coco: 'tdx' }, (m) => {
      set_memory_vmm_faults(m, 1);
      m.kthread('t', 0, function* (cur) {
        st.ret = yield* set_memory_decrypted(cur, page_address(m, yield* alloc_pages(cur, GFP_KERNEL, 0)), 1);
      });
    });
    const r = runIteration(p, { iteration: 0, maxFaults: 1 });
    expect(st.ret).to.equal(-EIO);
    expect(r.findings).to.have.length(1);
    expect(r.findings[0].headline).to.match(/^WARNING at __set_memory_enc_pgtable: CPA VMM failure to convert memory \(addr=ffff888[0-9a-f]+, numpages=1\) to shared: -5$/);
    expect(r.metrics.counters).to.deep.include({ 'mm.hypercalls': 1, 'mm.set_memory_failures': 1 });
  });
});
