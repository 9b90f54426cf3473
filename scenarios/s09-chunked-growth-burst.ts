/**
 * S9 (seeds/002, the v2 RESEND review of Petr Tesarik's 'swiotlb: Dynamically allocated bounce
 * buffers', 2023-05-16): Christoph Hellwig suggested "to add more large chunks that are used just
 * like the main swiotlb buffers ... allocate another chunk of the same size in the background,
 * similar to what we do with the pool in dma-pool.c"; Catalin Marinas: "Can you kick off a worker
 * thread when the swiotlb allocation gets past some reserve limit? It still has a risk of failing
 * to bounce until the swiotlb buffer is extended."
 *
 * A confidential guest (SEV-SNP: every DMA bounces, and new bounce memory must be decrypted, one
 * page-state change per page plus TLB flushes and hypercalls) with a small boot pool; an I/O burst
 * arrives at `rateKiops` thousand requests per second per CPU (fio --rate_iops: the submitter
 * sleeps between submissions), each request held by the NVMe device until its completion
 * interrupt unmaps it. The burst's demand passes the pool's reserve, the chunk worker is kicked
 * (schedule_work on system_wq from nvme_queue_rq -> dma_map_sg -> swiotlb_tbl_map_single), and
 * until its chunk is allocated, decrypted and added, mappings that find no room fail:
 * "swiotlb buffer is full", BLK_STS_RESOURCE, blk-mq requeues and retries them.
 *
 * buggy: chunked-growth (reserve 25% of the slots) -> swiotlb_full in the window between the kick
 * and the chunk (swiotlb.misses_while_growing, grow latency reported); more failures at a higher
 * burst rate, fewer with a larger reserve. fixed: upstream (v6.6+): the same background growth, but
 * a miss falls back to a transient pool from the already-decrypted coherent atomic pool while that
 * memory lasts -> no swiotlb_full. large-reserve: chunked-growth kicked at `largeReserve` -> fewer
 * failures (a metric; the window can still open under a fast enough burst).
 *
 * Simplified: fio --rate_iops is a job that sleeps a fixed gap between submissions (no jitter); the
 * guest's coherent pool is given on the command line (coherent_pool=, `coherentPoolKiB`).
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { dma_init } from '../lib/dma/init';
import { swiotlb_prepare, type SwiotlbImage } from '../lib/dma/swiotlb/setup';
import type { PolicySpec } from '../lib/dma/swiotlb/policy';
import { nvme_probe, nvme_write_job } from '../lib/devices/nvme';
import { fn } from '../lib/kernel';
import { mm_init, mm_prepare, MIB, type CocoKind, type MemoryImage } from '../lib/mm';
import { ProgramError } from '../scheduler';
import { defineScenario } from '../lib/scenario/define';

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  restore(): void;
}

type S9Params = {
  reserve: number;
  largeReserve: number;
  chunkKiB: number;
  maxChunks: number;
};

/** The design each variant runs. */
export function variantPolicy(variant: string, p: S9Params): PolicySpec {
  if (variant === 'fixed') return { name: 'upstream' };
  const reserve = variant === 'large-reserve' ? p.largeReserve : p.reserve;
  return { name: 'chunked-growth', reserve, chunkBytes: p.chunkKiB * 1024, maxChunks: p.maxChunks };
}

const ABSENT = ['deadlock', 'no_progress', 'lockdep', 'might_sleep', 'alloc_failure'];

const scenario = defineScenario({
  id: 'S9',
  name: 'swiotlb growth by background chunks past a reserve limit vs a burst of NVMe I/O in a CoCo guest',
  description:
    "Claim S9, from the review of Petr Tesarik's 'swiotlb: Dynamically allocated bounce buffers' v2 RESEND (2023-05-16, seeds/002): Christoph Hellwig proposed growing the pool by large chunks allocated in the background, Catalin Marinas a worker kicked when usage passes a reserve limit, which \"still has a risk of failing to bounce until the swiotlb buffer is extended\". An SEV-SNP guest (all DMA bounces; new bounce memory is decrypted page by page with TLB flushes and hypercalls) with a 1 MiB boot pool takes an NVMe write burst at rateKiops per CPU (fio rate_iops; requests held until the completion interrupt unmaps them). buggy: chunked-growth, reserve 25% -> swiotlb_full (BLK_STS_RESOURCE, requeues) between the kick and the chunk landing; failures shrink with a larger reserve (75% against 25%: the reserve moves the kick by microseconds while decrypting a 1 MiB chunk, one KVM_HC_MAP_GPA_RANGE per 4K page on SEV-SNP, takes milliseconds, so 25% and 50% differ by less than a schedule's noise) and with a chunk that is a whole 2 MiB unit (decrypted in two exits). fixed: upstream's transient pools from the decrypted coherent atomic pool while it lasts -> no swiotlb_full. large-reserve: chunked-growth kicked at a larger reserve -> fewer failures (metric).",
  params: {
    cpus: 4,
    memoryMiB: 2048,
    coco: 'sev-snp',
    poolKiB: 1024,
    coherentPoolKiB: 4096,
    reserve: 0.25,
    largeReserve: 0.75,
    chunkKiB: 1024,
    maxChunks: 32,
    iodepth: 32,
    requests: 64,
    size: 65536,
    rateKiops: 200,
    /** The swiotlb's kernel (profile.ts): 6.6, where the merged answer (upstream) first shipped. */
    kernel: '6.6',
  },
  machine: (p) => ({ cpus: p.cpus }),
  variants: [
    { name: 'buggy', expect: { findings: ['swiotlb_full'], absent: ABSENT, metrics: ['swiotlb.full', 'swiotlb.misses_while_growing', 'swiotlb.grow_pools'] } },
    { name: 'fixed', expect: { clean: true, metrics: ['swiotlb.transient_pools', 'swiotlb.grow_pools'] } },
    { name: 'large-reserve', expect: { absent: ABSENT, metrics: ['swiotlb.grow_pools', 'swiotlb.maps'] } },
  ],
  // a burst in time: timed mode (window 0), so the worker runs when a CPU is free and the
  // chunk's allocation and decryption take their time
  options: { iterations: 2, window: 0 },
  // failures as a rate and per schedule (a hunt of buggy stops at its first schedule), the window,
  // and what each answer costs in bounce memory
  keyMetrics: ['swiotlb.full_per_1000_maps', 'swiotlb.full_per_schedule', 'swiotlb.grow_latency_max_ns', 'swiotlb.footprint_bytes_peak', 'swiotlb.transient_peak'],
  derive(m, schedules) {
    const full = m['swiotlb.full'] ?? 0;
    return {
      'swiotlb.full_per_1000_maps': (1000 * full) / ((m['swiotlb.maps'] ?? 0) + full),
      'swiotlb.full_per_schedule': full / schedules,
    };
  },
  // Marinas (seed 002): "Can you kick off a worker thread when the swiotlb allocation gets past some
  // reserve limit? It still has a risk of failing to bounce until the swiotlb buffer is extended."
  claims: [
    {
      name: 'large-reserve-fewer-failures',
      text: 'Marinas (seed 002): "kick off a worker thread when the swiotlb allocation gets past some reserve limit" - kicked at a 75% reserve instead of 25%, fewer maps fail per 1000',
      left: { variant: 'large-reserve', metric: 'swiotlb.full', per: 'swiotlb.maps', scale: 1000 },
      op: '<',
      right: { variant: 'buggy', metric: 'swiotlb.full', per: 'swiotlb.maps', scale: 1000 },
    },
    {
      name: 'fails-only-while-growing',
      text: 'Marinas (seed 002): "It still has a risk of failing to bounce until the swiotlb buffer is extended" - every failed map falls in the window before a chunk lands',
      left: { variant: 'buggy', metric: 'swiotlb.misses_while_growing', per: 'swiotlb.full' },
      op: '>=',
      right: 1,
    },
    {
      // The window is mostly the chunk's decryption: one KVM_HC_MAP_GPA_RANGE per direct-map unit
      // (lib/mm/decrypt.ts), 256 for a 1 MiB chunk, one for a 2 MiB-aligned one.
      name: 'full-falls-with-2m-chunks',
      text: 'Hellwig (seed 002): "This means we\'ll do a fairly large allocation" - a chunk that is a whole 2 MiB unit is decrypted in two exits instead of 260, so the window shrinks and fewer maps fail per 1000',
      quantity: { variant: 'buggy', metric: 'swiotlb.full', per: 'swiotlb.maps', scale: 1000 },
      param: 'chunkKiB',
      values: [1024, 2048],
      trend: 'falls',
    },
    {
      name: 'fixed-never-full',
      text: 'Hellwig (seed 002): "allocate another chunk of the same size in the background, similar to what we do with the pool in dma-pool.c" - upstream bridges the window with transient pools: no failed map',
      left: { variant: 'fixed', metric: 'swiotlb.full', per: 'schedule' },
      op: '<=',
      right: 0,
    },
  ],
  perturbations: [
    { name: 'cpus-2', params: { cpus: 2 } },
    { name: 'cpus-8', params: { cpus: 8, memoryMiB: 4096 } },
    { name: 'slow-burst', params: { rateKiops: 100 } },
    { name: 'fast-burst', params: { rateKiops: 1000 } },
    { name: 'tdx', params: { coco: 'tdx' } },
    { name: '4m-chunks', params: { chunkKiB: 4096, maxChunks: 8 } },
  ],
  prepare(p, variant): Prepared {
    if (!(p.rateKiops > 0)) throw new ProgramError(`S9: rateKiops must be positive, got ${p.rateKiops}`);
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    const swiotlb = swiotlb_prepare(image, { cpus: p.cpus, size: p.poolKiB * 1024, cc: p.coco !== 'none', force: true, kernel: String(p.kernel), policy: variantPolicy(variant, p) });
    return { image, swiotlb, restore: () => image.restore() };
  },
  build(m, { params, state }) {
    mm_init(m, { image: state.image, coco: params.coco as CocoKind });
    dma_init(m, { swiotlb: state.swiotlb, coherentPool: params.coherentPoolKiB * 1024 });
    const nvme = nvme_probe(m, { queueDepth: params.iodepth, completion: 'hardirq' });
    const gapNs = Math.round(1e6 / params.rateKiops);
    for (let c = 0; c < params.cpus; c++) {
      m.process(`fio/${c}`, c, (cur) => fn(cur, 'io_submit', nvme_write_job(cur, nvme, { iodepth: params.iodepth, requests: params.requests, size: params.size, gapNs, first: c })));
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
