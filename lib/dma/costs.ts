/**
 * The DMA layer's cost constants: the model's estimates of what cache maintenance, zeroing and
 * the mapping paths' bookkeeping take (not upstream facts; each says what it stands for). One
 * place, so a cost is tuned once for dma-direct, the atomic pools, dma-iommu and ARM32 alike.
 */

/** Cache maintenance (clean / invalidate by VA) per 64-byte line, and the barrier after it. */
export const ARCH_SYNC_NS_PER_LINE = 2;
export const ARCH_SYNC_BARRIER_NS = 20;
/** memset of a fresh coherent buffer. */
export const ZERO_BYTES_PER_NS = 16;
/** The direct path's own bookkeeping per map/unmap (dma_map_page_attrs, phys_to_dma, checks). */
export const DIRECT_MAP_NS = 25;

/** IOMMU: one PTE written or cleared. */
export const IOMMU_PTE_NS = 20;
/** IOMMU: strict-mode invalidation and wait (CMD_SYNC / VT-d wait descriptor). */
export const IOTLB_SYNC_NS = 1500;
/** IOVA: rbtree search under iova_rbtree_lock. */
export const IOVA_ALLOC_NS = 150;
/** IOVA: per-CPU rcache hit. */
export const IOVA_RCACHE_NS = 30;

/** ARM32: writing one page-table entry and cleaning it to the point of unification (set_pte_ext, flush_pmd_entry). */
export const SET_PTE_NS = 10;

/** arch_sync_dma_for_device / _for_cpu / arch_dma_prep_coherent: cache maintenance by VA. */
export function arch_sync_cost(size: number): number {
  return ARCH_SYNC_BARRIER_NS + Math.ceil(size / 64) * ARCH_SYNC_NS_PER_LINE;
}
