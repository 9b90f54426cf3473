/**
 * dma-buf (drivers/dma-buf/dma-buf.c, v6.12): an exporter's buffer shared with importers by
 * attachment; dma_buf_map_attachment gives an importer a scatterlist mapped for its device.
 * The GPU (exporter) and display engine (importer) that use it are display.ts.
 */
import { ProgramError } from '../../scheduler';
import { __GFP_NORETRY, __GFP_NOWARN } from '../kernel/gfp';
import type { KernelBody } from '../kernel/machine';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { DMA_MAPPING_ERROR } from '../dma/attrs';
import type { device } from '../dma/device';
import type { GpuDevice } from './display';
import { dma_map_sg, dma_unmap_sg } from '../dma/mapping';
import { sg_alloc_table_from_pages_segment, sg_init_table, sg_set_page, type scatterlist } from '../dma/scatterlist';
import { dma_get_max_seg_size } from '../dma/device';
import { is_swiotlb_active, is_swiotlb_force_bounce, swiotlb_max_mapping_size } from '../dma/swiotlb/map';
import { mm } from '../mm/mm';
import { page_to_phys, __free_pages } from '../mm/page-alloc';

/** Bytes bounced into the swiotlb by imports that then failed (copied, unmapped, never shown). */
export const M_DISPLAY_WASTED_BOUNCE_BYTES = 'display.wasted_bounce_bytes';
/** Segments bounced by imports that then failed. */
export const M_DISPLAY_WASTED_BOUNCES = 'display.wasted_bounces';
/** Frames imported: segments of the importer's table and the longest one. */
export const M_DISPLAY_SEGMENTS = 'display.segments';
export const M_DISPLAY_MAX_SEGMENT = 'display.max_segment_bytes';

/**
 * dma_max_mapping_size(dev) as dma-direct answers it (dma_direct_max_mapping_size): the swiotlb's
 * largest bounce buffer when the device may bounce (swiotlb active and the device addressing-
 * limited or force-bounced), otherwise unlimited. An IOMMU-backed device is unlimited here (it
 * bounces only when untrusted).
 */
export function dma_max_mapping_size(dev: device): number {
  if (dev.iommu !== null) return dev.untrusted && is_swiotlb_active(dev) ? swiotlb_max_mapping_size(dev) : Number.MAX_SAFE_INTEGER;
  if (!is_swiotlb_active(dev)) return Number.MAX_SAFE_INTEGER;
  const model = mm(dev.m);
  const required = model.phys.pfnToPhys(model.phys.nrPages) - 1; // dma_get_required_mask, roughly
  const limit = dev.bus_dma_limit === 0 ? dev.dma_mask : Math.min(dev.dma_mask, dev.bus_dma_limit);
  return limit < required || is_swiotlb_force_bounce(dev) ? swiotlb_max_mapping_size(dev) : Number.MAX_SAFE_INTEGER;
}

/** struct dma_buf: an exported buffer and the exporter's table of it. */
export class dma_buf {
  readonly attachments: dma_buf_attachment[] = [];
  constructor(
    readonly exporter: GpuDevice,
    readonly size: number,
    /** The exporter's scatterlist (pages and lengths; its own DMA addresses in gpuSgl). */
    readonly sgl: scatterlist[],
    /** The blocks backing it, as allocated (pfn, order). */
    readonly blocks: { pfn: number; order: number }[],
    /** Its pages in buffer order (drm_gem_shmem's pages array). */
    readonly pages: number[] = [],
  ) {}
}

/** struct dma_buf_attachment: an importer device attached to a buffer. */
export class dma_buf_attachment {
  /** The importer's mapped copy of the table while mapped. */
  sgt: scatterlist[] | null = null;
  mapped = 0;
  constructor(
    readonly dmabuf: dma_buf,
    readonly dev: device,
  ) {}
}

export function dma_buf_attach(dmabuf: dma_buf, dev: device): dma_buf_attachment {
  const a = new dma_buf_attachment(dmabuf, dev);
  dmabuf.attachments.push(a);
  return a;
}

export function dma_buf_detach(dmabuf: dma_buf, a: dma_buf_attachment): void {
  if (a.sgt !== null) throw new ProgramError(`dma_buf_detach while ${a.dev.name}'s mapping is live`);
  const i = dmabuf.attachments.indexOf(a);
  if (i >= 0) dmabuf.attachments.splice(i, 1);
}

/**
 * dma_buf_map_attachment -> the exporter's map_dma_buf: a copy of the exporter's table (its
 * segment lengths) mapped for the importer with dma_map_sg. Returns the mapped table, or null
 * (the kernel's ERR_PTR(-ENOMEM)) when the mapping failed.
 */
export function* dma_buf_map_attachment(cur: Task, a: dma_buf_attachment, dir: number, attrs = 0): KernelBody<scatterlist[] | null> {
  return yield* fn(cur, 'dma_buf_map_attachment', (function* () {
    if (a.sgt !== null) throw new ProgramError(`${a.dev.name}: dma_buf_map_attachment twice without unmapping`);
    const buf = a.dmabuf;
    let sgl: scatterlist[];
    if (buf.exporter.importerSegments) {
      // The exporter builds the table for this attachment, capped to what the importer can map:
      // its dma_max_mapping_size (the swiotlb's 256 KiB for a bouncing importer) and its
      // max_seg_size.
      const cap = Math.min(dma_max_mapping_size(a.dev), dma_get_max_seg_size(a.dev));
      sgl = sg_alloc_table_from_pages_segment(buf.pages, 0, buf.size, cap, mm(buf.exporter.m).phys.pageSize);
    } else {
      const src = buf.sgl;
      sgl = sg_init_table(src.length);
      for (let i = 0; i < src.length; i++) sg_set_page(sgl[i], src[i].page_link, src[i].length, src[i].offset);
    }
    const sim = cur.thread.sim;
    sim.count(M_DISPLAY_SEGMENTS, sgl.length);
    let longest = 0;
    for (const sg of sgl) longest = Math.max(longest, sg.length);
    sim.peak(M_DISPLAY_MAX_SEGMENT, longest);
    const n = yield* dma_map_sg(cur, a.dev, sgl, sgl.length, dir, attrs);
    if (n === 0) {
      // dma_map_sg bounced the segments before the one that failed, then unmapped them: those
      // copies were for nothing. (The entries keep their stale dma_address, as the kernel's do.)
      const m = cur.cpu.machine;
      for (const sg of sgl) {
        if (sg.dma_address === DMA_MAPPING_ERROR || sg.dma_length === 0) break;
        if (sg.dma_address !== page_to_phys(m, sg.page_link) + sg.offset) {
          sim.count(M_DISPLAY_WASTED_BOUNCES, 1);
          sim.count(M_DISPLAY_WASTED_BOUNCE_BYTES, sg.dma_length);
        }
      }
    }
    if (n === 0) return null;
    a.sgt = sgl;
    a.mapped = n;
    return sgl;
  })());
}

export function* dma_buf_unmap_attachment(cur: Task, a: dma_buf_attachment, sgl: scatterlist[], dir: number): KernelBody<void> {
  yield* fn(cur, 'dma_buf_unmap_attachment', dma_unmap_sg(cur, a.dev, sgl, sgl.length, dir));
  a.sgt = null;
  a.mapped = 0;
}

