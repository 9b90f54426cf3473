/** The memory model: GFP semantics over a buddy allocator, reclaim, swap, OOM, slab, vmalloc, CMA, decryption. */
export * from './config';
export * from './zone';
export * from './physmem';
export * from './fragmenter';
export * from './lru';
export * from './image';
export * from './mm';
export * from './init';
export * from './page-alloc';
export * from './vmscan';
export * from './oom';
export * from './user';
export * from './mempool';
export * from './swap';
export * from './tagged-swap';
