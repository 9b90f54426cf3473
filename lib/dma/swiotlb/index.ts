/** The swiotlb bounce-buffer engine: pools, areas, the slot search, designs, map/unmap/sync. */
export * from './constants';
export * from './pool';
export * from './mem';
export * from './policy';
export * from './state';
export * from './find';
export * from './map';
export * from './setup';
