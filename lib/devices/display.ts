/**
 * A GPU and a display engine sharing frames through dma-buf, the pairing behind the "DRM user"
 * of Tesarik's DMA_ATTR_MAY_SLEEP (docs/kernel-facts.md §1.12): the GPU (64-bit, direct or behind an
 * IOMMU domain) renders into memory taken from anywhere, in chunks of up to `chunkOrder`, and
 * exports each frame as a dma-buf whose scatterlist follows the GPU's own limits (its chunking
 * and its max_seg_size), not the importer's. The display engine (a 1 GiB bus limit, no IOMMU,
 * the Raspberry Pi 4 shape) imports a frame at every vblank: dma_buf_map_attachment maps the
 * exporter's table on the display device with dma_map_sg, so a frame above 1 GiB bounces
 * through swiotlb, and a frame whose segments exceed a bounce buffer (256 KiB) or whose size
 * exceeds the pool cannot be mapped at all. The previous frame is unmapped once the new one is
 * on screen.
 *
 * Simplified: no fences or reservation locks, no atomic commit machinery (a compositor task
 * does import, flip and release), no caching of the importer's mapping by the exporter; the
 * scanout reads the frame only when the run tracks memory contents.
 */
import { ProgramError } from '../../scheduler';
import { complete, DECLARE_COMPLETION, wait_for_completion, type completion } from '../kernel/completion';
import { GFP_HIGHUSER, __GFP_NORETRY, __GFP_NOWARN } from '../kernel/gfp';
import { raise_irq, request_irq } from '../kernel/irq';
import type { KernelBody, Machine } from '../kernel/machine';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { DMA_BIDIRECTIONAL, DMA_TO_DEVICE } from '../dma/attrs';
import type { device } from '../dma/device';
import type { iommu_domain } from '../dma/iommu';
import { dma_device_read, dma_device_write, dma_map_sg, dma_unmap_sg } from '../dma/mapping';
import { sg_alloc_table_from_pages_segment, sg_init_table, sg_set_page } from '../dma/scatterlist';
import { device_register } from '../dma/state';
import { swiotlb_prepare, type SwiotlbImage, type SwiotlbOptions } from '../dma/swiotlb/setup';
import { phys_contents } from '../mm/contents';
import type { MemoryImage } from '../mm/image';
import { mm } from '../mm/mm';
import { alloc_pages, page_to_phys, __free_pages } from '../mm/page-alloc';
import { get_order } from '../kernel/sizes';
import { dma_buf, dma_buf_attach, dma_buf_detach, dma_buf_map_attachment, dma_buf_unmap_attachment, type dma_buf_attachment } from './dma-buf';

export const M_DISPLAY_FRAMES = 'display.frames';
export const M_DISPLAY_MAP_FAILURES = 'display.map_failures';
export const M_DISPLAY_BOUNCE_BYTES = 'display.bounce_bytes';
export const M_GPU_ALLOC_FAILURES = 'gpu.alloc_failures';

const GIB = 1 << 30;

// ---- the GPU ----

export interface GpuOptions {
  name?: string;
  iommu?: iommu_domain | null;
  /** The GPU's max_seg_size: how long one segment of its tables may be (default 4 GiB - 1, as i915's). */
  maxSegSize?: number;
  /** Largest allocation chunk order for frames (default 9: 2 MiB with 4 KiB pages), falling back to smaller. */
  chunkOrder?: number;
  /** GFP of frame pages (default GFP_HIGHUSER: any memory). */
  gfp?: number;
  /** Rendering time per frame (default 2 ms). */
  renderNs?: number;
  /**
   * Build each importer's table with the importer's limits (its dma_max_mapping_size and
   * max_seg_size) instead of handing it a copy of the exporter's own table (default false).
   */
  importerSegments?: boolean;
}

export class GpuDevice {
  readonly dev: device;
  readonly chunkOrder: number;
  readonly gfp: number;
  readonly renderNs: number;
  readonly importerSegments: boolean;
  constructor(
    readonly m: Machine,
    o: GpuOptions = {},
  ) {
    const known = ['name', 'iommu', 'maxSegSize', 'chunkOrder', 'gfp', 'renderNs', 'importerSegments'];
    for (const k of Object.keys(o)) if (!known.includes(k)) throw new ProgramError(`unknown gpu option '${k}' (known: ${known.join(', ')})`);
    this.dev = device_register(m, { name: o.name ?? 'gpu0', dmaBits: 64, maxSegSize: o.maxSegSize ?? 0xffffffff, iommu: o.iommu ?? null });
    this.chunkOrder = o.chunkOrder ?? 9;
    if (!Number.isInteger(this.chunkOrder) || this.chunkOrder < 0 || this.chunkOrder > 10) throw new ProgramError(`gpu chunkOrder must be an integer from 0 to 10, got ${this.chunkOrder}`);
    this.gfp = o.gfp ?? GFP_HIGHUSER;
    this.renderNs = o.renderNs ?? 2_000_000;
    if (!(this.renderNs >= 0)) throw new ProgramError(`gpu renderNs must be >= 0, got ${this.renderNs}`);
    this.importerSegments = o.importerSegments ?? false;
  }

  /**
   * A frame buffer object exported as a dma-buf: chunks of the largest order that fits (high
   * orders tried with __GFP_NORETRY), the table built from them with contiguous chunks merged up
   * to the GPU's max_seg_size (sg_alloc_table_from_pages_segment). Null when memory ran out.
   */
  *alloc_frame(cur: Task, size: number): KernelBody<dma_buf | null> {
    if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`gpu frame size must be a positive integer, got ${size}`);
    return yield* fn(cur, 'gpu_bo_create', this.allocFrame(cur, size));
  }

  private *allocFrame(cur: Task, size: number): KernelBody<dma_buf | null> {
    const pageSize = mm(this.m).phys.pageSize;
    let pages = Math.ceil(size / pageSize);
    const blocks: { pfn: number; order: number }[] = [];
    let order = Math.min(this.chunkOrder, get_order(size, pageSize));
    while (pages > 0) {
      while (order > 0 && 1 << order > pages) order--;
      const pfn = yield* alloc_pages(cur, order > 0 ? this.gfp | __GFP_NORETRY | __GFP_NOWARN : this.gfp, order);
      if (pfn >= 0) {
        blocks.push({ pfn, order });
        pages -= 1 << order;
      } else if (order > 0) order--;
      else {
        for (const b of blocks) __free_pages(cur, b.pfn, b.order);
        cur.thread.sim.count(M_GPU_ALLOC_FAILURES, 1);
        return null;
      }
    }
    // The table: physically contiguous pages merged, cut at max_seg_size (drm_prime_pages_to_sg
    // passes the exporting device's limit).
    const pfns: number[] = [];
    for (const b of blocks) for (let k = 0; k < 1 << b.order && pfns.length < Math.ceil(size / pageSize); k++) pfns.push(b.pfn + k);
    const sgl = sg_alloc_table_from_pages_segment(pfns, 0, size, this.dev.max_seg_size, pageSize);
    return new dma_buf(this, size, sgl, blocks, pfns);
  }

  /** Render into the frame: GPU time, and the bytes when contents are tracked (through its own mapping). */
  *render(cur: Task, buf: dma_buf, value: number): KernelBody<void> {
    yield* fn(cur, 'gpu_render', (function* (self: GpuDevice) {
      const m = self.m;
      if (phys_contents(m) !== null) {
        const own = sg_init_table(buf.sgl.length);
        for (let i = 0; i < own.length; i++) sg_set_page(own[i], buf.sgl[i].page_link, buf.sgl[i].length, 0);
        const n = yield* dma_map_sg(cur, self.dev, own, own.length, DMA_BIDIRECTIONAL);
        for (let i = 0; i < n; i++) dma_device_write(m, self.dev, own[i].dma_address, new Uint8Array(own[i].dma_length).fill(value & 0xff));
        if (n > 0) yield* dma_unmap_sg(cur, self.dev, own, own.length, DMA_BIDIRECTIONAL);
      }
      yield cur.thread.work(self.renderNs);
    })(this));
  }

  free_frame(cur: Task, buf: dma_buf): void {
    for (const b of buf.blocks) __free_pages(cur, b.pfn, b.order);
  }
}

export function gpu_probe(m: Machine, o: GpuOptions = {}): GpuDevice {
  return new GpuDevice(m, o);
}

// ---- the display engine ----

export interface DisplayOptions {
  name?: string;
  /** The exporter of the frames. */
  gpu: GpuDevice;
  /** Bytes of address space the interconnect reaches (bus_dma_limit + 1; default 1 GiB). */
  busLimit?: number;
  /** The display's own max_seg_size (default 64 KiB, the device default): the exporter's table ignores it. */
  maxSegSize?: number;
  /** Frame geometry (default 1920x1080, 4 bytes per pixel: 8 MiB). */
  width?: number;
  height?: number;
  cpp?: number;
  /** Frame buffers the GPU renders into in turn (default 3). */
  buffers?: number;
  /** vblank period (default 16.6 ms). */
  vblankNs?: number;
  /** vblanks to run (default 10). */
  frames?: number;
  /** CPU of the vblank interrupt and the compositor (default 0). */
  cpu?: number;
  /** DMA attributes of the import mappings (default 0). */
  attrs?: number;
}

export class DisplayEngine {
  readonly dev: device;
  readonly frameSize: number;
  readonly buffers: number;
  readonly vblankNs: number;
  readonly frames: number;
  readonly cpu: number;
  /** Frames on screen, by buffer index, in order (for tests). */
  readonly shown: number[] = [];
  /** Per flip: the first bytes the scanout read (when contents are tracked). */
  readonly scanned: number[] = [];
  /** Frames whose import failed. */
  failures = 0;
  readonly vblank: completion;

  constructor(
    readonly m: Machine,
    readonly gpu: GpuDevice,
    o: DisplayOptions,
  ) {
    const known = ['name', 'gpu', 'busLimit', 'maxSegSize', 'width', 'height', 'cpp', 'buffers', 'vblankNs', 'frames', 'cpu', 'attrs'];
    for (const k of Object.keys(o)) if (!known.includes(k)) throw new ProgramError(`unknown display option '${k}' (known: ${known.join(', ')})`);
    const name = o.name ?? 'disp0';
    const w = o.width ?? 1920;
    const h = o.height ?? 1080;
    const cpp = o.cpp ?? 4;
    for (const [what, v] of [['width', w], ['height', h], ['cpp', cpp]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ProgramError(`${name}: ${what} must be a positive integer, got ${v}`);
    }
    this.frameSize = w * h * cpp;
    this.buffers = o.buffers ?? 3;
    this.vblankNs = o.vblankNs ?? 16_666_667;
    this.frames = o.frames ?? 10;
    this.cpu = o.cpu ?? 0;
    m.cpu(this.cpu);
    if (!Number.isInteger(this.buffers) || this.buffers < 1) throw new ProgramError(`${name}: buffers must be a positive integer, got ${this.buffers}`);
    if (!Number.isInteger(this.frames) || this.frames < 1) throw new ProgramError(`${name}: frames must be a positive integer, got ${this.frames}`);
    if (!(this.vblankNs > 0)) throw new ProgramError(`${name}: vblankNs must be positive, got ${this.vblankNs}`);
    this.dev = device_register(m, { name, dmaBits: 32, busLimit: (o.busLimit ?? GIB) - 1, maxSegSize: o.maxSegSize });
    this.vblank = DECLARE_COMPLETION(m, `${name}:vblank`);
    const self = this;
    const attrs = o.attrs ?? 0;
    const line = request_irq(m, this.cpu, `${name}-vblank`, function* drm_crtc_handle_vblank(cur) {
      yield* complete(cur, self.vblank);
    });
    // The CRTC's vblank interrupts, for as many periods as the run shows frames.
    for (let i = 1; i <= this.frames; i++) m.sim.timer(i * this.vblankNs, () => raise_irq(m, line), `${name}:vblank`);
    m.kthread(`${name}-commit`, this.cpu, (cur) => this.compositor(cur, attrs));
  }

  /** Render, import, flip, release the previous frame; once per vblank. */
  private *compositor(cur: Task, attrs: number): KernelBody<void> {
    const m = this.m;
    const bufs: dma_buf[] = [];
    for (let i = 0; i < this.buffers; i++) {
      const b = yield* this.gpu.alloc_frame(cur, this.frameSize);
      if (b === null) break;
      bufs.push(b);
    }
    if (bufs.length === 0) return;
    const atts = bufs.map((b) => dma_buf_attach(b, this.dev));
    let prev: dma_buf_attachment | null = null;
    const sim = cur.thread.sim;
    for (let f = 0; f < this.frames; f++) {
      const i = f % bufs.length;
      const a = atts[i];
      yield* this.gpu.render(cur, bufs[i], f + 1);
      const sgl = a === prev ? null : yield* fn(cur, 'drm_atomic_commit', dma_buf_map_attachment(cur, a, DMA_TO_DEVICE, attrs));
      if (sgl === null) {
        if (a !== prev) {
          this.failures++;
          sim.count(M_DISPLAY_MAP_FAILURES, 1);
        }
      } else {
        let bounced = 0;
        for (let s = 0; s < a.mapped; s++) {
          const seg = sgl[s];
          if (seg.dma_address !== page_to_phys(m, seg.page_link) + seg.offset) bounced += seg.dma_length;
        }
        if (bounced > 0) sim.count(M_DISPLAY_BOUNCE_BYTES, bounced);
        sim.count(M_DISPLAY_FRAMES, 1);
        this.shown.push(i);
        if (phys_contents(m) !== null) this.scanned.push(dma_device_read(m, this.dev, sgl[0].dma_address, 1)[0]);
        // The new frame is on screen: the old one goes back (drm_atomic_helper_cleanup_planes).
        if (prev !== null && prev.sgt !== null) yield* dma_buf_unmap_attachment(cur, prev, prev.sgt, DMA_TO_DEVICE);
        prev = a;
      }
      yield* wait_for_completion(cur, this.vblank);
    }
    if (prev !== null && prev.sgt !== null) yield* dma_buf_unmap_attachment(cur, prev, prev.sgt, DMA_TO_DEVICE);
    for (let i = 0; i < bufs.length; i++) {
      dma_buf_detach(bufs[i], atts[i]);
      this.gpu.free_frame(cur, bufs[i]);
    }
  }
}

/** The display engine and its compositor (runs `frames` vblanks). Needs dma_init first. */
export function display_probe(m: Machine, o: DisplayOptions): DisplayEngine {
  return new DisplayEngine(m, o.gpu, o);
}

/**
 * swiotlb_prepare with the pool placed below `limit`, as arm64 places it (memblock below
 * arm64_dma_phys_limit, the ZONE_DMA limit: 1 GiB on a Raspberry Pi 4) rather than below
 * 4 GiB: memory from `limit` up is held aside while the pool is placed, then given back, and
 * the image re-snapshotted.
 */
export function swiotlb_prepare_below(image: MemoryImage, limit: number, o: SwiotlbOptions & { cpus: number; cc?: boolean }): SwiotlbImage {
  const phys = image.phys;
  const block = 2 ** phys.maxOrder;
  const held: number[] = [];
  for (let p = Math.ceil(phys.physToPfn(limit) / block) * block; p + block <= phys.nrPages; p += block) if (phys.isolateFreeRange(p, block)) held.push(p);
  const img = swiotlb_prepare(image, o);
  for (const p of held) phys.freeContigRange(p, block);
  image.snapshot();
  return img;
}
