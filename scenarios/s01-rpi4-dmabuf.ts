/**
 * S1 — Raspberry Pi 4: dma-buf frames rendered by the GPU (v3d, full address range) and mapped
 * for the display (vc4, a 1 GiB bus limit, no IOMMU) through a static swiotlb.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { dma_init } from '../lib/dma/init';
import { display_probe, gpu_probe, swiotlb_prepare_below } from '../lib/devices/display';
import type { SwiotlbImage } from '../lib/dma/swiotlb/setup';
import { GFP_DMA, GFP_HIGHUSER_MOVABLE } from '../lib/kernel/gfp';
import { mm_init, mm_prepare, MIB, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  restore(): void;
}

/** Prepared images by parameters (an aged 2 GiB image takes a while to build). */
const images = new Map<string, Prepared>();

const scenario = defineScenario({
  id: 'S1',
  name: 'Raspberry Pi 4: v3d dma-buf frames mapped for vc4 through a static swiotlb',
  description:
    "Petr Tesarik, RFC 'swiotlb: Allow dynamic allocation of bounce buffers' (2023-03), quoted by Christoph Hellwig (seed 000): on a Raspberry Pi 4 the GPU (v3d) renders into memory from anywhere and exports it as a dma-buf to the display (vc4), which sits behind a 1 GiB bus limit without an IOMMU; the frames are several MB and 'cannot be handled by SWIOTLB, because they exceed maximum segment size of 256 KiB', and GNOME remote desktop floods the log. " +
    "The machine: 2 GiB, ZONE_DMA and the 64 MiB swiotlb below 1 GiB (arm64's placement). The GPU allocates its buffer objects as drm_gem_shmem does (order-0 movable pages from anywhere, `chunkOrder` raises it), which on this model's buddy allocator come in physically contiguous runs of up to 4 MiB, and exports the table drm_prime_pages_to_sg builds with the GPU's own (unlimited) limit, so the runs merge into segments far above 256 KiB; a frame that starts inside a partly used block begins with a short run that bounces before the long one fails. A compositor imports the next frame at every vblank (dma_buf_map_attachment -> dma_map_sg on vc4). " +
    'buggy: the exporter\'s table is mapped as it is: dma_map_sg bounces segment after segment until the first one above 256 KiB, swiotlb_tbl_map_single refuses it with "swiotlb buffer is full (sz: ...)" (printed even for an oversize request, 10 per 5 s), and the segments already bounced are unmapped: one failure per frame, the bounce copies wasted, nothing shown. ' +
    'fixed: the exporter builds each importer\'s table capped to the importer\'s limits (dma_max_mapping_size = the swiotlb\'s 256 KiB, and vc4\'s max_seg_size): every frame bounces and is shown. ' +
    "below-1g: Hellwig's answer in the thread ('make sure dma-buf allocates the buffers for the most restricted devices'): the buffer comes from ZONE_DMA (GFP_DMA, below 1 GiB), so vc4 maps it directly with no bounce at all; the exporter's long segments stay (DMA-API debug may note them against vc4's 64 KiB max_seg_size, a separate matter).",
  params: {
    /** The kernel of the thread (Tesarik's RFC, 2023-03, posted against v6.3-rc): the machine's kernel and the swiotlb profile (lib/kernel/config.ts, lib/dma/swiotlb/profile.ts); --kernel overrides. */
    kernel: '6.3',
    cpus: 4,
    memoryMiB: 2048,
    busLimitMiB: 1024,
    poolMiB: 64,
    width: 1920,
    height: 1080,
    cpp: 4,
    buffers: 3,
    frames: 60,
    vblankUs: 16667,
    /** GPU allocation chunk order (0: drm_gem_shmem's order-0 pages). */
    chunkOrder: 0,
    /** vc4's max_seg_size in KiB (64: the device default without dma_parms). */
    displayMaxSegKiB: 64,
  },
  machine: (p) => ({ cpus: p.cpus }),
  variants: [
    {
      name: 'buggy',
      // display.wasted_bounce_bytes is a key metric but may be 0 (a frame whose first run of pages is already too long)
      expect: { findings: ['swiotlb_full'], metrics: ['swiotlb.full', 'swiotlb.full_printed', 'display.map_failures'] },
    },
    { name: 'fixed', expect: { clean: true, metrics: ['display.frames', 'display.bounce_bytes'] } },
    { name: 'below-1g', expect: { absent: ['swiotlb_full', 'alloc_failure'], metrics: ['display.frames'] } },
  ],
  options: { iterations: 2, window: 0 },
  keyMetrics: ['swiotlb.full', 'swiotlb.full_printed', 'display.wasted_bounce_bytes', 'display.map_failures', 'display.frames', 'display.bounce_bytes', 'display.max_segment_bytes'],
  derive: (m, schedules) => ({
    'failures per run': (m['swiotlb.full'] ?? 0) / schedules,
    'printed per run': (m['swiotlb.full_printed'] ?? 0) / schedules,
    'wasted bounce MiB per failed frame': (m['display.wasted_bounce_bytes'] ?? 0) / MIB / (m['display.map_failures'] ?? 0),
    'frames shown per run': (m['display.frames'] ?? 0) / schedules,
  }),
  claims: [
    {
      name: 'buggy-every-frame-fails',
      text: 'Tesarik (seed 000): "These buffers can be large (several megabytes) and cannot be handled by SWIOTLB, because they exceed maximum segment size of 256 KiB" - every frame the fixed exporter shows fails to map',
      left: { variant: 'buggy', metric: 'display.map_failures', per: 'schedule' },
      op: '>=',
      right: { variant: 'fixed', metric: 'display.frames', per: 'schedule' },
    },
    {
      name: 'fixed-shows-every-frame',
      text: 'Tesarik (seed 000): segments within the 256 KiB maximum segment size can be bounced - the capped table never fails a map',
      left: { variant: 'fixed', metric: 'swiotlb.full', per: 'schedule' },
      op: '<=',
      right: 0,
    },
    {
      name: 'below-1g-no-bounce',
      text: 'Hellwig (seed 000): "Shouldn\'t we make sure dma-buf allocates the buffers for the most restricted devices" - allocated below 1 GiB, not one byte bounces',
      left: { variant: 'below-1g', metric: 'swiotlb.bounce_bytes', per: 'schedule' },
      op: '<=',
      right: 0,
    },
    {
      name: 'below-1g-shows-every-frame',
      text: 'Hellwig (seed 000): "make sure dma-buf allocates the buffers for the most restricted devices" - every frame is shown, as many as the fixed exporter shows',
      left: { variant: 'below-1g', metric: 'display.frames', per: 'schedule' },
      op: '>=',
      right: { variant: 'fixed', metric: 'display.frames', per: 'schedule' },
    },
  ],
  perturbations: [
    { name: '2-cpus', params: { cpus: 2 } },
    { name: '4g-memory', params: { memoryMiB: 4096 } },
    { name: '4k-frames', params: { width: 3840, height: 2160 } },
    { name: '720p-16bpp', params: { width: 1280, height: 720, cpp: 2 } },
    { name: 'pool-32m', params: { poolMiB: 32 } },
    { name: '10s-flood', params: { frames: 600 } },
  ],
  prepare(p): Prepared {
    // Every variant starts from the same image: build it once per parameter set.
    const key = JSON.stringify([p.memoryMiB, p.busLimitMiB, p.cpus, p.poolMiB, p.kernel]);
    const cached = images.get(key);
    if (cached !== undefined) {
      cached.restore();
      return cached;
    }
    const image = mm_prepare({ memory: p.memoryMiB * MIB, dmaLimit: p.busLimitMiB * MIB });
    // Simplified: a freshly booted machine. An aged image (mm_prepare's uptime) leaves this
    // model's free memory as scattered single pages, and the 64 MiB pool must be placed first.
    const swiotlb = swiotlb_prepare_below(image, p.busLimitMiB * MIB, { cpus: p.cpus, size: p.poolMiB * MIB, kernel: String(p.kernel) });
    const out = { image, swiotlb, restore: () => image.restore() };
    images.set(key, out);
    return out;
  },
  build(m, { variant, params, state }) {
    mm_init(m, { image: state.image });
    dma_init(m, { swiotlb: state.swiotlb });
    // v3d: 64-bit, its own MMU for rendering; its exported tables follow its own (unlimited) segment size.
    const gpu = gpu_probe(m, {
      name: 'v3d',
      chunkOrder: params.chunkOrder,
      gfp: variant === 'below-1g' ? GFP_DMA : GFP_HIGHUSER_MOVABLE,
      importerSegments: variant === 'fixed',
    });
    display_probe(m, {
      name: 'vc4',
      gpu,
      busLimit: params.busLimitMiB * MIB,
      maxSegSize: params.displayMaxSegKiB * 1024,
      width: params.width,
      height: params.height,
      cpp: params.cpp,
      buffers: params.buffers,
      frames: params.frames,
      vblankNs: params.vblankUs * 1000,
    });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
