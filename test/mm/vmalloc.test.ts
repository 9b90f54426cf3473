import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { __GFP_FS, __GFP_IO, GFP_KERNEL, GFP_NOFS, GFP_NOIO } from '../../lib/kernel/gfp';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { local_irq_disable, local_irq_enable } from '../../lib/kernel/irqflags';
import { msleep } from '../../lib/kernel/sched';
import { DEFINE_SPINLOCK, spin_lock, spin_unlock } from '../../lib/kernel/spinlock';
import { PF_MEMALLOC_NOFS, PF_MEMALLOC_NOIO } from '../../lib/kernel/task';
import { alloc_pages, __free_pages, MIB, mm } from '../../lib/mm';
import { slab_pages } from '../../lib/mm/slab';
import {
  GFP_PGTABLE_KERNEL,
  VMALLOC_END,
  VMALLOC_START,
  __vmalloc,
  find_vm_area,
  get_vm_area,
  ioremap_page_range,
  lazy_max_pages,
  vfree,
  vm_unmap_aliases,
  vmalloc,
  vmap,
  vmap_lazy_pages,
  vmap_pgtable_gfps,
  vmap_pgtable_pages,
  vunmap,
  vzalloc,
} from '../../lib/mm/vmalloc';
import { memProgram } from '../support/memory';

const kinds = (r: RunResult) => r.findings.map((f) => f.kind);
const once = (p: ReturnType<typeof memProgram>) => runIteration(p, { iteration: 0 });

describe('mm: vmalloc', () => {
  it('maps page-aligned areas with a guard page, allocating page tables once per PMD range', () => {
    const st: Record<string, number> = {};
    const p = memProgram('vmalloc-basic', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        const before = mm(m).nrFree();
        const a = yield* vmalloc(cur, 3 * 4096 + 1);
        const b = yield* vzalloc(cur, 4096);
        st.a = a;
        st.b = b;
        st.aPages = find_vm_area(m, a)!.pages.length;
        st.pgtables = vmap_pgtable_pages(m);
        yield* vfree(cur, a);
        yield* vfree(cur, b);
        st.lazy = vmap_lazy_pages(m);
        st.gone = find_vm_area(m, a) === null ? 1 : 0;
        // What stays allocated: the page tables and the slabs of the bookkeeping objects.
        st.leak = before - mm(m).nrFree() - vmap_pgtable_pages(m) - slab_pages(m);
        expect(mm(m).phys.checkInvariants()).to.equal(null);
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]);
    expect(st.a).to.equal(VMALLOC_START);
    expect(st.b).to.equal(VMALLOC_START + 5 * 4096); // after a's 4 pages and its guard page
    expect(st.a % 4096).to.equal(0);
    expect(st.b).to.be.lessThan(VMALLOC_END);
    expect(st).to.deep.include({ aPages: 4, pgtables: 2, lazy: 5 + 2, gone: 1, leak: 0 });
    expect(r.metrics.counters).to.deep.include({ 'mm.vmalloc': 2, 'mm.vmalloc_pages': 5, 'mm.vfree_pages': 5, 'mm.vmap_pgtable_pages': 2 });
  });

  it('page tables are GFP_KERNEL, narrowed by a NOFS / NOIO scope when the caller passes GFP_NOFS / GFP_NOIO', () => {
    // The gfps are what current_gfp_context made of GFP_PGTABLE_KERNEL at each page-table
    // allocation, i.e. the task's scope then; after the call the scope is gone again.
    const cases: [string, number, number][] = [
      ['GFP_KERNEL', GFP_KERNEL, GFP_PGTABLE_KERNEL],
      ['GFP_NOFS', GFP_NOFS, GFP_PGTABLE_KERNEL & ~__GFP_FS],
      ['GFP_NOIO', GFP_NOIO, GFP_PGTABLE_KERNEL & ~(__GFP_FS | __GFP_IO)],
    ];
    for (const [name, gfp, pgtableGfp] of cases) {
      let gfps: readonly number[] = [];
      let flagsAfter = -1;
      const p = memProgram(`vmalloc-scope-${name}`, { memory: 64 * MIB }, (m) => {
        m.kthread('t', 0, function* (cur) {
          const a = yield* __vmalloc(cur, 8192, gfp);
          expect(a).to.be.greaterThan(0);
          gfps = vmap_pgtable_gfps(m);
          flagsAfter = cur.flags & (PF_MEMALLOC_NOFS | PF_MEMALLOC_NOIO);
          yield* vfree(cur, a);
        });
      });
      const r = once(p);
      expect(r.findings, name).to.deep.equal([]);
      expect(gfps, name).to.deep.equal([pgtableGfp, pgtableGfp]); // one PMD page, one PTE page
      expect(flagsAfter, name).to.equal(0);
    }
  });

  it('vmalloc may sleep: under a spinlock alloc_vmap_area splats', () => {
    const p = memProgram('vmalloc-atomic', { memory: 64 * MIB }, (m) => {
      const lock = DEFINE_SPINLOCK(m, 'dev_lock');
      m.kthread('t', 0, function* (cur) {
        yield* spin_lock(cur, lock);
        const a = yield* vmalloc(cur, 4096);
        yield* spin_unlock(cur, lock);
        yield* vfree(cur, a);
      });
    });
    const r = once(p);
    expect(r.findings.map((f) => f.fingerprint)).to.include('might_sleep:alloc_vmap_area@__vmalloc_node_range');
  });

  it('vfree from a hardirq handler is deferred to a work item, which frees the area', () => {
    const st: Record<string, number> = {};
    const p = memProgram('vfree-irq', { memory: 64 * MIB }, (m) => {
      let addr = 0;
      const line = request_irq(m, 0, 'dev_irq', function* (cur) {
        yield* vfree(cur, addr);
        st.inIrqStillMapped = find_vm_area(m, addr) !== null ? 1 : 0;
      });
      m.kthread('t', 0, function* (cur) {
        addr = yield* vmalloc(cur, 4 * 4096);
        st.free0 = mm(m).nrFree();
        yield* raise_irq(cur, line);
        yield cur.thread.point();
        yield* msleep(cur, 10); // system_wq's kworker runs delayed_vfree_work meanwhile
        st.gone = find_vm_area(m, addr) === null ? 1 : 0;
      });
    });
    const r = once(p);
    expect(kinds(r)).to.deep.equal([]);
    expect(st).to.deep.include({ inIrqStillMapped: 1, gone: 1 });
    expect(r.metrics.counters).to.deep.include({ 'mm.vfree_deferred': 1, 'mm.vfree_pages': 4 });
  });

  it('vm_unmap_aliases purges lazy areas with a TLB flush IPI to every CPU; with IRQs off that is ipi_irqs_off', () => {
    const build = (irqsOff: boolean) =>
      memProgram(`vm-unmap-aliases-${irqsOff}`, { memory: 64 * MIB, cpus: 4 }, (m) => {
        m.kthread('t', 0, function* (cur) {
          const a = yield* vmalloc(cur, 4096);
          yield* vfree(cur, a);
          if (irqsOff) yield* local_irq_disable(cur);
          yield* vm_unmap_aliases(cur);
          if (irqsOff) yield* local_irq_enable(cur);
          expect(vmap_lazy_pages(m)).to.equal(0);
          yield* vm_unmap_aliases(cur); // nothing lazy: no flush
        });
      });
    const ok = once(build(false));
    expect(ok.findings).to.deep.equal([]);
    expect(ok.metrics.counters).to.deep.include({ 'mm.vmap_purges': 1, 'mm.tlb_flush_kernel': 1 });
    expect(ok.metrics.interrupts).to.be.at.least(3); // the other three CPUs took the IPI
    const bad = once(build(true));
    expect(kinds(bad)).to.include('ipi_irqs_off');
    expect(kinds(bad)).to.include('might_sleep'); // mutex_lock(&vmap_purge_lock) with IRQs off
    expect(bad.findings.find((f) => f.kind === 'ipi_irqs_off')!.text).to.match(/flush_tlb_kernel_range[^]*vm_unmap_aliases/);
  });

  it('past lazy_max_pages the drain work purges by itself', () => {
    let lazyAfter = -1;
    let max = 0;
    const p = memProgram('vmap-lazy-drain', { memory: 128 * MIB }, (m) => {
      max = lazy_max_pages(m);
      m.kthread('t', 0, function* (cur) {
        for (let i = 0; i < 2; i++) yield* vfree(cur, yield* vmalloc(cur, 36 * MIB));
        yield* msleep(cur, 10);
        lazyAfter = vmap_lazy_pages(m);
      });
    });
    const r = once(p);
    expect(max).to.equal(2 * 8192); // fls(2 CPUs) * 32 MiB
    expect(r.findings).to.deep.equal([]);
    // The drain ran (once): at most the second area's 19-page page array, freed after the
    // main area when the kworker got the CPU first, is lazy again.
    expect(lazyAfter).to.be.oneOf([0, 19]);
    expect(r.metrics.counters?.['mm.vmap_purges']).to.equal(1);
  });

  it('vmap maps the caller\'s pages and vunmap leaves them; ioremap_page_range needs an ioremap area', () => {
    const st: Record<string, number> = {};
    const p = memProgram('vmap', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        const pfns: number[] = [];
        for (let i = 0; i < 3; i++) pfns.push(yield* alloc_pages(cur, GFP_KERNEL, 0));
        const v = yield* vmap(cur, pfns, 3);
        st.mapped = find_vm_area(m, v)!.pages.length;
        const free = mm(m).nrFree();
        yield* vunmap(cur, v);
        st.sameFree = mm(m).nrFree() === free ? 1 : 0;
        for (const pfn of pfns) __free_pages(cur, pfn, 0);
        const area = (yield* get_vm_area(cur, 64 * 1024))!;
        st.io = yield* ioremap_page_range(cur, area.addr, area.addr + 64 * 1024, 0xfe000000);
        st.bad = yield* ioremap_page_range(cur, area.addr + 4096, area.addr + 8192, 0xfe000000);
      });
    });
    const r = once(p);
    expect(st).to.deep.equal({ mapped: 3, sameFree: 1, io: 0, bad: -22 });
    expect(r.findings.map((f) => f.headline)).to.deep.equal([`WARNING at ioremap_page_range: vm_area at addr ffff${(VMALLOC_START + 4 * 4096 + 4096).toString(16)} is not marked as VM_IOREMAP`]);
  });
});
