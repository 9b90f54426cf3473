/** The DMA layer: devices, dma-direct, atomic pools, IOMMU, DMA-API debug, and the swiotlb. */
export * from './attrs';
export * from './device';
export * from './state';
export * from './init';
export * from './swiotlb';
export * from './debug';
export * from './contiguous';
export * from './costs';
export * from './direct';
export * from './arm32';
export * from './historical/arm32-consistent';
export * from './pool';
export * from './iommu';
export * from './scatterlist';
export * from './mapping';
