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

/**
 * sg_alloc_table_from_pages_segment(sgt, pages, n_pages, offset, size, max_segment, gfp): a
 * table over `pfns` (one entry per page, in buffer order) where runs of physically contiguous
 * pages merge into one segment of at most `maxSegment` bytes (rounded down to whole pages, as
 * the kernel does; below one page is -EINVAL). The first segment starts `offset` bytes into the
 * first page; the table covers `size` bytes. This is how an exporter's table gets its segment
 * lengths: drm_prime_pages_to_sg passes the exporting device's dma_max_mapping_size.
 *
 * Simplified: no chaining and no appending to a previous table (the kernel's `prv`).
 */
export function sg_alloc_table_from_pages_segment(pfns: readonly number[], offset: number, size: number, maxSegment: number, pageSize = 4096): scatterlist[] {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= pageSize) throw new ProgramError(`sg_alloc_table_from_pages_segment: offset ${offset} not within the first page`);
  if (!Number.isSafeInteger(size) || size <= 0 || offset + size > pfns.length * pageSize) throw new ProgramError(`sg_alloc_table_from_pages_segment: size ${size} (offset ${offset}) with ${pfns.length} pages`);
  const maxPages = Math.floor(Math.min(maxSegment, Number.MAX_SAFE_INTEGER) / pageSize);
  if (!(maxPages >= 1)) throw new ProgramError(`sg_alloc_table_from_pages_segment: max_segment ${maxSegment} below one page`);
  const nPages = Math.ceil((offset + size) / pageSize);
  const runs: { pfn: number; pages: number }[] = [];
  for (let i = 0; i < nPages; i++) {
    const pfn = pfns[i];
    const last = runs[runs.length - 1];
    if (last !== undefined && last.pfn + last.pages === pfn && last.pages < maxPages) last.pages++;
    else runs.push({ pfn, pages: 1 });
  }
  const sgl = sg_init_table(runs.length);
  let left = size;
  for (let i = 0; i < runs.length; i++) {
    const off = i === 0 ? offset : 0;
    const len = Math.min(left, runs[i].pages * pageSize - off);
    sg_set_page(sgl[i], runs[i].pfn, len, off);
    left -= len;
  }
  return sgl;
}
