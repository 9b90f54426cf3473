/**
 * S13: a large fixed swiotlb on a small-memory Arm device costs OOM kills; a small pool that
 * grows on demand avoids them (Petr Tesarik, cover letter of "[PATCH v2 RESEND 0/7] Allow
 * dynamic allocation of software IO TLB bounce buffers", 2023-05-09; seed 004: "other
 * colleagues have noticed that they can reliably get rid of occasional OOM kills on an Arm
 * embedded device by reducing the SWIOTLB size").
 *
 * The boot pool is carved out of memory for good (memblock), so on a 256 MiB board the default
 * 64 MiB is a quarter of RAM. Resident system daemons plus an application that faults in its
 * working set then no longer fit: the page allocator reclaims what page cache there is, finds no
 * swap for the anonymous memory, and the OOM killer runs (lib/mm/oom.ts). Meanwhile a block
 * device keeps bouncing I/O through the swiotlb.
 *
 * Simplified: the NVMe-like block device (lib/devices/nvme.ts) stands in for the board's eMMC/SD
 * host; `swiotlb=force` stands in for the SoC's DMA addressing limit (the memory model places RAM
 * from address 0, so a 32-bit master would reach all of a small board's RAM).
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { dma_init } from '../lib/dma/init';
import type { PolicySpec } from '../lib/dma/swiotlb/policy';
import { swiotlb_prepare, type SwiotlbImage } from '../lib/dma/swiotlb/setup';
import { fio, nvme_probe, parseSizes } from '../lib/devices/nvme';
import { fn } from '../lib/kernel/stack';
import { handle_mm_fault, mm_init, mm_prepare, MIB, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';

const KIB = 1024;

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  restore(): void;
}

/** Per-variant pool: the default 64 MiB static pool, or a small one of a growing design. */
function poolOf(variant: string, p: { poolMiB: number; smallPoolKiB: number; policy: string }): { size: number; policy: PolicySpec } {
  if (variant === 'buggy') return { size: p.poolMiB * MIB, policy: { name: 'static' } };
  return { size: p.smallPoolKiB * KIB, policy: { name: p.policy } };
}

const scenario = defineScenario({
  id: 'S13',
  name: 'Arm embedded board: a 64 MiB fixed swiotlb on a small-memory machine leads to OOM kills; a small growing pool does not',
  description:
    'Claim (Petr Tesarik, cover letter "[PATCH v2 RESEND 0/7] Allow dynamic allocation of software IO TLB bounce buffers", 2023-05-09, seed 004): on an Arm embedded device occasional OOM kills went away by reducing the SWIOTLB size; allocating it small and growing on demand avoids them without tuning. ' +
    'A 256 MiB arm64 board: resident daemons, an application faulting in its working set (handle_mm_fault, no swap), and fio on a block device whose DMA bounces through the swiotlb. ' +
    'buggy: the default static pool (IO_TLB_DEFAULT_SIZE, 64 MiB) carved out at boot: the allocator runs out, direct reclaim finds only page cache, and the OOM killer kills (oom_kill). ' +
    'fixed: a 1 MiB boot pool with CONFIG_SWIOTLB_DYNAMIC growth (upstream: worker pools of up to 4 MiB with GFP_KERNEL, transient pools meanwhile): no OOM kill, every request completes, no swiotlb_full.',
  params: {
    /** The kernel (lib/kernel/config.ts, lib/dma/swiotlb/profile.ts): the thread (v2 cover letter, 2023-05) was on a v6.3 base, but the fixed variant grows the pool as upstream's merged design does, first in v6.6 (CONFIG_SWIOTLB_DYNAMIC), which 6.3 does not have. --kernel overrides. */
    kernel: '6.6',
    cpus: 4,
    memoryMiB: 256,
    /** The static pool (buggy). */
    poolMiB: 64,
    /** The growing design's boot pool (fixed) and the design. */
    smallPoolKiB: 1024,
    policy: 'upstream',
    /** Resident anonymous memory of the system daemons, and clean page cache at boot. */
    backgroundMiB: 96,
    pageCacheMiB: 16,
    /** The application's working set, faulted in chunks while the I/O runs. */
    appMiB: 100,
    chunkKiB: 1024,
    /** fio on the block device (CPUs 1..n-1; CPU 0 when there is one CPU). */
    iodepth: 8,
    requests: 32,
    sizes: '65536*2,16384',
  },
  machine: (p) => ({ cpus: p.cpus, arch: 'arm64' }),
  variants: [
    { name: 'buggy', expect: { findings: ['oom_kill'], absent: ['swiotlb_full', 'deadlock', 'no_progress', 'might_sleep', 'lockdep'] } },
    { name: 'fixed', expect: { clean: true, metrics: ['blk.requests', 'swiotlb.maps', 'mm.used_pages_peak'] } },
  ],
  options: { iterations: 2, strategy: 'pct' },
  keyMetrics: ['mm.oom_kill', 'swiotlb.footprint_bytes_peak', 'swiotlb.used_slots_peak', 'swiotlb.grow_pools', 'blk.requests', 's13.app_pages', 'swiotlb.full', 'blk.requeues'],
  derive(m, schedules) {
    return {
      oom_kills_per_run: (m['mm.oom_kill'] ?? 0) / schedules,
      swiotlb_footprint_MiB: (m['swiotlb.footprint_bytes_peak'] ?? 0) / MIB,
    };
  },
  perturbations: [
    { name: 'cpus-2', params: { cpus: 2 } },
    { name: 'cpus-8', params: { cpus: 8 } },
    { name: 'memory-2x', params: { memoryMiB: 512, backgroundMiB: 200, appMiB: 250 } },
    { name: 'deep-queue', params: { iodepth: 32, requests: 64 } },
    { name: 'small-io', params: { sizes: '4096*3,16384' } },
  ],
  prepare(p, variant): Prepared {
    const image = mm_prepare({ memory: p.memoryMiB * MIB, pageCache: p.pageCacheMiB * MIB, processes: [{ comm: 'systemd-daemons', anon: p.backgroundMiB * MIB }] });
    const pool = poolOf(variant, p);
    const swiotlb = swiotlb_prepare(image, { cpus: p.cpus, size: pool.size, force: true, kernel: String(p.kernel), policy: pool.policy });
    return { image, swiotlb, restore: () => image.restore() };
  },
  build(m, { params, state }) {
    mm_init(m, { image: state.image });
    dma_init(m, { swiotlb: state.swiotlb });
    const mmc = nvme_probe(m, { name: 'mmc0', queueDepth: Math.max(params.iodepth, 1) });
    const ioCpus = m.cpus.length > 1 ? m.cpus.slice(1).map((c) => c.id) : [0];
    fio(m, mmc, { cpus: ioCpus, iodepth: params.iodepth, requests: params.requests, sizes: parseSizes(params.sizes), rw: 'write' });
    const sim = m.sim;
    // the application: fault its working set in, a chunk at a time, while the I/O runs
    m.process('app', 0, function* (cur) {
      const total = Math.ceil((params.appMiB * MIB) / 4096);
      const chunk = Math.max(1, Math.ceil((params.chunkKiB * KIB) / 4096));
      let got = 0;
      while (got < total) {
        const want = Math.min(chunk, total - got);
        const n = yield* fn(cur, 'do_anonymous_page', handle_mm_fault(cur, want));
        got += n;
        if (n < want) break; // VM_FAULT_OOM or killed
        yield cur.thread.work(20_000);
      }
      sim.count('s13.app_pages', got);
    });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
