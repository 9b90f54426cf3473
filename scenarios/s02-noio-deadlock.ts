/**
 * S2: dynamic bounce-buffer allocation in the block-I/O path without GFP_NOIO "will deadlock
 * eventually" (Christoph Hellwig on Petr Tesarik's RFC "swiotlb: Allow dynamic allocation of
 * bounce buffers", 2023-03-28, seed 000). The RFC allocated the per-mapping descriptor and buffer
 * with GFP_KERNEL when the caller passed DMA_ATTR_MAY_SLEEP; v2 switched to GFP_NOIO.
 *
 * Transcribed (docs/kernel-facts.md §3.3, 3.3b): a USB mass-storage disk that is also the swap device,
 * every mapping bounced (swiotlb=force, as in a confidential guest); the RFC as posted (6.3 base)
 * tries the dynamic buffer first for a page-sized mapping of a device without min_align_mask, so
 * each request's mapping gets one (swiotlb_dyn_map). Hypothetically the storage driver passes
 * DMA_ATTR_MAY_SLEEP (in the RFC only drm did). Why USB storage and not the AHCI disk of S3/S8:
 * the attribute promises a context that may sleep, and usb-storage maps from its worker thread
 * (process context, no lock), whereas libata maps under ap->lock with IRQs off and NVMe from
 * blk-mq dispatch - and NVMe's min_align_mask makes swiotlb_dyn_map refuse it anyway (the `nvme`
 * variant: no dynamic buffer, so no allocation to deadlock in; the writes go to the pool). Memory is all anonymous, so reclaim frees memory only by swapping out through
 * this same controller. Writer tasks submit synchronous writes: blk_mq_submit_bio takes a tag,
 * nvme_queue_rq maps the data (dma_map_sg), the device completes in hardirq and the completion
 * unmaps (usb-storage: one command at a time, unmapped in the host controller's BH). Reclaim
 * only *submits* swap writes and never waits for them; what it can wait on is
 * the submission: a tag of the queue every CPU shares.
 *
 * Simplified: the NIC exists only as the mappings of its RX ring; the writers' own buffers are
 * taken before the writes start; the OOM killer and PF_MEMALLOC are the memory model's.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { DECLARE_COMPLETION, complete_all, wait_for_completion } from '../lib/kernel/completion';
import { GFP_KERNEL, GFP_NOIO } from '../lib/kernel/gfp';
import { try_to_wake_up } from '../lib/kernel/sched';
import { fn } from '../lib/kernel/stack';
import { DECLARE_WAIT_QUEUE_HEAD, wait_event } from '../lib/kernel/wait';
import { DMA_ATTR_MAY_SLEEP, DMA_FROM_DEVICE } from '../lib/dma/attrs';
import { dma_init } from '../lib/dma/init';
import { atomic_pool_default_size } from '../lib/dma/pool';
import { dma_map_page } from '../lib/dma/mapping';
import { device_register } from '../lib/dma/state';
import { swiotlb_dyn_reserve_init } from '../lib/dma/swiotlb/policies/rfc-dynamic';
import { IO_TLB_SIZE } from '../lib/dma/swiotlb/constants';
import { swiotlb_prepare, type SwiotlbImage } from '../lib/dma/swiotlb/setup';
import { nvme_probe, type NvmeDevice } from '../lib/devices/nvme';
import { usb_storage_probe } from '../lib/devices/usb-storage';
import { REQ_OP_WRITE, request } from '../lib/devices/block';
import { ALLOC_WMARK_HIGH, ALLOC_WMARK_MIN, handle_mm_fault, mm, get_order, wmark_pages, LRU_ANON, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, mm_init, mm_prepare, MIB, type MemoryImage } from '../lib/mm';
import { ProgramError } from '../scheduler';
import { defineScenario } from '../lib/scenario/define';

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  /** The NIC's RX buffers (order RX_ORDER blocks), allocated at boot. */
  rx: number[];
  /** Each writer's data buffer (its WAL segment in memory), allocated before memory got tight. */
  bufs: number[];
  restore(): void;
}

/** Pages free above the high watermark at boot, for what the probe allocates. */
const PROBE_HEADROOM = 32;

/** 64 KiB RX buffers. */
const RX_ORDER = 4;

/**
 * The order of the dynamic buffer a `size`-byte mapping needs: page-aligned data on a device
 * without min_align_mask needs no slack (only a min_align_mask would add up to 2 KiB).
 */
export function dynOrder(size: number, pageSize = 4096, minAlignMask = 0): number {
  return get_order(Math.ceil((size + (minAlignMask === 0 ? 0 : IO_TLB_SIZE)) / pageSize) * pageSize, pageSize);
}

/**
 * A background process owning every free page but `keep` (after the pool was carved out, which
 * mm_prepare's processes option cannot leave room for): the memory only swap can reclaim.
 */
function fillAnon(image: MemoryImage, comm: string, keep: number): void {
  const id = image.processes.length + 1;
  image.processes.push({ id, pid: 1000 + id - 1, comm, oom_score_adj: 0, background: true });
  const zones = image.phys.zones;
  let free = 0;
  for (const z of zones) free += z.nr_free;
  if (keep > free) throw new ProgramError(`keeping ${keep} pages free exceeds the ${free} pages free after boot`);
  // lowest zone first, so what stays free is in the zone GFP_KERNEL allocates from
  for (let n = free - keep, z = 0; n > 0 && z < zones.length; ) {
    const pfn = image.phys.rmqueue(zones[z], 0, MIGRATE_MOVABLE, 0);
    if (pfn < 0) {
      z++;
      continue;
    }
    image.lru.add(LRU_ANON, pfn, id);
    n--;
  }
  image.snapshot();
}

/** GFP behind DMA_ATTR_MAY_SLEEP and the reserve, per variant. */
const VARIANTS: Record<string, { maySleepGfp: 'GFP_KERNEL' | 'GFP_NOIO'; reserve: boolean; maySleep: boolean; nvme?: boolean }> = {
  buggy: { maySleepGfp: 'GFP_KERNEL', reserve: false, maySleep: true },
  fixed: { maySleepGfp: 'GFP_NOIO', reserve: true, maySleep: true },
  'noio-only': { maySleepGfp: 'GFP_NOIO', reserve: false, maySleep: true },
  nowait: { maySleepGfp: 'GFP_KERNEL', reserve: false, maySleep: false },
  // the RFC's GFP_KERNEL on an NVMe swap device: refused a dynamic buffer, so no allocation at all
  nvme: { maySleepGfp: 'GFP_KERNEL', reserve: false, maySleep: true, nvme: true },
};

// CLAIMS (for issue 18's mechanism):
//  1. Hellwig: "Without GFP_NOIO allocations this will deadlock eventually": buggy has finding
//     deadlock within its budget; fixed is clean (the variants' `expect`); a per-schedule rate:
//     deadlocks per schedule in buggy > 0, in fixed == 0.
//  2. The reserve is what makes GFP_NOIO safe: fixed's mm.mempool_reserve_used per schedule > 0
//     while noio-only (no reserve) reports `stall` (counters mm.mempool_reserve_used, mm.allocstall).
//  3. The dynamic path really allocated: swiotlb.dyn_allocs per schedule > 0 in fixed and nowait
//     (counter swiotlb.dyn_allocs).
//  4. NVMe is never given a dynamic buffer: nvme's swiotlb.dyn_allocs == 0 and swiotlb.dyn_refused
//     per schedule > 0 (counters).

const scenario = defineScenario({
  id: 'S2',
  name: 'GFP_KERNEL bounce-buffer allocation in the I/O path of a swap device deadlocks',
  description:
    "Christoph Hellwig on Petr Tesarik's RFC 'swiotlb: Allow dynamic allocation of bounce buffers' (2023-03): \"Without GFP_NOIO allocations this will deadlock eventually.\" " +
    'The RFC as posted (6.3 base): a USB mass-storage disk that is also the swap device maps every write through a forced swiotlb, and swiotlb_dyn_map gives each page-sized write a dynamic buffer first (rfc-dynamic) with DMA_ATTR_MAY_SLEEP (usb-storage maps from its worker thread, a context that may sleep; libata and NVMe do not); memory is low and all anonymous. ' +
    'buggy: the RFC (GFP_KERNEL): a writer holding a tag of the shared queue reclaims, reclaim swaps out through the same controller and waits for a tag the writers hold -> deadlock. ' +
    'fixed: GFP_NOIO plus a mempool reserve created at probe (the upstream forward-progress pattern) -> clean. ' +
    'noio-only: GFP_NOIO without a reserve (v2): no cycle, but reclaim without I/O finds nothing and small orders retry forever, no OOM kill without __GFP_FS -> stall in timed mode. ' +
    'nowait: no DMA_ATTR_MAY_SLEEP (GFP_NOWAIT): never blocks; a dynamic buffer it cannot get falls back to the pool, so with the RFC\'s order no mapping fails here (before issue 19, with the pool full first, mappings failed and were requeued). ' +
    'nvme: the same RFC on an NVMe swap device: min_align_mask 0xfff makes swiotlb_dyn_map refuse every mapping, so nothing is allocated and nothing can deadlock; the writes use the pool (safer than the thread feared for NVMe). Changed by issue 19: the device was NVMe (given dynamic buffers no patch would give it, pool first); now USB storage, dynamic first, with the RFC\'s refusals.',
  params: {
    cpus: 2,
    memoryMiB: 64,
    /** Free pages below the min watermark when the run starts (the rest is anonymous memory). */
    /** swiotlb boot pool (KiB) and a NIC RX ring mapped into it at boot (0: none; dynamic-first needs no full pool). */
    poolKiB: 1024,
    rxKiB: 0,
    /** Tags of the swap disk (usb-storage: one command at a time; the nvme variant's queue gets 2). */
    queueDepth: 1,
    /** Writer tasks (spread over the CPUs), synchronous writes each, write size. */
    writers: 4,
    writes: 2,
    size: 4096,
    /** Pages postgres keeps faulting in while the writers write (sustained pressure). */
    churn: 64,
    /** Elements per reserve mempool (fixed). */
    reserve: 4,
    /** The kernel the RFC was posted against (swiotlb profile). */
    kernel: '6.3',
  },
  machine: (p) => ({ cpus: p.cpus }),
  variants: [
    { name: 'buggy', expect: { findings: ['deadlock'] }, options: { strategy: 'pct', iterations: 20 } },
    { name: 'fixed', expect: { clean: true, metrics: ['swiotlb.dyn_allocs', 'mm.allocstall'] }, options: { strategy: 'pct', iterations: 8 } },
    { name: 'noio-only', expect: { findings: ['stall'], absent: ['deadlock', 'no_progress', 'oom_kill'] }, options: { strategy: 'fair-pct', iterations: 12, window: 0, horizon: 1_000_000_000 } },
    { name: 'nowait', expect: { absent: ['deadlock', 'no_progress'], metrics: ['nvme.map_failures', 'blk.requeues'] }, options: { strategy: 'pct', iterations: 3 } },
    { name: 'nvme', expect: { absent: ['deadlock', 'no_progress', 'might_sleep'], metrics: ['swiotlb.dyn_refused', 'swiotlb.maps'] }, options: { strategy: 'pct', iterations: 6 } },
  ],
  keyMetrics: ['mm.allocstall', 'mm.swap_submitted', 'nvme.map_failures', 'mm.mempool_reserve_used', 'swiotlb.dyn_allocs', 'blk.tag_waits'],
  claims: [
    {
      name: 'dynamic-path-taken',
      text: 'Tesarik, RFC (seed 000): dynamic bounce buffers are allocated in the I/O path - the fixed variant really allocates them (with GFP_NOIO from its reserve-backed path)',
      left: { variant: 'fixed', metric: 'swiotlb.dyn_allocs', per: 'schedule' },
      op: '>',
      right: 0,
    },
    {
      name: 'nvme-never-allocates',
      text: 'the RFC as posted refuses NVMe (min_align_mask) every dynamic buffer, so the allocation Hellwig warns about never happens on NVMe',
      left: { variant: 'nvme', metric: 'swiotlb.dyn_allocs', per: 'schedule' },
      op: '<=',
      right: 0,
    },
    {
      name: 'nvme-refused',
      text: 'NVMe\'s mappings asked and were refused (swiotlb_dyn_map\'s min_align_mask rule), not left unmapped',
      left: { variant: 'nvme', metric: 'swiotlb.dyn_refused', per: 'schedule' },
      op: '>',
      right: 0,
    },
  ],
  perturbations: [
    { name: 'cpus-4', params: { cpus: 4 }, scale: 3 },
    { name: 'memory-2x', params: { memoryMiB: 128 } },
    { name: 'rx-ring', params: { rxKiB: 1024 } },
    { name: 'size-16k', params: { size: 16384 } },
  ],
  prepare(p, variant): Prepared {
    const v = VARIANTS[variant];
    const pageSize = 4096;
    // The pool is carved at boot (memblock), then the background process takes all but freePages.
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    const swiotlb = swiotlb_prepare(image, {
      cpus: p.cpus,
      size: p.poolKiB * 1024,
      force: true,
      kernel: String(p.kernel),
      policy: { name: 'rfc-dynamic', maySleepGfp: v.maySleepGfp, reserve: v.reserve ? p.reserve : 0, reserveOrder: dynOrder(p.size, pageSize) },
    });
    // The NIC driver allocated its RX ring at boot, before memory got tight.
    const zones = image.phys.zones;
    const bootAlloc = (order: number, what: string): number => {
      let pfn = -1;
      for (let z = zones.length - 1; z >= 0 && pfn < 0; z--) pfn = image.phys.rmqueue(zones[z], order, MIGRATE_UNMOVABLE, 0);
      if (pfn < 0) throw new ProgramError(`no room for ${what}`);
      return pfn;
    };
    const rx: number[] = [];
    for (let left = p.rxKiB * 1024; left > 0; left -= 4096 << RX_ORDER) rx.push(bootAlloc(RX_ORDER, 'the RX ring'));
    const bufs: number[] = [];
    for (let w = 0; w < p.writers; w++) bufs.push(bootAlloc(get_order(p.size, pageSize), 'the writers\' buffers'));
    // dma_atomic_pool_init fills the kernel and DMA32 coherent pools from what is free at each
    // boot (ZONE_DMA is left full, so its pool fails to fill): keep room for them too.
    const ph = image.phys;
    // Boot ends with free memory just above the high watermark plus room for the probe; the
    // workload (postgres) then fills it down to the min watermark.
    const top = ph.zones[ph.zones.length - 1];
    const free = wmark_pages(top, ALLOC_WMARK_HIGH) + PROBE_HEADROOM;
    fillAnon(image, 'postgres', free + 2 * Math.ceil(atomic_pool_default_size(ph.nrPages, ph.pageSize, ph.maxOrder) / ph.pageSize));
    return { image, swiotlb, rx, bufs, restore: () => image.restore() };
  },
  build(m, { variant, params, state }) {
    const v = VARIANTS[variant];
    const model = mm_init(m, { image: state.image });
    dma_init(m, { swiotlb: state.swiotlb });
    const attrs = v.maySleep ? DMA_ATTR_MAY_SLEEP : 0;
    const nvme: NvmeDevice = v.nvme ? nvme_probe(m, { queues: 1, queueDepth: 2, completion: 'hardirq', attrs }) : usb_storage_probe(m, { queueDepth: params.queueDepth, attrs });
    model.swap = nvme; // swapon /dev/sda2 (nvme variant: /dev/nvme0n1p2)
    const eth0 = device_register(m, { name: 'eth0' });
    const probed = DECLARE_COMPLETION(m, 'probed');
    m.kthread('kworker/0:1', 0, function* (cur) {
      // virtnet_open: the RX ring is posted and stays mapped, filling the bounce pool
      yield* fn(cur, 'try_fill_recv', (function* () {
        for (let i = 0, left = params.rxKiB * 1024; left > 0; i++, left -= 4096 << RX_ORDER) {
          yield* dma_map_page(cur, eth0, state.rx[i], 0, Math.min(4096 << RX_ORDER, left), DMA_FROM_DEVICE, 0);
        }
      })());
      // storage_probe: the reserve, created in process context before the disk takes I/O
      if (v.reserve) yield* fn(cur, 'storage_probe', swiotlb_dyn_reserve_init(cur, GFP_KERNEL));
      yield* complete_all(cur, probed);
    });
    // postgres grows its buffer cache until free memory is at the min watermark, where every
    // further allocation that may reclaim enters direct reclaim (its own faults would reclaim too)
    const loaded = DECLARE_COMPLETION(m, 'loaded');
    m.process('postgres', 0, function* (cur) {
      yield* wait_for_completion(cur, probed);
      const zones = model.phys.zones;
      const top = zones[zones.length - 1];
      const target = wmark_pages(top, ALLOC_WMARK_MIN);
      for (let n = 0; top.nr_free > target && n < model.phys.nrPages; n++) if ((yield* handle_mm_fault(cur, 1)) === 0) break;
      yield* complete_all(cur, loaded);
      // ... and keeps allocating while the writers write: memory stays at the min watermark
      for (let n = 0; n < params.churn; n++) if ((yield* handle_mm_fault(cur, 1)) === 0) break;
    });
    for (let w = 0; w < params.writers; w++) {
      const cpu = w % params.cpus;
      const wq = DECLARE_WAIT_QUEUE_HEAD(m, `writer${w}:done`);
      m.process(`postgres-wal/${w}`, cpu, function* (cur) {
        yield* wait_for_completion(cur, loaded);
        const buf = state.bufs[w];
        for (let i = 0; i < params.writes; i++) {
          // pwrite(O_DIRECT | O_DSYNC): submit, then wait for the completion
          let done = false;
          const rq = new request(REQ_OP_WRITE, buf, 0, params.size, (w * params.writes + i) * Math.ceil(params.size / 512));
          rq.end_io = () => {
            done = true;
            for (const t of wq.waiters) try_to_wake_up(t);
          };
          yield* nvme.submit(cur, rq);
          yield* wait_event(cur, wq, () => done);
        }
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
