/**
 * The IOVA allocator of an IOMMU domain (drivers/iommu/iova.c, v6.12): alloc_iova's top-down,
 * size-aligned search below a limit pfn over the allocated ranges, and the per-CPU range caches
 * (the rcache) that alloc_iova_fast / free_iova_fast try first for small ranges.
 *
 * Simplified: iova_rbtree_lock is a cost, not a contended lock; the ranges are a sorted array
 * rather than an rbtree (the same answers); the rcache is one bounded stack per CPU and size
 * class instead of loaded/previous magazines and a depot. Costs are the model's estimates.
 */
import type { KernelBody } from '../../kernel/machine';
import type { Task } from '../../kernel/task';
import { IOVA_ALLOC_NS, IOVA_RCACHE_NS } from '../costs';

/** IOVA_RANGE_CACHE_MAX_SIZE: ranges below 2^(6-1) granules go through the rcache. */
export const IOVA_RANGE_CACHE_MAX_SIZE = 6;
/** IOVA_MAG_SIZE (v6.x); a CPU caches up to two magazines' worth per size here. */
const IOVA_MAG_SIZE = 127;

export const M_IOMMU_IOVA_FAILURES = 'iommu.iova_alloc_failures';
export const M_IOMMU_RCACHE_HITS = 'iommu.iova_rcache_hits';

/** struct iova_domain: allocated ranges in granule units and the per-CPU rcache. */
export class iova_domain {
  /** Allocated IOVA ranges in granule units [lo, hi), sorted by lo. */
  private readonly ranges: { lo: number; hi: number }[] = [];
  /** Per-CPU rcache: cpu -> log2(size in granules) -> cached range starts (LIFO). */
  private readonly rcache = new Map<number, number[][]>();

  constructor(
    /** The smallest page size of the owning domain (iovad->granule). */
    readonly granule: number,
    /** Lowest IOVA pfn handed out (IOVA 0 is never used). */
    readonly start_pfn: number,
  ) {}

  /** Allocated granules (mapped or not). */
  get allocatedPfns(): number {
    let n = 0;
    for (const r of this.ranges) n += r.hi - r.lo;
    return n;
  }

  private insertRange(lo: number, hi: number): void {
    let a = 0;
    let b = this.ranges.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (this.ranges[mid].lo < lo) a = mid + 1;
      else b = mid;
    }
    this.ranges.splice(a, 0, { lo, hi });
  }

  private findRange(lo: number): number {
    let a = 0;
    let b = this.ranges.length - 1;
    while (a <= b) {
      const mid = (a + b) >> 1;
      const r = this.ranges[mid];
      if (r.lo === lo) return mid;
      if (r.lo < lo) a = mid + 1;
      else b = mid - 1;
    }
    return -1;
  }

  /**
   * alloc_iova (size_aligned): the highest `size`-granule range ending at or below `limitPfn`,
   * starting at a multiple of the size rounded up to a power of two. -1 when none fits.
   */
  alloc_iova(size: number, limitPfn: number): number {
    let align = 1;
    while (align < size) align *= 2;
    let top = limitPfn + 1; // exclusive end of the current gap
    for (let i = this.ranges.length - 1; i >= -1; i--) {
      const floor = i >= 0 ? this.ranges[i].hi : this.start_pfn;
      if (i >= 0 && this.ranges[i].lo >= top) continue;
      if (top - floor >= size) {
        const pfn = Math.floor((top - size) / align) * align;
        if (pfn >= floor && pfn >= this.start_pfn) {
          this.insertRange(pfn, pfn + size);
          return pfn;
        }
      }
      if (i >= 0) top = Math.min(top, this.ranges[i].lo);
    }
    return -1;
  }

  /** free_iova: give the range starting at `pfn` back to the tree; false when none starts there. */
  free_iova(pfn: number): boolean {
    const i = this.findRange(pfn);
    if (i < 0) return false;
    this.ranges.splice(i, 1);
    return true;
  }

  /** iova_rcache_get: a cached range of this size class below the limit, from this CPU. */
  iova_rcache_get(cpu: number, logSize: number, limitPfn: number, size: number): number {
    const st = this.rcache.get(cpu)?.[logSize];
    if (st === undefined) return -1;
    for (let i = st.length - 1; i >= 0; i--) {
      const pfn = st[i];
      if (pfn + size - 1 <= limitPfn) {
        st.splice(i, 1);
        return pfn;
      }
    }
    return -1;
  }

  /** iova_rcache_insert: keep a freed small range on this CPU; false when the cache is full. */
  iova_rcache_insert(cpu: number, logSize: number, pfn: number): boolean {
    let per = this.rcache.get(cpu);
    if (per === undefined) {
      per = Array.from({ length: IOVA_RANGE_CACHE_MAX_SIZE }, () => [] as number[]);
      this.rcache.set(cpu, per);
    }
    const st = per[logSize];
    if (st.length >= 2 * IOVA_MAG_SIZE) return false;
    st.push(pfn);
    return true;
  }
}

/** order_base_2 of a range length in granules, or -1 when it is too large for the rcache. */
function rcacheClass(len: number): number {
  if (len >= 2 ** (IOVA_RANGE_CACHE_MAX_SIZE - 1)) return -1;
  let logSize = 0;
  while (2 ** logSize < len) logSize++;
  return logSize;
}

/**
 * alloc_iova_fast: `len` granules at or below `limitPfn`, from this CPU's rcache when the size
 * is cached (rounded up to its power of two), else from the tree. -1 on failure.
 */
export function* alloc_iova_fast(cur: Task, iovad: iova_domain, len: number, limitPfn: number): KernelBody<number> {
  const logSize = rcacheClass(len);
  if (logSize >= 0) {
    len = 2 ** logSize;
    const pfn = iovad.iova_rcache_get(cur.cpu.id, logSize, limitPfn, len);
    if (pfn >= 0) {
      yield cur.thread.work(IOVA_RCACHE_NS);
      cur.thread.sim.count(M_IOMMU_RCACHE_HITS, 1);
      return pfn;
    }
  }
  yield cur.thread.work(IOVA_ALLOC_NS);
  const pfn = iovad.alloc_iova(len, limitPfn);
  if (pfn < 0) cur.thread.sim.count(M_IOMMU_IOVA_FAILURES, 1);
  return pfn;
}

/** free_iova_fast: small ranges go back to this CPU's rcache, others (and overflow) to the tree. */
export function free_iova_fast(cur: Task, iovad: iova_domain, pfn: number, len: number): void {
  const logSize = rcacheClass(len);
  if (logSize >= 0 && iovad.iova_rcache_insert(cur.cpu.id, logSize, pfn)) return;
  iovad.free_iova(pfn);
}
