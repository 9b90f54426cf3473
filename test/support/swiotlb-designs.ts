/** The swiotlb designs the DMA suites run, by name. */
import type { PolicySpec } from '../../lib/dma/swiotlb/policy';

/** A design by name, with v2's swiotlb=dynamic on for v2 and the rbtree built on it (off, they are the static pool). */
export function designSpec(name: string): PolicySpec {
  return name === 'v2-list' || name === 'rbtree' ? { name, dynamic: true } : { name };
}
