/**
 * dma_init: the DMA layer of a machine for one run. With `swiotlb` (a prepared SwiotlbImage or
 * options) the machine gets a bounce-buffer pool; `data: true` tracks memory contents so round
 * trips can be checked byte for byte.
 */
import type { Machine } from '../kernel/machine';
import { phys_contents_enable } from '../mm/contents';
import { mmIfPresent } from '../mm/mm';
import { dma_atomic_pool_init } from './pool';
import { attachDma, DmaState, type DmaOptions } from './state';
import { swiotlb_init, type SwiotlbImage, type SwiotlbOptions } from './swiotlb/setup';

export interface DmaInitOptions extends DmaOptions {
  /** The machine's swiotlb: a prepared image, options, or none. */
  swiotlb?: SwiotlbImage | SwiotlbOptions | null;
  /** Track the bytes in memory (round-trip checks). */
  data?: boolean;
}

export function dma_init(m: Machine, o: DmaInitOptions = {}): DmaState {
  const { swiotlb, data, ...opts } = o;
  if (data) phys_contents_enable(m);
  const model = mmIfPresent(m);
  const st = new DmaState(m, opts, model !== null && model.coco !== 'none');
  attachDma(m, st);
  if (swiotlb !== undefined && swiotlb !== null) swiotlb_init(m, swiotlb);
  // postcore_initcall, after the swiotlb (which may retake the memory image's snapshot)
  dma_atomic_pool_init(m);
  return st;
}
