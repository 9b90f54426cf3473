/**
 * S7: per-mapping bounce buffers in a confidential guest pay a page-state conversion per map and
 * per unmap (Michael Kelley, reply to Petr Tesarik's "[PATCH v2 RESEND 4/7] swiotlb: Dynamically
 * allocated bounce buffers", 2023-05-15; seed 002).
 *
 * A drm-like driver on every CPU maps a GEM object's scatterlist for its GPU (dma_map_sg), lets
 * the GPU run a job (the GPU's interrupt completes it), and unmaps the object, all from process
 * context: the drm_gem_shmem / drm_prime paths the v2 series converted to DMA_ATTR_MAY_SLEEP.
 * Every streaming mapping of a CoCo guest bounces (force_dma_unencrypted, SWIOTLB_FORCE).
 *
 * The cost counters are the memory model's (lib/mm/decrypt.ts, from upstream's SEV-SNP and TDX
 * code): `mm.hypercalls` (every exit to the VMM: on SEV-SNP the page-state-change VMGEXITs, up to
 * `pscMaxEntry` entries each, and one KVM_HC_MAP_GPA_RANGE per direct-map mapping unit; on TDX one
 * MapGPA per conversion), `mm.tdx_accepts` (TDG.MEM.PAGE.ACCEPT per granule when TDX converts
 * back to private: calls to the TDX module, counted apart), `mm.tlb_flush_kernel` (the cpa_flush
 * TLB shootdowns), plus the boot pool's one-time decryption (`swiotlb.boot_decrypt_hypercalls`,
 * swiotlb_update_mem_attributes). So the segment size (`segKiB`: the bounce buffer's pages) and
 * the platform change the numbers. Map latency is measured around each dma_map_sg in the driver.
 *
 * Simplified: a GEM object's pages are allocated once per task and mapped/unmapped per job (a
 * prime attach/detach per job); the GPU runs one job per task at a time for a fixed time.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { DECLARE_COMPLETION, complete, wait_for_completion, type completion } from '../lib/kernel/completion';
import { GFP_KERNEL } from '../lib/kernel/gfp';
import { raise_irq, request_irq } from '../lib/kernel/irq';
import { fn } from '../lib/kernel/stack';
import { DMA_ATTR_MAY_SLEEP, DMA_BIDIRECTIONAL } from '../lib/dma/attrs';
import { dma_init } from '../lib/dma/init';
import { dma_map_sg, dma_unmap_sg } from '../lib/dma/mapping';
import { sg_init_table, sg_set_page } from '../lib/dma/scatterlist';
import { device_register } from '../lib/dma/state';
import type { PolicySpec } from '../lib/dma/swiotlb/policy';
import { swiotlb_prepare, type SwiotlbImage } from '../lib/dma/swiotlb/setup';
import { alloc_pages, __free_pages, get_order, mm_init, mm_prepare, MIB, type CocoKind, type MemoryImage } from '../lib/mm';
import { set_memory_platform } from '../lib/mm/decrypt';
import { ProgramError } from '../scheduler';
import { defineScenario } from '../lib/scenario/define';

const KIB = 1024;

/** What each variant transcribes: the design, and whether the driver passes DMA_ATTR_MAY_SLEEP. */
const VARIANTS: Record<string, { policy: (p: { dynamicFirst: boolean; maySleepGfp: string }) => PolicySpec; maySleep: boolean }> = {
  // Tesarik RFC: a dma_direct_alloc_pages buffer per mapping, GFP_KERNEL with MAY_SLEEP, so
  // dma_set_decrypted on every map and dma_set_encrypted on every unmap.
  buggy: { policy: (p) => ({ name: 'rfc-dynamic', dynamicFirst: p.dynamicFirst, maySleepGfp: p.maySleepGfp }), maySleep: true },
  // The same design without MAY_SLEEP: GFP_NOWAIT cannot decrypt, so the buffer comes from the
  // coherent atomic pool (decrypted when it was filled or refilled).
  atomic: { policy: (p) => ({ name: 'rfc-dynamic', dynamicFirst: p.dynamicFirst, maySleepGfp: p.maySleepGfp }), maySleep: false },
  // The fixed pool: decrypted once at boot, never re-encrypted.
  fixed: { policy: () => ({ name: 'static' }), maySleep: true },
  // CONFIG_SWIOTLB_DYNAMIC as merged: growth pools decrypted once each by the worker.
  upstream: { policy: () => ({ name: 'upstream' }), maySleep: true },
};

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  restore(): void;
}

const NOT_SEEN = ['might_sleep', 'lockdep', 'deadlock', 'no_progress', 'rcu', 'dma_debug'];
const COST = ['swiotlb.maps', 's07.map_ns', 's07.map_ns_max'];

const scenario = defineScenario({
  id: 'S7',
  name: 'CoCo guest: a per-mapping bounce buffer is decrypted on every map and re-encrypted on every unmap',
  description:
    'Claim (Michael Kelley, reply to Petr Tesarik, "[PATCH v2 RESEND 4/7] swiotlb: Dynamically allocated bounce buffers", 2023-05-15, seed 002): in SEV/TDX guests dma_direct_alloc_pages()/dma_direct_free_pages() must call dma_set_decrypted()/dma_set_encrypted() - hypercalls, page-table changes, TLB flushes - on every DMA map and unmap, where the fixed swiotlb decrypts once at boot and never re-encrypts. ' +
    'A drm-like driver on every CPU maps a GEM object (dma_map_sg) for its GPU, waits for the job, and unmaps it, from process context. ' +
    'buggy: rfc-dynamic, driver passes DMA_ATTR_MAY_SLEEP (GFP_KERNEL): set_memory_decrypted on every map, set_memory_encrypted on every unmap; hypercalls per 1000 mappings and map latency reported. The exits come from the platform model (`platform` sev-snp or tdx): on SEV-SNP one page-state-change exit per 64 entries and one KVM_HC_MAP_GPA_RANGE per 4K page of a 64 KiB buffer, 34 per map and unmap (the model charged a fixed 4 before); on TDX one MapGPA each way (2 per map) plus 16 TDG.MEM.PAGE.ACCEPT calls to the TDX module, counted apart. ' +
    'atomic: rfc-dynamic without MAY_SLEEP (GFP_NOWAIT): the buffer comes from the already-decrypted coherent atomic pool, no hypercall per map, but the pool runs dry (exhaustions counted) and its refills by atomic_pool_work decrypt new memory (hypercalls). ' +
    'fixed: the static pool, decrypted once at boot. upstream: CONFIG_SWIOTLB_DYNAMIC, growth pools decrypted once per pool by the worker.',
  params: {
    /** The kernel (lib/kernel/config.ts, lib/dma/swiotlb/profile.ts): the thread (v2, 2023-05) was on a v6.3 base, but the upstream variant is the design merged in v6.6 (CONFIG_SWIOTLB_DYNAMIC), which 6.3 does not have; 6.6 keeps 6.3's static-pool search. --kernel overrides. */
    kernel: '6.6',
    cpus: 4,
    memoryMiB: 256,
    /** The confidential-computing platform: sev-snp or tdx. */
    platform: 'sev-snp',
    /** SEV-SNP page-state-change entries per VMGEXIT: 64 since v6.5, 253 before. */
    pscMaxEntry: 64,
    hypercallNs: 10_000,
    /** Boot pool of the growing designs (upstream's first pool, the per-mapping designs' fallback). */
    poolKiB: 1024,
    /** The fixed pool; 0: as a CoCo guest sizes it (6% of memory in [64 MiB, 1 GiB], a power of two). */
    fixedPoolKiB: 0,
    /** The RFC's order: page-sized unaligned mappings try a dynamic buffer first. */
    dynamicFirst: true as boolean,
    maySleepGfp: 'GFP_KERNEL',
    /** GEM object size and the scatterlist segment size. */
    objectKiB: 512,
    segKiB: 64,
    /** Jobs per CPU and GPU time per job. */
    jobs: 8,
    gpuNs: 50_000,
  },
  machine: (p) => ({ cpus: p.cpus }),
  variants: [
    { name: 'buggy', expect: { absent: NOT_SEEN, metrics: [...COST, 'mm.hypercalls', 'mm.tlb_flush_kernel', 'swiotlb.dyn_allocs'] } },
    { name: 'atomic', expect: { absent: NOT_SEEN, metrics: [...COST, 'swiotlb.dyn_allocs', 'dma.atomic_pool.exhausted', 'dma.atomic_pool.expansions', 'mm.hypercalls'] } },
    { name: 'fixed', expect: { clean: true, metrics: [...COST, 'swiotlb.boot_decrypt_hypercalls'] } },
    // Misses before the worker's pool arrives take transient pools from the atomic pool (GFP_NOWAIT
    // in a CoCo guest), which can run dry: swiotlb_full is possible there (S9's window), not here's claim.
    { name: 'upstream', expect: { absent: NOT_SEEN, metrics: COST } },
  ],
  options: { iterations: 2, strategy: 'random' },
  keyMetrics: ['hypercalls_per_1000_maps', 'map_latency_mean_ns', 's07.map_ns_max', 'mm.hypercalls', 'swiotlb.maps', 'swiotlb.dyn_allocs', 'dma.atomic_pool.exhausted', 'dma.atomic_pool.expansions', 'swiotlb.grow_pools', 'swiotlb.full'],
  derive(m) {
    const maps = m['swiotlb.maps'] ?? 0;
    const hc = (m['mm.hypercalls'] ?? 0) + (m['swiotlb.boot_decrypt_hypercalls'] ?? 0);
    return {
      hypercalls_per_1000_maps: (1000 * hc) / maps,
      map_latency_mean_ns: (m['s07.map_ns'] ?? 0) / (m['s07.map_calls'] ?? 0),
    };
  },
  // Kelley, seed 002: "dma_direct_alloc_pages() and dma_direct_free_pages() must call dma_set_decrypted()
  // and dma_set_encrypted() ... doing a hypercall on every DMA map operation and on every unmap
  // operation has long been something we thought we must avoid. The fixed swiotlb bounce buffer
  // space solves this problem by doing set_decrypted() in batch at boot time, and never doing
  // set_encrypted()." Per map = per bounced segment (swiotlb.maps).
  claims: [
    {
      // At run time: the fixed pool's one decryption is the boot's (fixed-decrypts-only-at-boot),
      // not a cost of the schedules' maps.
      name: 'fixed-hypercalls-per-map',
      text: 'Kelley (seed 002): "these calls are expensive because they require a hypercall to the host" - at run time the fixed pool pays at most 1/100 of the per-mapping design\'s exits per map',
      left: { variant: 'fixed', metric: 'mm.hypercalls', per: 'swiotlb.maps', scale: 1000 },
      op: '<=',
      factor: 0.01,
      right: { variant: 'buggy', metric: 'mm.hypercalls', per: 'swiotlb.maps', scale: 1000 },
    },
    {
      name: 'buggy-converts-every-map-and-unmap',
      text: 'Kelley (seed 002): "doing a hypercall on every DMA map operation and on every unmap operation" - a decryption and an encryption for every dynamically allocated buffer',
      left: { variant: 'buggy', metric: 'mm.set_memory_calls', per: 'swiotlb.dyn_allocs' },
      op: '>=',
      right: 2,
    },
    {
      name: 'fixed-decrypts-only-at-boot',
      text: 'Kelley (seed 002): "The fixed swiotlb bounce buffer space solves this problem by doing set_decrypted() in batch at boot time, and never doing set_encrypted()"',
      left: { variant: 'fixed', metric: 'mm.set_memory_calls', per: 'schedule' },
      op: '<=',
      right: 0,
    },
    {
      // A pool of poolKiB holds poolKiB/segKiB = 16 buffers: converting per pool costs at most
      // 1/16 of what a per-mapping buffer costs (buggy's conversions per dynamic buffer).
      name: 'upstream-converts-per-pool',
      text: 'Hellwig (seed 002): "add more large chunks that are used just like the main swiotlb buffers ... allocate another chunk of the same size in the background" - conversions per pool, not per map',
      left: { variant: 'upstream', metric: 'mm.set_memory_calls', per: 'swiotlb.maps', scale: 1000 },
      op: '<=',
      factor: 1 / 16,
      right: { variant: 'buggy', metric: 'mm.set_memory_calls', per: 'swiotlb.dyn_allocs', scale: 1000 },
    },
    {
      name: 'atomic-no-conversion-per-map',
      text: 'Kelley (seed 002): the conversions come from dma_direct_alloc_pages()/dma_direct_free_pages(); without MAY_SLEEP the buffer comes from the pre-decrypted atomic pool, converted per refill, not per map',
      left: { variant: 'atomic', metric: 'mm.set_memory_calls', per: 'swiotlb.maps', scale: 1000 },
      op: '<=',
      factor: 1 / 16,
      right: { variant: 'buggy', metric: 'mm.set_memory_calls', per: 'swiotlb.dyn_allocs', scale: 1000 },
    },
    {
      name: 'atomic-pool-runs-dry',
      text: 'Tesarik (seed 002): "Allocating from CMA did work but only from process context" - an atomic allocation has only the atomic pool, which a burst of maps exhausts',
      left: { variant: 'atomic', metric: 'dma.atomic_pool.exhausted', per: 'schedule' },
      op: '>',
      right: 0,
    },
    {
      name: 'fixed-map-latency',
      text: 'Kelley (seed 002): "In CoCo VMs, these calls are expensive" - the fixed pool\'s mean dma_map_sg latency is at most 1/3 of the per-mapping design\'s',
      left: { variant: 'fixed', metric: 's07.map_ns', per: 's07.map_calls' },
      op: '<=',
      factor: 1 / 3,
      right: { variant: 'buggy', metric: 's07.map_ns', per: 's07.map_calls' },
    },
  ],
  perturbations: [
    { name: 'cpus-2', params: { cpus: 2 } },
    { name: 'cpus-8', params: { cpus: 8 } },
    { name: 'tdx', params: { platform: 'tdx' } },
    { name: 'psc-253', params: { pscMaxEntry: 253 } },
    { name: 'memory-2x', params: { memoryMiB: 512 } },
    { name: 'segments-32k', params: { segKiB: 32 } },
    { name: 'pool-order', params: { dynamicFirst: false, poolKiB: 1024 } },
  ],
  prepare(p, variant): Prepared {
    const v = VARIANTS[variant];
    if (p.segKiB <= 0 || p.objectKiB <= 0 || p.objectKiB % p.segKiB !== 0) throw new ProgramError('objectKiB must be a positive multiple of segKiB');
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    const size = variant === 'fixed' ? (p.fixedPoolKiB > 0 ? p.fixedPoolKiB * KIB : undefined) : p.poolKiB * KIB;
    const swiotlb = swiotlb_prepare(image, { cpus: p.cpus, size, cc: true, kernel: String(p.kernel), policy: v.policy({ dynamicFirst: p.dynamicFirst, maySleepGfp: p.maySleepGfp }) });
    return { image, swiotlb, restore: () => image.restore() };
  },
  build(m, { variant, params, state }) {
    if (params.platform !== 'sev-snp' && params.platform !== 'tdx') throw new ProgramError(`S7: platform must be sev-snp or tdx, got ${params.platform}`);
    mm_init(m, { image: state.image, coco: params.platform as CocoKind, hypercallNs: params.hypercallNs });
    set_memory_platform(m, { pscMaxEntry: params.pscMaxEntry });
    dma_init(m, { swiotlb: state.swiotlb });
    const attrs = VARIANTS[variant].maySleep ? DMA_ATTR_MAY_SLEEP : 0;
    // drm device: a 64-bit coherent DMA master with large segments (the GPU's own limits)
    const gpu = device_register(m, { name: 'gpu0', maxSegSize: params.segKiB * KIB });
    const objBytes = params.objectKiB * KIB;
    const segBytes = params.segKiB * KIB;
    const nseg = objBytes / segBytes;
    const sim = m.sim;
    for (const cpu of m.cpus) {
      const done: completion = DECLARE_COMPLETION(m, `gpu0:job${cpu.id}`);
      const irq = request_irq(m, cpu.id, `gpu0:ring${cpu.id}`, function* gpu_irq_handler(cur) {
        yield* complete(cur, done);
      });
      m.process(`drm/${cpu.id}`, cpu.id, function* (cur) {
        const ps = 4096;
        const order = get_order(objBytes, ps);
        // drm_gem_shmem_get_pages: the object's backing pages
        const pfn = yield* alloc_pages(cur, GFP_KERNEL, order);
        if (pfn < 0) return;
        for (let j = 0; j < params.jobs; j++) {
          const sgl = sg_init_table(nseg);
          for (let s = 0; s < nseg; s++) sg_set_page(sgl[s], pfn + (s * segBytes) / ps, segBytes, 0);
          const t0 = sim.now();
          // drm_gem_shmem_get_pages_sgt -> dma_map_sgtable(dev, sgt, DMA_BIDIRECTIONAL, DMA_ATTR_MAY_SLEEP)
          const n = yield* fn(cur, 'drm_gem_map_attach', dma_map_sg(cur, gpu, sgl, nseg, DMA_BIDIRECTIONAL, attrs));
          const dt = sim.now() - t0;
          sim.count('s07.map_calls', 1);
          sim.count('s07.map_ns', dt);
          sim.peak('s07.map_ns_max', dt);
          if (n === 0) {
            sim.count('s07.map_failures', 1);
            continue;
          }
          // the GPU runs the job and raises its ring interrupt
          sim.timer(sim.now() + params.gpuNs, () => raise_irq(m, irq), 'gpu0:job');
          yield* wait_for_completion(cur, done);
          yield* fn(cur, 'drm_gem_map_detach', dma_unmap_sg(cur, gpu, sgl, nseg, DMA_BIDIRECTIONAL, attrs));
        }
        __free_pages(cur, pfn, order);
      });
    }
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
