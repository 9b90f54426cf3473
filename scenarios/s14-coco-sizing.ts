/**
 * S14: the CoCo swiotlb is sized by a rule of thumb, 6% of memory (Petr Tesarik, cover letter of
 * "[PATCH v2 RESEND 0/7] Allow dynamic allocation of software IO TLB bounce buffers",
 * 2023-05-09; seed 004: "The software IO TLB size is increased to 6% of total memory in
 * sev_setup_arch(), but that is more of an approximation. The actual requirements may vary
 * depending on the amount of I/O and which drivers are used").
 *
 * An SEV-SNP guest, every streaming mapping bounced. Each CPU runs a light I/O phase (few small
 * requests in flight), then, once every CPU is through it, a heavy phase (deep queues of large
 * requests). The bounce memory in use and the bounce memory held are sampled after every
 * submission, per phase, as high-water marks (`s14.<phase>.used_bytes_peak`,
 * `s14.<phase>.footprint_bytes_peak`).
 *
 * buggy: the static pool sized as upstream does (swiotlb_sizing with cc: 6% of memory, clamped to
 * [64 MiB, 1 GiB], rounded up to a power of two), whatever the load: mostly idle in the light
 * phase (waste), too small in the heavy one (swiotlb_full, BLK_STS_RESOURCE requeues).
 * fixed: a small boot pool that grows with demand (`policy`, default chunked-growth: Hellwig's
 * background chunks past a reserve threshold, decrypted once per chunk): the footprint follows
 * the load.
 *
 * Simplified: one NVMe-like device, fixed request sizes per phase; the I/O loop is fio's
 * (lib/devices/nvme.ts) written out here so that a phase can start after the previous one.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { GFP_KERNEL } from '../lib/kernel/gfp';
import { cond_resched, try_to_wake_up } from '../lib/kernel/sched';
import type { Task } from '../lib/kernel/task';
import { DECLARE_WAIT_QUEUE_HEAD, wait_event, type wait_queue_head_t } from '../lib/kernel/wait';
import type { KernelBody } from '../lib/kernel/machine';
import { dma_init } from '../lib/dma/init';
import type { PolicySpec } from '../lib/dma/swiotlb/policy';
import { swiotlb_prepare, swiotlb_sizing, type SwiotlbImage } from '../lib/dma/swiotlb/setup';
import { swiotlb_state } from '../lib/dma/swiotlb/state';
import { IO_TLB_SIZE } from '../lib/dma/swiotlb/constants';
import { REQ_OP_WRITE, request } from '../lib/devices/block';
import { nvme_probe, type NvmeDevice } from '../lib/devices/nvme';
import { alloc_pages, __free_pages, get_order, mm_init, mm_prepare, MIB, type CocoKind, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';

const KIB = 1024;

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  restore(): void;
}

interface Phase {
  name: 'light' | 'heavy';
  iodepth: number;
  requests: number;
  bytes: number;
  /** CPU time between two submissions (a ramp: the load builds up rather than arriving at once). */
  thinkNs: number;
}

/** One CPU's share of a phase: keep `iodepth` requests of `bytes` in flight until `requests` are done. */
function* ioPhase(cur: Task, nvme: NvmeDevice, ph: Phase, wq: wait_queue_head_t, sector0: number): KernelBody<void> {
  const m = cur.cpu.machine;
  const sim = m.sim;
  const st = swiotlb_state(m);
  const ps = 4096;
  const order = get_order(ph.bytes, ps);
  const bufs: number[] = [];
  for (let i = 0; i < ph.iodepth; i++) {
    const pfn = yield* alloc_pages(cur, GFP_KERNEL, order);
    if (pfn < 0) break;
    bufs.push(pfn);
  }
  const free = bufs.map((_, i) => i);
  let inflight = 0;
  let sector = sector0;
  for (let i = 0; i < ph.requests && bufs.length > 0; i++) {
    yield* wait_event(cur, wq, () => free.length > 0);
    const b = free.pop()!;
    const rq = new request(REQ_OP_WRITE, bufs[b], 0, ph.bytes, sector);
    sector += Math.ceil(ph.bytes / 512);
    rq.end_io = () => {
      inflight--;
      free.push(b);
      for (const t of wq.waiters) try_to_wake_up(t);
    };
    inflight++;
    yield cur.thread.work(ph.thinkNs);
    yield* nvme.submit(cur, rq);
    // back to user space between io_submit calls: a kworker woken meanwhile may take the CPU
    yield* cond_resched(cur);
    // io_tlb_used and the bounce memory held, right after this request's mappings
    sim.peak(`s14.${ph.name}.used_bytes_peak`, st.mem.total_used * IO_TLB_SIZE);
    sim.peak(`s14.${ph.name}.footprint_bytes_peak`, st.policy.footprint(st));
  }
  yield* wait_event(cur, wq, () => inflight === 0);
  for (const pfn of bufs) __free_pages(cur, pfn, order);
}

const NOT_SEEN = ['deadlock', 'no_progress', 'might_sleep', 'lockdep', 'rcu', 'dma_debug'];
const PHASE_METRICS = ['s14.light.used_bytes_peak', 's14.light.footprint_bytes_peak', 's14.heavy.used_bytes_peak', 's14.heavy.footprint_bytes_peak'];

const scenario = defineScenario({
  id: 'S14',
  name: 'CoCo guest: a swiotlb sized at 6% of memory is idle under light I/O and too small under heavy I/O; a growing pool follows demand',
  description:
    'Claim (Petr Tesarik, cover letter "[PATCH v2 RESEND 0/7] Allow dynamic allocation of software IO TLB bounce buffers", 2023-05-09, seed 004): under SEV the swiotlb is sized to 6% of total memory, an approximation; real needs depend on the amount of I/O and the drivers, unknown at boot. ' +
    'An SEV-SNP guest runs a light I/O phase, then a heavy one, on an NVMe-like device; the bounce memory used and held are reported per phase. ' +
    'buggy: the static pool sized as upstream (6% of memory clamped to [64 MiB, 1 GiB], rounded up to a power of two): under light I/O nearly all of it idle, under heavy I/O too small (swiotlb_full, requeues). ' +
    'fixed: a small boot pool grown on demand (chunked-growth by default; `policy=upstream` for CONFIG_SWIOTLB_DYNAMIC): the footprint follows the load.',
  params: {
    /** The kernel (lib/kernel/config.ts, lib/dma/swiotlb/profile.ts): the thread (v2 cover letter, 2023-05) was on a v6.3 base, but the dynamic variants are upstream's merged design, first in v6.6 (CONFIG_SWIOTLB_DYNAMIC), which 6.3 does not have. --kernel overrides. */
    kernel: '6.6',
    cpus: 4,
    memoryMiB: 1024,
    coco: 'sev-snp',
    /** fixed: the boot pool and the growing design. */
    smallPoolKiB: 1024,
    policy: 'chunked-growth',
    /** chunked-growth: chunk size (one MAX_PAGE_ORDER block), reserve fraction, chunk cap. */
    chunkKiB: 4096,
    reserve: 0.5,
    maxChunks: 256,
    /** Per CPU: light phase, then heavy phase. */
    lightIodepth: 2,
    lightRequests: 16,
    lightKiB: 16,
    heavyIodepth: 96,
    heavyRequests: 96,
    heavyKiB: 256,
    heavyThinkNs: 20_000,
  },
  machine: (p) => ({ cpus: p.cpus }),
  variants: [
    // the static pool fails maps under the heavy phase (swiotlb_full) and idles under the light one.
    // Budget 3: PCT has schedules that hold one CPU's fio back until the others are through their
    // heavy phase, so the demand never overlaps and the pool suffices (seeds 17 and 20 start with
    // one); the hunt still stops at the first schedule that fills the pool.
    { name: 'buggy', expect: { findings: ['swiotlb_full'], absent: NOT_SEEN, metrics: [...PHASE_METRICS, 'blk.requeues'] }, options: { iterations: 3 } },
    // The footprint follows the load, but a pool that grows behind a ramp still fails maps while it
    // grows (S9's window: the worker adds chunks after usage passes the reserve): swiotlb_full is
    // reported as a count here, not forbidden.
    { name: 'fixed', expect: { absent: NOT_SEEN, metrics: [...PHASE_METRICS, 'swiotlb.grow_pools'] }, options: { strategy: 'random' } },
  ],
  options: { iterations: 1, strategy: 'pct' },
  keyMetrics: ['light_used_pct_of_held', 'light_held_MiB', 'light_used_MiB', 'heavy_held_MiB', 'heavy_used_MiB', 'swiotlb.full', 'blk.requeues', 'swiotlb.grow_pools', 'blk.requests'],
  derive(m) {
    const mib = (k: string) => (m[k] ?? 0) / MIB;
    return {
      light_used_MiB: mib('s14.light.used_bytes_peak'),
      light_held_MiB: mib('s14.light.footprint_bytes_peak'),
      heavy_used_MiB: mib('s14.heavy.used_bytes_peak'),
      heavy_held_MiB: mib('s14.heavy.footprint_bytes_peak'),
      light_used_pct_of_held: (100 * (m['s14.light.used_bytes_peak'] ?? 0)) / (m['s14.light.footprint_bytes_peak'] ?? 0),
    };
  },
  // Tesarik (seed 004): "The software IO TLB size is increased to 6% of total memory in
  // sev_setup_arch(), but that is more of an approximation. The actual requirements may vary
  // depending on the amount of I/O and which drivers are used."
  claims: [
    {
      name: 'static-idle-under-light-io',
      text: 'Tesarik (seed 004): "increased to 6% of total memory in sev_setup_arch(), but that is more of an approximation" - under light I/O the static pool uses under 1% of what it holds',
      left: { variant: 'buggy', metric: 's14.light.used_bytes_peak', per: 'peak' },
      op: '<',
      factor: 0.01,
      right: { variant: 'buggy', metric: 's14.light.footprint_bytes_peak', per: 'peak' },
    },
    {
      name: 'static-too-small-under-heavy-io',
      text: 'Tesarik (seed 004): "The actual requirements may vary depending on the amount of I/O" - under heavy I/O the static pool is used up (all but what alignment strands) and maps fail',
      left: { variant: 'buggy', metric: 's14.heavy.used_bytes_peak', per: 'peak' },
      op: '>=',
      factor: 0.99,
      right: { variant: 'buggy', metric: 's14.heavy.footprint_bytes_peak', per: 'peak' },
    },
    {
      name: 'growing-pool-small-under-light-io',
      text: 'Tesarik (seed 004): "allocated small and grows only when necessary" - under light I/O the growing pool holds at most 1/16 of the static pool',
      left: { variant: 'fixed', metric: 's14.light.footprint_bytes_peak', per: 'peak' },
      op: '<=',
      factor: 1 / 16,
      right: { variant: 'buggy', metric: 's14.light.footprint_bytes_peak', per: 'peak' },
    },
    {
      name: 'growing-pool-grows-under-heavy-io',
      text: 'Tesarik (seed 004): "allocated small and grows only when necessary" - under heavy I/O the growing pool grows past the static pool',
      left: { variant: 'fixed', metric: 's14.heavy.footprint_bytes_peak', per: 'peak' },
      op: '>',
      right: { variant: 'buggy', metric: 's14.heavy.footprint_bytes_peak', per: 'peak' },
    },
  ],
  perturbations: [
    { name: 'cpus-2', params: { cpus: 2, heavyIodepth: 256, heavyRequests: 384 } },
    { name: 'cpus-8', params: { cpus: 8, heavyIodepth: 48, heavyRequests: 48 } },
    { name: 'memory-2x', params: { memoryMiB: 2048, heavyIodepth: 192, heavyRequests: 192 } },
    { name: 'tdx', params: { coco: 'tdx' } },
    { name: 'upstream', params: { policy: 'upstream' } },
  ],
  prepare(p, variant): Prepared {
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    // buggy: no size given, so swiotlb_sizing applies the CoCo rule (mem_encrypt_setup_arch)
    const size = variant === 'buggy' ? undefined : p.smallPoolKiB * KIB;
    const policy: PolicySpec =
      variant === 'buggy' ? { name: 'static' } : p.policy === 'chunked-growth' ? { name: p.policy, chunkBytes: p.chunkKiB * KIB, reserve: p.reserve, maxChunks: p.maxChunks } : { name: p.policy };
    const swiotlb = swiotlb_prepare(image, { cpus: p.cpus, size, cc: true, kernel: String(p.kernel), policy });
    return { image, swiotlb, restore: () => image.restore() };
  },
  build(m, { params, state }) {
    mm_init(m, { image: state.image, coco: params.coco as CocoKind });
    dma_init(m, { swiotlb: state.swiotlb });
    // segments up to what one bounce buffer holds (252 KiB with NVMe's min_align_mask)
    const nvme = nvme_probe(m, { queueDepth: Math.max(params.lightIodepth, params.heavyIodepth), maxSegSize: 256 * KIB });
    const phases: Phase[] = [
      { name: 'light', iodepth: params.lightIodepth, requests: params.lightRequests, bytes: params.lightKiB * KIB, thinkNs: 500 },
      { name: 'heavy', iodepth: params.heavyIodepth, requests: params.heavyRequests, bytes: params.heavyKiB * KIB, thinkNs: params.heavyThinkNs },
    ];
    // a barrier between the phases: the heavy phase starts when every CPU is through the light one
    const barrier = DECLARE_WAIT_QUEUE_HEAD(m, 's14:phase');
    let arrived = 0;
    const n = m.cpus.length;
    for (const cpu of m.cpus) {
      const wq = DECLARE_WAIT_QUEUE_HEAD(m, `s14:iodepth${cpu.id}`);
      m.process(`fio/${cpu.id}`, cpu.id, function* (cur) {
        let sector = cpu.id * 2 ** 30;
        for (const ph of phases) {
          yield* ioPhase(cur, nvme, ph, wq, sector);
          sector += (ph.requests * ph.bytes) / 512;
          if (ph.name === 'light') {
            arrived++;
            for (const t of barrier.waiters) try_to_wake_up(t);
            yield* wait_event(cur, barrier, () => arrived === n);
          }
        }
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
