/**
 * S12 — DMA_ATTR_ALLOC_SINGLE_PAGES into an IOMMU domain whose granule is larger than the CPU
 * page (Will Deacon vs Doug Anderson, 2016).
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { DMA_ATTR_ALLOC_SINGLE_PAGES } from '../lib/dma/attrs';
import { dma_init } from '../lib/dma/init';
import { iommu_dma_alloc, iommu_dma_alloc_2016, iommu_dma_free, iommu_domain_alloc, PGSIZE_16K, PGSIZE_4K, PGSIZE_64K, type IommuDmaBuffer } from '../lib/dma/iommu';
import { device_register } from '../lib/dma/state';
import { fn, GFP_KERNEL, type Task } from '../lib/kernel';
import { mm_init, mm_prepare, MIB, pin_every, type MemoryImage } from '../lib/mm';
import { ProgramError } from '../scheduler';
import { defineScenario } from '../lib/scenario/define';

const PGSIZE: Record<number, number> = { 4: PGSIZE_4K, 16: PGSIZE_16K, 64: PGSIZE_64K };

/** Prepared images by parameters (aging memory takes a while). */
const images = new Map<string, MemoryImage>();

const scenario = defineScenario({
  id: 'S12',
  name: 'DMA_ATTR_ALLOC_SINGLE_PAGES into a 64 KiB-granule IOMMU domain',
  description:
    "Yong Wu, '[PATCH] arm64/dma-mapping: Add DMA_ATTR_ALLOC_SINGLE_PAGES support' (2016-03), and the replies of Will Deacon and Doug Anderson (seed 003). The patch makes dma-iommu's __iommu_dma_alloc_pages go straight to order-0 pages when the caller passes DMA_ATTR_ALLOC_SINGLE_PAGES. Will Deacon: it never consults the IOMMU's pgsize_bitmap, so an SMMU using a 64 KiB granule on a 4 KiB-page CPU cannot map those pages. Doug Anderson: the existing code already falls back to order 0 once memory is fragmented, so it was already broken there; Will disagrees (a common larger granule with contiguous pages would work). " +
    'A video codec (mtk-vcodec) behind an SMMU domain of `granuleKiB` allocates `buffers` coherent buffers of `bufferKiB` (GFP_KERNEL) on a machine aged `uptime` rounds with `hogPercent` of memory held by other tasks, as arm64 __iommu_alloc_attrs did in v4.5: pages, one IOVA range, sg_alloc_table_from_pages (contiguous pages merged), iommu_map_sg, vmap. ' +
    'buggy: the 2016 allocator with Yong Wu\'s patch and the attribute: order-0 pages, iommu_map refuses them ("iommu: unaligned"), every buffer fails. ' +
    'fixed: the allocation order chosen from the domain\'s pgsize_bitmap (upstream __iommu_dma_alloc_pages with order_mask; the attribute keeps only the smallest IOMMU page, order 4 here): clean. ' +
    "existing-aged (Will Deacon's side): the 2016 allocator without the attribute (orders from MAX_ORDER down with __GFP_NORETRY, then order 0, the order reached kept for later chunks) into the same 64 KiB domain on a machine aged `uptime` rounds: compaction and reclaimable page cache still give it order >= 4 chunks (2 MiB + 1 MiB per 3 MiB buffer), which are granule-aligned: clean. " +
    "existing-fragmented (Doug Anderson's side): the same allocator on a machine with an unmovable page in every 2^`pinnedOrder`-page block (64 KiB by default) and no page cache to move: no order >= 4 block exists, it falls to order 3 and iommu_map refuses the 32 KiB runs exactly as it refuses the patch's order-0 pages. Both are measured by iommu.alloc.o<N> and iommu.map_failures: the existing code is broken under fragmentation that leaves no granule-sized block, and only then (the fixed allocator fails such an allocation cleanly instead).",
  params: {
    /** The kernel: the thread (2016-03) was about arm64 v4.5, for which no profile exists ('3.x-arm' is a 32-bit ARM kernel); nothing this scenario models depends on the version, so it runs on the newest, 6.12 (lib/kernel/config.ts). --kernel overrides. */
    kernel: '6.12',
    cpus: 2,
    memoryMiB: 512,
    /** SMMU granule (smallest IOMMU page) in KiB: 4, 16 or 64. */
    granuleKiB: 64,
    bufferKiB: 3072,
    buffers: 8,
    /** Aging rounds of memory before the run. */
    uptime: 30,
    seedAge: 1,
    /** existing-fragmented: one unmovable page pinned in every 2^pinnedOrder-page block. */
    pinnedOrder: 4,
  },
  machine: (p) => ({ cpus: p.cpus }),
  variants: [
    { name: 'buggy', expect: { findings: ['iommu_map'], metrics: ['iommu.alloc_failures', 'iommu.map_failures', 'iommu.alloc.o0'] } },
    { name: 'fixed', expect: { clean: true, metrics: ['iommu.maps'] } },
    { name: 'existing-aged', expect: { clean: true, metrics: ['iommu.maps'] } },
    { name: 'existing-fragmented', expect: { findings: ['iommu_map'], metrics: ['iommu.alloc_failures', 'iommu.map_failures'] } },
  ],
  options: { iterations: 2 },
  keyMetrics: ['iommu.map_failures', 'iommu.alloc_failures', 'iommu.maps', 'iommu.alloc.o0', 'iommu.alloc.o3', 'iommu.alloc.o4', 'iommu.alloc.o9', 'iommu.alloc.o10', 'iommu.map_sg_segments'],
  derive: (m, schedules) => {
    let below = 0;
    let all = 0;
    for (let o = 0; o <= 10; o++) {
      const n = m[`iommu.alloc.o${o}`] ?? 0;
      all += n;
      if (o < 4) below += n;
    }
    return {
      'failed buffers per run': (m['iommu.alloc_failures'] ?? 0) / schedules,
      'chunks below 64 KiB %': (100 * below) / all,
    };
  },
  perturbations: [
    { name: '4-cpus', params: { cpus: 4 } },
    { name: '1g-memory', params: { memoryMiB: 1024 } },
    { name: 'small-buffers', params: { bufferKiB: 256, buffers: 32 } },
    { name: 'fresh-memory', params: { uptime: 0 } },
  ],
  prepare(p, variant): MemoryImage {
    if (PGSIZE[p.granuleKiB] === undefined) throw new ProgramError(`granuleKiB must be 4, 16 or 64, got ${p.granuleKiB}`);
    const pinned = variant === 'existing-fragmented' ? p.pinnedOrder : -1;
    const key = JSON.stringify([p.memoryMiB, p.uptime, p.seedAge, pinned]);
    const cached = images.get(key);
    if (cached !== undefined) {
      cached.restore();
      return cached;
    }
    // The pinned machine has no page cache to reclaim or migrate out of the way (fresh, then pinned).
    const image = mm_prepare({ memory: p.memoryMiB * MIB, uptime: pinned >= 0 ? 0 : p.uptime, ageSeed: p.seedAge });
    if (pinned >= 0) {
      // Heavy fragmentation as Doug Anderson's argument supposes it: an unmovable page in every
      // 2^pinned-page block, so no free block of that order exists and compaction cannot make one.
      pin_every(image.phys, pinned);
      image.snapshot();
    }
    images.set(key, image);
    return image;
  },
  build(m, { variant, params, state }) {
    mm_init(m, { image: state });
    dma_init(m, {});
    const domain = iommu_domain_alloc('smmu-vcodec', { pgsize_bitmap: PGSIZE[params.granuleKiB] });
    const dev = device_register(m, { name: 'mtk-vcodec', dmaBits: 34, iommu: domain, coherent: false });
    const size = params.bufferKiB * 1024;
    const attrs = variant.startsWith('existing-') ? 0 : DMA_ATTR_ALLOC_SINGLE_PAGES;
    const alloc = (cur: Task) =>
      fn(cur, '__iommu_alloc_attrs', variant === 'fixed' ? iommu_dma_alloc(cur, dev, size, GFP_KERNEL, attrs) : iommu_dma_alloc_2016(cur, dev, size, GFP_KERNEL, attrs));
    for (let c = 0; c < params.cpus; c++) {
      const share = Math.floor(params.buffers / params.cpus) + (c < params.buffers % params.cpus ? 1 : 0);
      m.kthread(`vcodec/${c}`, c, function* (cur) {
        yield* fn(cur, 'mtk_vcodec_mem_alloc', (function* () {
          const got: IommuDmaBuffer[] = [];
          for (let i = 0; i < share; i++) {
            const b = yield* alloc(cur);
            if (b !== null) got.push(b);
          }
          for (const b of got) yield* iommu_dma_free(cur, dev, size, b.vaddr, b.dma_handle);
        })());
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
