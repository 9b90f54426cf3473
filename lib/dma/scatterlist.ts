/**
 * struct scatterlist (include/linux/scatterlist.h): a table of (page, offset, length) segments
 * with the bus address and length each gets when mapped (dma_address, dma_length).
 *
 * Simplified: a table is a plain array (no chaining, no page_link tag bits, no sg_table with
 * orig_nents); page_link holds the first pfn of the segment; a segment may span contiguous pages.
 */
import { ProgramError } from '../../scheduler';
import type { Machine } from '../kernel/machine';
import { mmIfPresent } from '../mm/mm';
import { DMA_MAPPING_ERROR } from './attrs';

export class scatterlist {
  /** sg_page(): the first pfn of the segment. */
  page_link = -1;
  offset = 0;
  length = 0;
  /** Filled by dma_map_sg. */
  dma_address: number = DMA_MAPPING_ERROR;
  dma_length = 0;
}

/** sg_init_table(sgl, nents): `n` empty entries. */
export function sg_init_table(n: number): scatterlist[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new ProgramError(`sg_init_table: nents must be a non-negative integer, got ${n}`);
  const out: scatterlist[] = [];
  for (let i = 0; i < n; i++) out.push(new scatterlist());
  return out;
}

/** sg_set_page(sg, page, len, offset). */
export function sg_set_page(sg: scatterlist, pfn: number, len: number, offset: number): void {
  if (!Number.isSafeInteger(pfn) || pfn < 0) throw new ProgramError(`sg_set_page: bad pfn ${pfn}`);
  if (!Number.isSafeInteger(len) || len < 0) throw new ProgramError(`sg_set_page: length must be a non-negative integer, got ${len}`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new ProgramError(`sg_set_page: offset must be a non-negative integer, got ${offset}`);
  sg.page_link = pfn;
  sg.length = len;
  sg.offset = offset;
}

export function sg_page(sg: scatterlist): number {
  return sg.page_link;
}

export function sg_dma_address(sg: scatterlist): number {
  return sg.dma_address;
}

export function sg_dma_len(sg: scatterlist): number {
  return sg.dma_length;
}

/** sg_phys(sg): the segment's physical address (4 KiB pages without a memory model). */
export function sg_phys(m: Machine, sg: scatterlist): number {
  const model = mmIfPresent(m);
  const base = model === null ? sg.page_link * 4096 : model.phys.pfnToPhys(sg.page_link);
  return base + sg.offset;
}

/** for_each_sg(sgl, sg, nents, i): `for (const [i, sg] of for_each_sg(sgl, nents))`. */
export function* for_each_sg(sgl: readonly scatterlist[], nents: number): Generator<[number, scatterlist], void, unknown> {
  if (!Number.isSafeInteger(nents) || nents < 0 || nents > sgl.length) throw new ProgramError(`for_each_sg: nents ${nents} with a table of ${sgl.length}`);
  for (let i = 0; i < nents; i++) yield [i, sgl[i]];
}
