/**
 * HISTORICAL: two ARM32 coherent-buffer designs that exist here only to transcribe threads;
 * current kernels use neither (lib/dma/arm32.ts is the v3.6+ allocator, which calls these when
 * DmaOptions.arm32Consistent or arm32SectionRemap asks for them).
 *
 * - The pre-3.6 consistent DMA region (v3.4 arch/arm/mm/dma-mapping.c, Russell King's design):
 *   a fixed virtual range with PTE pages preallocated at boot.
 * - The hypothetical in-place section attribute change of Russell King's 2014 mail.
 */
import { ProgramError } from '../../../scheduler';
import { __GFP_DMA, __GFP_HIGHMEM } from '../../kernel/gfp';
import type { KernelBody, Machine } from '../../kernel/machine';
import { DEFINE_SPINLOCK, spin_lock_irqsave, spin_unlock_irqrestore, type spinlock_t } from '../../kernel/spinlock';
import { fn } from '../../kernel/stack';
import type { Task } from '../../kernel/task';
import { MIGRATE_UNMOVABLE } from '../../mm/config';
import { mm } from '../../mm/mm';
import { kfree, kmalloc, page_address } from '../../mm/slab';
import { flush_tlb_kernel_range } from '../../mm/vmalloc';
import { ARCH_SYNC_BARRIER_NS, SET_PTE_NS } from '../costs';

/** Section entries of the linear map whose attributes were changed (break-flush-make), each way. */
export const M_ARM32_SECTION_CHANGES = 'dma.arm32.section_changes';
/** PTE pages consistent_init allocated at boot for the consistent region. */
export const M_ARM32_CONSISTENT_PTES = 'dma.arm32.consistent_pte_pages';

/** ARM's 1 MiB section: one first-level entry of the linear map. */
export const SECTION_SIZE = 1 << 20;
/** One PTE page (a pgd entry pair) maps 2 MiB on ARM (PGDIR_SHIFT 21). */
export const PGDIR_SIZE = 1 << 21;
/** Default CONSISTENT_DMA_SIZE (2 MiB: CONSISTENT_BASE 0xffc00000 .. CONSISTENT_END 0xffe00000). */
export const CONSISTENT_DMA_SIZE = 2 << 20;
/** CONSISTENT_BASE on a v3.4 kernel with the default size. */
export const CONSISTENT_BASE = 0xffc00000;

/**
 * The pre-3.6 consistent DMA region (Russell King's design): a fixed virtual range whose PTE
 * pages consistent_init allocated at boot (core_initcall, GFP_KERNEL, IRQs on), handed out by
 * arm_vmregion_alloc under consistent_head.vm_lock (irqsave). Remapping a buffer into it only
 * writes PTEs: nothing on that path allocates page tables or sleeps.
 */
export class ConsistentRegion {
  /** One byte per page of the region: 1 = in use. */
  readonly used: Uint8Array;
  constructor(
    readonly base: number,
    readonly size: number,
    readonly pageSize: number,
    /** consistent_pte[]: the preallocated PTE pages (pfns), one per 2 MiB. */
    readonly ptes: number[],
    readonly vm_lock: spinlock_t,
  ) {
    this.used = new Uint8Array(size / pageSize);
  }
}

export const consistentRegions = new WeakMap<Machine, ConsistentRegion>();

/**
 * consistent_init (v3.4 arch/arm/mm/dma-mapping.c, core_initcall): one pte_alloc_kernel page per
 * 2 MiB of the consistent region, allocated at boot. Called by dma_atomic_pool_init when
 * DmaOptions.arm32Consistent is set; like the atomic pools' boot fill it takes the pages straight
 * from the free lists, before the run's clock starts.
 */
export function arm_consistent_init(m: Machine, size: number): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size % PGDIR_SIZE !== 0) throw new ProgramError(`arm32Consistent must be a positive multiple of 2 MiB, got ${size}`);
  const phys = mm(m).phys;
  const ptes: number[] = [];
  for (let base = 0; base < size; base += PGDIR_SIZE) {
    let pfn = -1;
    for (let i = phys.zones.length - 1; i >= 0 && pfn < 0; i--) pfn = phys.rmqueue(phys.zones[i], 0, MIGRATE_UNMOVABLE, 0);
    if (pfn < 0) {
      m.log.printk(0, 'consistent_init: no pte tables');
      return;
    }
    ptes.push(pfn);
  }
  consistentRegions.set(m, new ConsistentRegion(CONSISTENT_BASE, size, phys.pageSize, ptes, DEFINE_SPINLOCK(m, 'consistent_head.vm_lock')));
  m.sim.count(M_ARM32_CONSISTENT_PTES, ptes.length);
}

/**
 * arm_vmregion_alloc(head, align, size, gfp): the struct arm_vmregion with the caller's gfp
 * (kmalloc), then a first fit aligned to min(roundup_pow_of_two(size), 1 MiB) under the region's
 * irqsave lock. The virtual address, or 0.
 */
function* arm_vmregion_alloc(cur: Task, r: ConsistentRegion, size: number, gfp: number): KernelBody<number> {
  return yield* fn(cur, 'arm_vmregion_alloc', (function* () {
    const obj = yield* kmalloc(cur, 48, gfp);
    if (obj === 0) return 0;
    const nr = size / r.pageSize;
    const align = Math.min(2 ** Math.ceil(Math.log2(size)), SECTION_SIZE) / r.pageSize;
    const flags = yield* spin_lock_irqsave(cur, r.vm_lock);
    let at = -1;
    for (let i = 0; i + nr <= r.used.length; i += Math.max(1, align)) {
      let k = 0;
      while (k < nr && r.used[i + k] === 0) k++;
      if (k === nr) {
        at = i;
        break;
      }
    }
    if (at >= 0) r.used.fill(1, at, at + nr);
    yield* spin_unlock_irqrestore(cur, r.vm_lock, flags);
    if (at < 0) {
      yield* kfree(cur, obj);
      return 0;
    }
    yield* kfree(cur, obj); // the descriptor's lifetime is not followed further (simplified)
    return r.base + at * r.pageSize;
  })());
}

/** __dma_alloc_remap (v3.4): a range of the consistent region, then one set_pte_ext per page. */
export function* consistent_remap(cur: Task, r: ConsistentRegion, size: number, gfp: number): KernelBody<number> {
  return yield* fn(cur, '__dma_alloc_remap', (function* () {
    const addr = yield* arm_vmregion_alloc(cur, r, size, gfp & ~(__GFP_DMA | __GFP_HIGHMEM));
    if (addr === 0) return 0;
    yield cur.thread.work((size / r.pageSize) * SET_PTE_NS + ARCH_SYNC_BARRIER_NS); // set_pte_ext per page, dsb()
    return addr;
  })());
}

/** __dma_free_remap (v3.4): clear the PTEs, flush the range's TLB entries, give the range back. */
export function* consistent_unmap(cur: Task, r: ConsistentRegion, addr: number, size: number): KernelBody<void> {
  yield* fn(cur, '__dma_free_remap', (function* () {
    yield cur.thread.work((size / r.pageSize) * SET_PTE_NS);
    yield* flush_tlb_kernel_range(cur, addr, addr + size);
    const flags = yield* spin_lock_irqsave(cur, r.vm_lock);
    const first = (addr - r.base) / r.pageSize;
    r.used.fill(0, first, first + size / r.pageSize);
    yield* spin_unlock_irqrestore(cur, r.vm_lock, flags);
  })());
}

/**
 * The hypothetical design of Russell King's 2014 mail: keep lowmem pages where they are and make
 * the linear map's section entries covering them uncached. The section is shared by every CPU's
 * TLB, so each change is break (clear the entry), flush every CPU's TLB for the section and wait
 * (flush_tlb_kernel_range: on_each_cpu(ipi_flush_tlb_kernel_range, &ta, 1) on an SMP without
 * hardware broadcast), make (write the new entry). Section use counts say when a section goes
 * back to cacheable at free. Simplified: the other lowmem pages sharing the section change with it (a
 * real design would split the section into a PTE table, which allocates).
 */
const sectionUse = new WeakMap<Machine, Map<number, number>>();

export function* change_section_attributes(cur: Task, physStart: number, size: number, uncached: boolean): KernelBody<void> {
  const m = cur.cpu.machine;
  let use = sectionUse.get(m);
  if (use === undefined) sectionUse.set(m, (use = new Map()));
  const first = Math.floor(physStart / SECTION_SIZE);
  const last = Math.floor((physStart + size - 1) / SECTION_SIZE);
  for (let sec = first; sec <= last; sec++) {
    const n = use.get(sec) ?? 0;
    use.set(sec, n + (uncached ? 1 : -1));
    // Every allocation writes its section entry (another CPU may be mid-change on it); a section
    // goes back to cacheable only when its last buffer is freed.
    if (!uncached && n !== 1) continue;
    const vstart = page_address(m, mm(m).phys.physToPfn(sec * SECTION_SIZE));
    cur.thread.sim.count(M_ARM32_SECTION_CHANGES, 1);
    yield* fn(cur, uncached ? '__dma_section_set_uncached' : '__dma_section_set_cached', (function* () {
      yield cur.thread.work(SET_PTE_NS); // break: pmd_clear + flush_pmd_entry
      yield* flush_tlb_kernel_range(cur, vstart, vstart + SECTION_SIZE);
      yield cur.thread.work(SET_PTE_NS); // make: the section entry with the new attributes
    })());
  }
}
