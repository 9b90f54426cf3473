/** The IOMMU: core domain and mapping API, the IOVA allocator, dma-iommu streaming and coherent allocation. */
export * from './iommu';
export * from './iova';
export * from './dma-iommu';
export * from './dma-iommu-alloc';
// The 2016 allocator is historical (lib/dma/historical/); re-exported so scenario s12 keeps its import.
export * from '../historical/iommu-alloc-2016';
