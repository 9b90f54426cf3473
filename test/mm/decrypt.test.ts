import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { GFP_KERNEL } from '../../lib/kernel/gfp';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { alloc_pages, MIB, mm, type CocoKind } from '../../lib/mm';
import { EIO, set_memory_decrypted, set_memory_encrypted, set_memory_vmm_faults } from '../../lib/mm/decrypt';
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
  it('in a TDX guest: two hypercalls per conversion and a TLB flush IPI to every other CPU per cpa_flush', () => {
    const st: Record<string, number> = {};
    const r = runIteration(convert('decrypt-tdx', 'tdx', st, false), { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(st.dec).to.equal(0);
    expect(r.metrics.counters).to.deep.include({ 'mm.hypercalls': 2, 'mm.decrypted_pages': 8, 'mm.tlb_flush_kernel': 2 });
    expect(r.metrics.interrupts).to.equal(2 * 3); // two flushes, three other CPUs each
    expect(st.decNs).to.be.at.least(2 * HC);
    // Back to private: TDX flushes the TLB only after the change.
    const both: Record<string, number> = {};
    const r2 = runIteration(convert('decrypt-tdx-back', 'tdx', both), { iteration: 0 });
    expect(both).to.deep.include({ dec: 0, enc: 0 });
    expect(r2.metrics.counters).to.deep.include({ 'mm.hypercalls': 4, 'mm.encrypted_pages': 8, 'mm.tlb_flush_kernel': 3 });
  });

  it('in an SEV-SNP guest both directions flush before and after', () => {
    const st: Record<string, number> = {};
    const r = runIteration(convert('decrypt-snp', 'sev-snp', st), { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(r.metrics.counters).to.deep.include({ 'mm.hypercalls': 4, 'mm.tlb_flush_kernel': 4 });
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
