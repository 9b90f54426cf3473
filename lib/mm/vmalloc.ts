/**
 * vmalloc and friends (mm/vmalloc.c): a virtual address allocator for the vmalloc range, vmalloc
 * / vzalloc / __vmalloc, vfree (deferred from interrupt context), vmap / vunmap,
 * ioremap_page_range, the lazy purge of freed areas and vm_unmap_aliases, with the kernel page
 * tables those mappings need and the TLB flushes they cost.
 *
 * What follows upstream:
 * - alloc_vmap_area (every vmalloc/vmap/get_vm_area) calls might_sleep(); its struct vmap_area
 *   comes from the vmap_area slab cache and the vm_struct from kmalloc, with the caller's gfp
 *   & GFP_RECLAIM_MASK; when the range is full it purges the lazy areas and retries once, then
 *   prints "vmap allocation for size N failed";
 * - __vmalloc_area_node: the page array (kmalloc, or a nested vmalloc past one page), the data
 *   pages at order 0 with the caller's gfp | __GFP_NOWARN (one warn_alloc at the end), then the
 *   page tables, which are GFP_KERNEL (GFP_PGTABLE_KERNEL) whatever the caller passed, so the
 *   mapping runs in memalloc_nofs_save() when the caller's gfp has __GFP_IO without __GFP_FS and
 *   in memalloc_noio_save() when it has neither (docs/kernel-facts.md §3.2);
 * - vfree in interrupt context (in_interrupt(): hardirq, softirq or BH disabled) defers to a
 *   per-CPU work item on system_wq (vfree_atomic); otherwise it may sleep (might_sleep);
 * - freed areas are unmapped at once but their address range and TLB entries are purged
 *   lazily: when more than lazy_max_pages (fls(CPUs) * 32 MiB of pages) are lazy, the
 *   drain_vmap_work item purges them; vm_unmap_aliases purges them now. A purge takes the
 *   vmap_purge_lock mutex and flushes the kernel range on every CPU (flush_tlb_kernel_range:
 *   on_each_cpu with wait, so IRQs must be on).
 *
 * Simplifications:
 * - one address allocator: first fit over a sorted list of busy areas (upstream: an augmented
 *   rb-tree and per-node pools; the order of the result is the same first fit);
 * - page tables: only PMD and PTE pages are allocated on demand (one PTE page per PMD entry's
 *   PTRS_PER_PTE pages, one PMD page per PUD entry's range); the vmalloc range's PUD pages are
 *   preallocated at boot on x86-64 (preallocate_vmalloc_pages), so none are allocated here.
 *   Kernel page tables are never freed, as upstream never frees them for this range;
 * - the data pages are allocated one by one (upstream's bulk allocator is a fast path of the
 *   same thing); no huge vmalloc mappings; no per-CPU vmap blocks (vm_map_ram), so
 *   vm_unmap_aliases has only the lazy areas to flush;
 * - TLB flush costs: a range flush costs 100 ns per page on each CPU (INVLPG), a full flush
 *   1 us, past tlb_single_page_flush_ceiling (33 pages) a full flush is used, as x86 does.
 *   Rough figures for native hardware; the IPI itself costs what the engine's delivery costs.
 */
import { ProgramError } from '../../scheduler';
import { BUG_ON, WARN, WARN_ON_ONCE } from '../kernel/bug';
import {
  __GFP_FS, __GFP_HIGH, __GFP_IO, __GFP_MEMALLOC, __GFP_NOFAIL, __GFP_NOLOCKDEP, __GFP_NOMEMALLOC, __GFP_NORETRY, __GFP_NOWARN,
  __GFP_RECLAIM, __GFP_RETRY_MAYFAIL, __GFP_ZERO, GFP_KERNEL, current_gfp_context, gfpName,
  memalloc_nofs_restore, memalloc_nofs_save, memalloc_noio_restore, memalloc_noio_save,
} from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock, type mutex } from '../kernel/mutex';
import { NMI_MASK, in_interrupt } from '../kernel/preempt';
import { cond_resched, might_sleep } from '../kernel/sched';
import { on_each_cpu } from '../kernel/smp';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { DECLARE_WORK, queue_work, system_wq, type work_struct } from '../kernel/workqueue';
import { mm } from './mm';
import { __free_pages, alloc_pages } from './page-alloc';
import { fmtAddr, kfree, kmalloc, kmem_cache_alloc, kmem_cache_create, kmem_cache_free, type kmem_cache } from './slab';
import { ENOMEM, EINVAL } from '../kernel/errno';

/** Low 48 bits of x86-64's VMALLOC_START (0xffffc90000000000, 4-level paging). */
export const VMALLOC_START = 0xc90000000000;
/** VMALLOC_SIZE_TB = 32 with 4-level paging; VMALLOC_END is inclusive upstream, exclusive here. */
export const VMALLOC_END = VMALLOC_START + 32 * 2 ** 40;
/** x86's tlb_single_page_flush_ceiling: past it a range flush is a full flush. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;
/** INVLPG of one kernel page on one CPU. */
export const TLB_FLUSH_PAGE_NS = 100;
/** A full TLB flush on one CPU. */
export const TLB_FLUSH_ALL_NS = 1_000;
/** GFP_RECLAIM_MASK (mm/internal.h): what nested allocations inherit from the caller's gfp. */
export const GFP_RECLAIM_MASK = __GFP_RECLAIM | __GFP_HIGH | __GFP_IO | __GFP_FS | __GFP_NOWARN | __GFP_RETRY_MAYFAIL | __GFP_NOFAIL | __GFP_NORETRY | __GFP_MEMALLOC | __GFP_NOMEMALLOC | __GFP_NOLOCKDEP;
/** GFP_PGTABLE_KERNEL: kernel page tables are zeroed GFP_KERNEL pages. */
export const GFP_PGTABLE_KERNEL = GFP_KERNEL | __GFP_ZERO;
/** sizeof(struct vmap_area) and sizeof(struct vm_struct) on x86-64. */
const VMAP_AREA_SIZE = 64;
const VM_STRUCT_SIZE = 64;


export type VmKind = 'vmalloc' | 'vmap' | 'ioremap';

/** struct vmap_area: a busy range of the vmalloc space (the guard page included). */
interface VmapArea {
  start: number;
  end: number;
  /** Its struct vmap_area object (a slab address). */
  obj: number;
  lazy: boolean;
}

/** struct vm_struct. */
export class vm_struct {
  /** Data pages (vmalloc: owned; vmap: the caller's). */
  pages: number[] = [];
  /** The page array's address (kmalloc or nested vmalloc), 0 if none. */
  pagesArray = 0;
  pagesArrayVmalloc = false;
  /** ioremap: the physical address mapped. */
  physAddr = -1;
  constructor(
    readonly addr: number,
    /** Bytes, without the guard page. */
    readonly size: number,
    readonly kind: VmKind,
    readonly va: VmapArea,
    /** The vm_struct's own kmalloc address. */
    readonly obj: number,
  ) {}
}

interface VmState {
  /** Busy areas (live and lazily freed), sorted by start. */
  readonly busy: VmapArea[];
  readonly areas: Map<number, vm_struct>;
  readonly lazy: VmapArea[];
  lazyPages: number;
  /** PTE pages by PMD-entry index, PMD pages by PUD-entry index: pfns. */
  readonly ptePages: Map<number, number>;
  readonly pmdPages: Map<number, number>;
  /** Effective gfp (after the task's memalloc scope) of each page-table allocation, in order. */
  readonly pgtableGfps: number[];
  readonly purgeLock: mutex;
  readonly vmapAreaCache: kmem_cache;
  /** vfree_deferred, per CPU: the addresses and the work item that frees them. */
  readonly deferred: { list: number[]; work: work_struct }[];
  readonly drainWork: work_struct;
}

const states = new WeakMap<Machine, VmState>();

function state(m: Machine): VmState {
  let s = states.get(m);
  if (s !== undefined) return s;
  const deferred = m.cpus.map((c) => {
    const d = { list: [] as number[], work: null as unknown as work_struct };
    d.work = DECLARE_WORK(m, `vfree_deferred/${c.id}`, function* delayed_vfree_work(cur: Task) {
      while (d.list.length > 0) yield* vfree(cur, d.list.shift()!);
    });
    return d;
  });
  s = {
    busy: [],
    areas: new Map(),
    lazy: [],
    lazyPages: 0,
    ptePages: new Map(),
    pmdPages: new Map(),
    pgtableGfps: [],
    purgeLock: DEFINE_MUTEX(m, 'vmap_purge_lock'),
    vmapAreaCache: kmem_cache_create(m, 'vmap_area', VMAP_AREA_SIZE),
    deferred,
    drainWork: DECLARE_WORK(m, 'drain_vmap_work', function* drain_vmap_area_work(cur: Task) {
      const st = state(m);
      yield* mutex_lock(cur, st.purgeLock);
      yield* purgeLazy(cur, st);
      yield* mutex_unlock(cur, st.purgeLock);
    }),
  };
  states.set(m, s);
  return s;
}

const pageSize = (m: Machine): number => mm(m).phys.pageSize;
/** PTRS_PER_PTE (= PTRS_PER_PMD): a page-table page holds pageSize / 8 entries. */
const ptrsPerTable = (m: Machine): number => pageSize(m) / 8;

/** lazy_max_pages(): fls(num_online_cpus()) * (32 MiB / PAGE_SIZE). */
export function lazy_max_pages(m: Machine): number {
  const fls = Math.floor(Math.log2(m.cpus.length)) + 1;
  return fls * Math.floor((32 * 1024 * 1024) / pageSize(m));
}

/** Effective page-table allocation gfps seen so far (after memalloc scopes), for tests and reports. */
export function vmap_pgtable_gfps(m: Machine): readonly number[] {
  return state(m).pgtableGfps;
}

/** The live vm area containing `addr`, or null (find_vm_area). */
export function find_vm_area(m: Machine, addr: number): vm_struct | null {
  return state(m).areas.get(addr) ?? null;
}

/** Pages of kernel page tables allocated for the vmalloc range so far. */
export function vmap_pgtable_pages(m: Machine): number {
  const st = state(m);
  return st.ptePages.size + st.pmdPages.size;
}

/** Lazily freed pages waiting for a purge. */
export function vmap_lazy_pages(m: Machine): number {
  return state(m).lazyPages;
}

/** First fit of `size` bytes aligned to `align` in [VMALLOC_START, VMALLOC_END). */
function firstFit(st: VmState, size: number, align: number): number {
  let cand = VMALLOC_START;
  for (const a of st.busy) {
    if (cand + size <= a.start) break;
    if (a.end > cand) cand = Math.ceil(a.end / align) * align;
  }
  return cand + size <= VMALLOC_END ? cand : -1;
}

function insertBusy(st: VmState, va: VmapArea): void {
  let i = st.busy.length;
  while (i > 0 && st.busy[i - 1].start > va.start) i--;
  st.busy.splice(i, 0, va);
}

/** ARM: does TLB maintenance need IPIs (no hardware broadcast), per machine (default true). */
const armTlbBroadcast = new WeakMap<Machine, boolean>();

/**
 * tlb_ops_need_broadcast() on ARM (arch/arm/include/asm/smp_plat.h): an SMP whose TLB
 * maintenance is not broadcast by the hardware (ARM11 MPCore; ID_MMFR3 maintenance broadcast
 * < 1) must flush other CPUs' TLBs by IPI. The model's default for an 'arm' machine with more
 * than one CPU is true; arm_set_tlb_ops_need_broadcast(m, false) gives a Cortex-A9/A15 MP.
 */
export function tlb_ops_need_broadcast(m: Machine): boolean {
  return m.cpus.length > 1 && (armTlbBroadcast.get(m) ?? true);
}

export function arm_set_tlb_ops_need_broadcast(m: Machine, v: boolean): void {
  armTlbBroadcast.set(m, v);
}

/**
 * flush_tlb_kernel_range(start, end).
 * x86: on_each_cpu(do_kernel_range_flush or do_flush_tlb_all, wait=1), so every CPU takes an
 * IPI and the caller spins for them.
 * ARM (arch/arm/kernel/smp_tlb.c): on_each_cpu(ipi_flush_tlb_kernel_range, &ta, 1) when
 * tlb_ops_need_broadcast(), else local_flush_tlb_kernel_range (the hardware broadcasts it); a
 * page-by-page flush either way.
 */
export function* flush_tlb_kernel_range(cur: Task, start: number, end: number): KernelBody<void> {
  const m = cur.cpu.machine;
  const pages = Math.ceil((end - start) / pageSize(m));
  mm(m).count('tlb_flush_kernel');
  if (m.arch === 'arm') {
    const local = armRangeFlush(pages);
    if (tlb_ops_need_broadcast(m)) yield* fn(cur, 'flush_tlb_kernel_range', on_each_cpu(cur, local, true));
    else yield* fn(cur, 'flush_tlb_kernel_range', local(cur));
    return;
  }
  const all = pages > TLB_SINGLE_PAGE_FLUSH_CEILING;
  yield* fn(cur, 'flush_tlb_kernel_range', on_each_cpu(cur, all ? do_flush_tlb_all : rangeFlush(pages), true));
}

function armRangeFlush(pages: number): (cur: Task) => KernelBody<void> {
  return function* ipi_flush_tlb_kernel_range(cur: Task) {
    yield* fn(cur, 'ipi_flush_tlb_kernel_range', (function* () {
      yield cur.thread.work(pages * TLB_FLUSH_PAGE_NS); // local_flush_tlb_kernel_range
    })());
  };
}

/** flush_tlb_all(): a full flush on every CPU (on_each_cpu with wait). */
export function* flush_tlb_all(cur: Task): KernelBody<void> {
  mm(cur.cpu.machine).count('tlb_flush_kernel');
  yield* fn(cur, 'flush_tlb_all', on_each_cpu(cur, do_flush_tlb_all, true));
}

function* do_flush_tlb_all(cur: Task): KernelBody<void> {
  yield cur.thread.work(TLB_FLUSH_ALL_NS);
}

function rangeFlush(pages: number): (cur: Task) => KernelBody<void> {
  return function* do_kernel_range_flush(cur: Task) {
    yield cur.thread.work(pages * TLB_FLUSH_PAGE_NS);
  };
}

/**
 * __purge_vmap_area_lazy: flush the lazy areas' range on every CPU and give their addresses
 * back. Caller holds vmap_purge_lock. False when there was nothing to purge.
 */
function* purgeLazy(cur: Task, st: VmState): KernelBody<boolean> {
  if (st.lazy.length === 0) return false;
  const list = st.lazy.splice(0);
  let start = Infinity;
  let end = -Infinity;
  for (const va of list) {
    start = Math.min(start, va.start);
    end = Math.max(end, va.end);
  }
  yield* fn(cur, '__purge_vmap_area_lazy', (function* () {
    yield* flush_tlb_kernel_range(cur, start, end);
    for (const va of list) {
      const i = st.busy.indexOf(va);
      if (i >= 0) st.busy.splice(i, 1);
      st.lazyPages -= (va.end - va.start) / pageSize(cur.cpu.machine);
      yield* kmem_cache_free(cur, st.vmapAreaCache, va.obj);
    }
  })());
  mm(cur.cpu.machine).count('vmap_purges');
  return true;
}

/** purge_vmap_area_lazy(): the mutex, then the purge. */
function* purge_vmap_area_lazy(cur: Task, st: VmState): KernelBody<void> {
  yield* mutex_lock(cur, st.purgeLock);
  yield* purgeLazy(cur, st);
  yield* mutex_unlock(cur, st.purgeLock);
}

/**
 * vm_unmap_aliases(): purge every lazily freed area now, flushing the kernel TLB on all CPUs if
 * there was any, under vmap_purge_lock (so it may sleep). set_memory_* calls it first.
 */
export function* vm_unmap_aliases(cur: Task): KernelBody<void> {
  const st = state(cur.cpu.machine);
  yield* fn(cur, 'vm_unmap_aliases', (function* () {
    yield* mutex_lock(cur, st.purgeLock);
    yield* purgeLazy(cur, st);
    yield* mutex_unlock(cur, st.purgeLock);
  })());
}

/** alloc_vmap_area: might_sleep, the struct vmap_area, a first-fit range (purging once if full). */
function* alloc_vmap_area(cur: Task, size: number, gfp: number): KernelBody<VmapArea | null> {
  const m = cur.cpu.machine;
  const st = state(m);
  yield* might_sleep(cur, 'alloc_vmap_area');
  const obj = yield* kmem_cache_alloc(cur, st.vmapAreaCache, gfp & GFP_RECLAIM_MASK);
  if (obj === 0) return null;
  const align = pageSize(m);
  let start = firstFit(st, size, align);
  if (start < 0 && st.lazy.length > 0) {
    yield* purge_vmap_area_lazy(cur, st);
    start = firstFit(st, size, align);
  }
  if (start < 0) {
    if (!(gfp & __GFP_NOWARN) && m.log.ratelimit('vmap_alloc_fail', 5_000_000_000, 10)) {
      m.log.printk(cur.cpu.id, `vmap allocation for size ${size} failed: use vmalloc=<size> to increase size`);
    }
    yield* kmem_cache_free(cur, st.vmapAreaCache, obj);
    return null;
  }
  const va: VmapArea = { start, end: start + size, obj, lazy: false };
  insertBusy(st, va);
  return va;
}

/**
 * __get_vm_area_node: the vm_struct (kzalloc with gfp & GFP_RECLAIM_MASK) and its vmap area,
 * `size` plus the guard page.
 */
function* get_vm_area_node(cur: Task, size: number, kind: VmKind, gfp: number): KernelBody<vm_struct | null> {
  const m = cur.cpu.machine;
  const obj = yield* kmalloc(cur, VM_STRUCT_SIZE, (gfp & GFP_RECLAIM_MASK) | __GFP_ZERO);
  if (obj === 0) return null;
  const va = yield* alloc_vmap_area(cur, size + pageSize(m), gfp);
  if (va === null) {
    yield* kfree(cur, obj);
    return null;
  }
  const area = new vm_struct(va.start, size, kind, va, obj);
  state(m).areas.set(area.addr, area);
  return area;
}

/** get_vm_area(size, flags): a reserved range of the vmalloc space (ioremap uses VM_IOREMAP). */
export function* get_vm_area(cur: Task, size: number, kind: VmKind = 'ioremap'): KernelBody<vm_struct | null> {
  const ps = pageSize(cur.cpu.machine);
  if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`get_vm_area: size must be a positive integer, got ${size}`);
  return yield* fn(cur, 'get_vm_area', get_vm_area_node(cur, Math.ceil(size / ps) * ps, kind, GFP_KERNEL));
}

/**
 * get_vm_area_caller(size, flags, caller): a range of the vmalloc space for map_vm_area, freed
 * with vunmap (the vm_struct with GFP_KERNEL: it may sleep).
 */
export function* get_vm_area_caller(cur: Task, size: number): KernelBody<vm_struct | null> {
  const ps = pageSize(cur.cpu.machine);
  if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`get_vm_area_caller: size must be a positive integer, got ${size}`);
  return yield* fn(cur, 'get_vm_area_caller', get_vm_area_node(cur, Math.ceil(size / ps) * ps, 'vmap', GFP_KERNEL));
}

/**
 * map_vm_area(area, prot, pages) (v3.18; vmap_pages_range later): map `pfns` into a
 * get_vm_area_caller area. The page tables it may need (pud_alloc / pmd_alloc /
 * pte_alloc_kernel) are GFP_KERNEL whatever the caller's context. 0 or -ENOMEM.
 */
export function* map_vm_area(cur: Task, area: vm_struct, pfns: readonly number[]): KernelBody<number> {
  return yield* fn(cur, 'map_vm_area', (function* () {
    const m = cur.cpu.machine;
    if (area.kind !== 'vmap' || pfns.length * pageSize(m) < area.size) throw new ProgramError(`map_vm_area: ${pfns.length} pages for a ${area.kind} area of ${area.size} bytes`);
    const ret = yield* vmap_pages_range(cur, area.addr, area.addr + area.size);
    if (ret === 0) {
      area.pages = pfns.slice(0, area.size / pageSize(m));
      mm(m).count('vmap');
    }
    return ret;
  })());
}

/** One page-table page: GFP_PGTABLE_KERNEL in whatever memalloc scope the task is in. */
function* pgtableAlloc(cur: Task, st: VmState, what: string): KernelBody<number> {
  st.pgtableGfps.push(current_gfp_context(cur, GFP_PGTABLE_KERNEL));
  const pfn = yield* fn(cur, what, alloc_pages(cur, GFP_PGTABLE_KERNEL, 0));
  if (pfn >= 0) mm(cur.cpu.machine).count('vmap_pgtable_pages');
  return pfn;
}

/**
 * vmap_range_noflush / vmap_pages_range: make sure every PMD and PTE page covering
 * [start, end) exists. 0 or -ENOMEM.
 */
function* vmap_pages_range(cur: Task, start: number, end: number): KernelBody<number> {
  const m = cur.cpu.machine;
  const st = state(m);
  const ps = pageSize(m);
  const ptrs = ptrsPerTable(m);
  const pmdSpan = ps * ptrs; // bytes one PTE page maps (2 MiB with 4K pages)
  const pudSpan = pmdSpan * ptrs; // bytes one PMD page maps (1 GiB)
  return yield* fn(cur, 'vmap_pages_range', (function* () {
    // 32-bit ARM without LPAE: two levels, pud and pmd folded into the pgd (one pgd entry, a
    // pair of hardware entries, covers 2 MiB: one PTE page), so pmd_alloc allocates nothing.
    const folded = m.arch === 'arm';
    for (let pmdIdx = Math.floor(start / pmdSpan); pmdIdx * pmdSpan < end; pmdIdx++) {
      if (st.ptePages.has(pmdIdx)) continue;
      const pudIdx = Math.floor((pmdIdx * pmdSpan) / pudSpan);
      if (!folded && !st.pmdPages.has(pudIdx)) {
        const pmd = yield* pgtableAlloc(cur, st, '__pmd_alloc');
        if (pmd < 0) return -ENOMEM;
        if (!st.pmdPages.has(pudIdx)) st.pmdPages.set(pudIdx, pmd);
        else __free_pages(cur, pmd, 0); // raced with another mapper: pmd_populate lost, free ours
      }
      if (st.ptePages.has(pmdIdx)) continue;
      const pte = yield* pgtableAlloc(cur, st, '__pte_alloc_kernel');
      if (pte < 0) return -ENOMEM;
      if (!st.ptePages.has(pmdIdx)) st.ptePages.set(pmdIdx, pte);
      else __free_pages(cur, pte, 0);
    }
    return 0;
  })());
}

/** warn_alloc for vmalloc failures: "vmalloc error: size N, ..." (ratelimited, unless __GFP_NOWARN). */
function vmallocWarn(cur: Task, gfp: number, size: number, what: string): void {
  const m = cur.cpu.machine;
  mm(m).count('vmalloc_fail');
  if (gfp & __GFP_NOWARN) return;
  if (!m.log.ratelimit('warn_alloc', 5_000_000_000, 10)) return;
  m.log.printk(cur.cpu.id, `${cur.comm}: vmalloc error: size ${size}, ${what}, mode:0x${gfp.toString(16)}(${gfpName(gfp)}), nodemask=(null)`);
}

/** Undo a half-built vmalloc area: pages, page array, range (lazily), vm_struct. */
function* teardown(cur: Task, area: vm_struct, freePages: boolean): KernelBody<void> {
  const st = state(cur.cpu.machine);
  st.areas.delete(area.addr);
  if (freePages) for (const pfn of area.pages) __free_pages(cur, pfn, 0);
  area.pages = [];
  if (area.pagesArray !== 0) {
    if (area.pagesArrayVmalloc) yield* vfree(cur, area.pagesArray);
    else yield* kfree(cur, area.pagesArray);
  }
  yield* freeVmapAreaNoflush(cur, st, area.va);
  yield* kfree(cur, area.obj);
}

/**
 * free_vmap_area_noflush: the range goes on the purge list; past lazy_max_pages the
 * drain_vmap_work item is scheduled to purge.
 */
function* freeVmapAreaNoflush(cur: Task, st: VmState, va: VmapArea): KernelBody<void> {
  const m = cur.cpu.machine;
  va.lazy = true;
  st.lazy.push(va);
  st.lazyPages += (va.end - va.start) / pageSize(m);
  if (st.lazyPages > lazy_max_pages(m) && !st.drainWork.pending) yield* queue_work(cur, system_wq(m), st.drainWork);
}

/** __vmalloc_area_node: page array, data pages, page tables (in the caller's scope). */
function* vmallocAreaNode(cur: Task, area: vm_struct, gfp: number): KernelBody<boolean> {
  const m = cur.cpu.machine;
  const ps = pageSize(m);
  const nr = area.size / ps;
  const arraySize = nr * 8;
  const nestedGfp = (gfp & GFP_RECLAIM_MASK) | __GFP_ZERO;
  if (arraySize > ps) {
    area.pagesArray = yield* __vmalloc(cur, arraySize, nestedGfp);
    area.pagesArrayVmalloc = true;
  } else {
    area.pagesArray = yield* kmalloc(cur, arraySize, nestedGfp);
  }
  if (area.pagesArray === 0) {
    vmallocWarn(cur, gfp, area.size, `failed to allocated page array size ${arraySize}`);
    yield* teardown(cur, area, true);
    return false;
  }
  // vm_area_alloc_pages: order 0, __GFP_NOWARN per page, one warning for the whole area.
  const got = yield* fn(cur, 'vm_area_alloc_pages', (function* () {
    for (let i = 0; i < nr; i++) {
      const pfn = yield* alloc_pages(cur, gfp | __GFP_NOWARN, 0);
      if (pfn < 0) break;
      area.pages.push(pfn);
    }
    return area.pages.length;
  })());
  mm(m).count('vmalloc_pages', got);
  if (got < nr) {
    vmallocWarn(cur, gfp, area.size, 'page order 0, failed to allocate pages');
    yield* teardown(cur, area, true);
    return false;
  }
  // Page tables are GFP_KERNEL: narrow them to the caller's constraint with a scope.
  const fsio = gfp & (__GFP_FS | __GFP_IO);
  let ret: number;
  if (fsio === __GFP_IO) {
    const flags = memalloc_nofs_save(cur);
    ret = yield* vmap_pages_range(cur, area.addr, area.addr + area.size);
    memalloc_nofs_restore(cur, flags);
  } else if (fsio === 0) {
    const flags = memalloc_noio_save(cur);
    ret = yield* vmap_pages_range(cur, area.addr, area.addr + area.size);
    memalloc_noio_restore(cur, flags);
  } else {
    ret = yield* vmap_pages_range(cur, area.addr, area.addr + area.size);
  }
  if (ret !== 0) {
    vmallocWarn(cur, gfp, area.size, 'failed to map pages');
    yield* teardown(cur, area, true);
    return false;
  }
  return true;
}

/**
 * __vmalloc(size, gfp) (__vmalloc_node_range): 0 (NULL) on failure. Size 0 is a
 * WARN_ON_ONCE and NULL, as upstream.
 */
export function* __vmalloc(cur: Task, size: number, gfp: number): KernelBody<number> {
  if (!Number.isSafeInteger(size) || size < 0) throw new ProgramError(`__vmalloc: size must be a non-negative integer, got ${size}`);
  return yield* fn(cur, '__vmalloc_node_range', (function* () {
    const m = cur.cpu.machine;
    if (WARN_ON_ONCE(cur, size === 0, '__vmalloc_node_range: size 0')) return 0;
    const ps = pageSize(m);
    const real = Math.ceil(size / ps) * ps;
    if (real / ps > mm(m).phys.nrPages) {
      vmallocWarn(cur, gfp, real, 'exceeds total pages');
      return 0;
    }
    const area = yield* get_vm_area_node(cur, real, 'vmalloc', gfp);
    if (area === null) {
      vmallocWarn(cur, gfp, real, 'vm_struct allocation failed');
      return 0;
    }
    if (!(yield* fn(cur, '__vmalloc_area_node', vmallocAreaNode(cur, area, gfp)))) return 0;
    mm(m).count('vmalloc');
    return area.addr;
  })());
}

/** vmalloc(size): GFP_KERNEL. */
export function* vmalloc(cur: Task, size: number, gfp: number = GFP_KERNEL): KernelBody<number> {
  return yield* fn(cur, 'vmalloc', __vmalloc(cur, size, gfp));
}

/** vzalloc(size). */
export function* vzalloc(cur: Task, size: number, gfp: number = GFP_KERNEL): KernelBody<number> {
  return yield* fn(cur, 'vzalloc', __vmalloc(cur, size, gfp | __GFP_ZERO));
}

/**
 * remove_vm_area: might_sleep, unmap (page tables stay), and free the range lazily. Returns the
 * area, or null when `addr` is not the start of a live area.
 */
function* remove_vm_area(cur: Task, addr: number): KernelBody<vm_struct | null> {
  const st = state(cur.cpu.machine);
  yield* might_sleep(cur, 'remove_vm_area');
  const area = st.areas.get(addr);
  if (area === undefined) return null;
  st.areas.delete(addr);
  yield* freeVmapAreaNoflush(cur, st, area.va);
  return area;
}

/** vfree_atomic: queue the address on this CPU's deferred list; its work item vfree()s it. */
export function* vfree_atomic(cur: Task, addr: number): KernelBody<void> {
  const m = cur.cpu.machine;
  BUG_ON(cur, (cur.preempt_count & NMI_MASK) !== 0, 'vfree_atomic in NMI');
  if (addr === 0) return;
  const d = state(m).deferred[cur.cpu.id];
  d.list.push(addr);
  mm(m).count('vfree_deferred');
  yield* queue_work(cur, system_wq(m), d.work);
}

/**
 * vfree(addr): from interrupt context deferred to a work item (vfree_atomic); otherwise may
 * sleep: unmap, free the pages (cond_resched), the page array and the vm_struct. Freeing an
 * address that is not a vmalloc area warns ("Trying to vfree() nonexistent vm area").
 */
export function* vfree(cur: Task, addr: number): KernelBody<void> {
  yield* fn(cur, 'vfree', (function* () {
    if (in_interrupt(cur.preempt_count)) {
      yield* vfree_atomic(cur, addr);
      return;
    }
    BUG_ON(cur, (cur.preempt_count & NMI_MASK) !== 0, 'vfree in NMI');
    yield* might_sleep(cur, 'vfree');
    if (addr === 0) return;
    const area = yield* remove_or_warn(cur, addr, 'vfree');
    if (area === null) return;
    if (area.kind !== 'vmalloc') throw new ProgramError(`vfree(${fmtAddr(addr)}) of a ${area.kind} area: use vunmap`);
    const m = cur.cpu.machine;
    for (const pfn of area.pages) __free_pages(cur, pfn, 0);
    mm(m).count('vfree_pages', area.pages.length);
    area.pages = [];
    yield* cond_resched(cur);
    if (area.pagesArrayVmalloc) yield* vfree(cur, area.pagesArray);
    else yield* kfree(cur, area.pagesArray);
    yield* kfree(cur, area.obj);
  })());
}

/** remove_vm_area, warning as vfree/vunmap do when the address maps nothing. */
function* remove_or_warn(cur: Task, addr: number, what: string): KernelBody<vm_struct | null> {
  const area = yield* remove_vm_area(cur, addr);
  if (area === null) WARN(cur, true, `Trying to ${what}() nonexistent vm area (${fmtAddr(addr)})`);
  return area;
}

/**
 * vmap(pages, count): map the caller's pages at a new vmalloc-range address (page tables with
 * GFP_KERNEL: vmap has no gfp). 0 on failure.
 */
export function* vmap(cur: Task, pfns: readonly number[], count: number): KernelBody<number> {
  return yield* fn(cur, 'vmap', (function* () {
    const m = cur.cpu.machine;
    yield* might_sleep(cur, 'vmap');
    if (!Number.isSafeInteger(count) || count < 0 || count > pfns.length) throw new ProgramError(`vmap: count ${count} with ${pfns.length} pages`);
    if (count > mm(m).phys.nrPages) return 0;
    const area = yield* get_vm_area_node(cur, count * pageSize(m), 'vmap', GFP_KERNEL);
    if (area === null) return 0;
    area.pages = pfns.slice(0, count);
    if ((yield* vmap_pages_range(cur, area.addr, area.addr + area.size)) !== 0) {
      yield* teardown(cur, area, false);
      return 0;
    }
    mm(m).count('vmap');
    return area.addr;
  })());
}

/**
 * vunmap(addr): BUG in interrupt context; may sleep; the pages stay the caller's. An unknown
 * address warns ("Trying to vunmap() nonexistent vm area").
 */
export function* vunmap(cur: Task, addr: number): KernelBody<void> {
  yield* fn(cur, 'vunmap', (function* () {
    BUG_ON(cur, in_interrupt(cur.preempt_count), 'vunmap in interrupt');
    yield* might_sleep(cur, 'vunmap');
    if (addr === 0) return;
    const area = yield* remove_or_warn(cur, addr, 'vunmap');
    if (area === null) return;
    if (area.kind === 'vmalloc') throw new ProgramError(`vunmap(${fmtAddr(addr)}) of a vmalloc area: use vfree`);
    area.pages = [];
    yield* kfree(cur, area.obj);
  })());
}

/** free_vm_area(area): remove a get_vm_area range (and an ioremap mapping in it). */
export function* free_vm_area(cur: Task, area: vm_struct): KernelBody<void> {
  yield* fn(cur, 'free_vm_area', (function* () {
    const got = yield* remove_vm_area(cur, area.addr);
    if (got === null) {
      WARN(cur, true, `Trying to free nonexistent vm area (${fmtAddr(area.addr)})`);
      return;
    }
    yield* kfree(cur, area.obj);
  })());
}

/**
 * ioremap_page_range(addr, end, phys_addr): map MMIO at [addr, end) of a VM_IOREMAP area from
 * get_vm_area, allocating page tables (GFP_KERNEL). 0, -EINVAL (not an ioremap area) or -ENOMEM.
 */
export function* ioremap_page_range(cur: Task, addr: number, end: number, phys: number): KernelBody<number> {
  return yield* fn(cur, 'ioremap_page_range', (function* () {
    const m = cur.cpu.machine;
    const st = state(m);
    const area = st.areas.get(addr);
    if (area === undefined || area.kind !== 'ioremap' || end > area.addr + area.size || end <= addr) {
      WARN(cur, true, `vm_area at addr ${fmtAddr(addr)} is not marked as VM_IOREMAP`);
      return -EINVAL;
    }
    const ret = yield* vmap_pages_range(cur, addr, end);
    if (ret === 0) {
      area.physAddr = phys;
      mm(m).count('ioremap');
    }
    return ret;
  })());
}
