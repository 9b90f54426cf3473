/**
 * S11: DMA_ATTR_MAY_SLEEP from atomic context. Petr Tesarik's RFC "swiotlb: Allow dynamic
 * allocation of bounce buffers" (2023-03, seed 000) allocates the per-mapping descriptor and
 * buffer with GFP_NOWAIT unless the caller passes DMA_ATTR_MAY_SLEEP, then GFP_KERNEL (GFP_NOIO
 * in v2, "swiotlb: ... v2 RESEND", 2023-05, seed 004, whose patch 6/7 is "drm: Use
 * DMA_ATTR_MAY_SLEEP from process context"). The attribute is a promise about the caller's
 * context that nothing checks: a driver that passes it from a spinlocked section or an interrupt
 * handler makes swiotlb allocate with a blocking GFP in atomic context.
 *
 * Transcribed on a display controller (vc4's HVS, the drm user of the thread) whose mappings all
 * bounce (swiotlb=force: what a confidential guest does, and what vc4's 1 GiB bus limit does on
 * a Raspberry Pi 4 for buffers above it - the model places the pool as x86 does, so forcing is
 * the faithful way to get there); the scanout framebuffer,
 * mapped at modeset from the ioctl (process context, DMA_ATTR_MAY_SLEEP as drm does in v2),
 * fills the boot pool, so every further mapping gets a dynamic buffer (rfc-dynamic). Each page
 * flip maps the new cursor image: the atomic commit's process-context part maps it with
 * DMA_ATTR_MAY_SLEEP; the vblank interrupt handler, under the driver's event_lock, maps the
 * next overlay plane queued for that vblank.
 *   buggy: a shared mapping helper passes DMA_ATTR_MAY_SLEEP on both paths -> GFP_KERNEL
 *          allocations in hardirq context under a spinlock: might_sleep ("BUG: sleeping
 *          function called from invalid context").
 *   fixed: DMA_ATTR_MAY_SLEEP only from process context; the interrupt handler maps with
 *          GFP_NOWAIT (and DMA_ATTR_NO_WARN: it retries at the next vblank), so while a reader
 *          keeps memory at its watermarks some of those mappings fail: counted, not reported.
 *
 * Simplified: no real HVS programming or fences; a flip is "map, signal, unmap at the next
 * vblank"; memory pressure is a reader filling the page cache (clean, so reclaim needs no I/O).
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { DECLARE_COMPLETION, complete, wait_for_completion } from '../lib/kernel/completion';
import { raise_irq, request_irq } from '../lib/kernel/irq';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore } from '../lib/kernel/spinlock';
import { fn } from '../lib/kernel/stack';
import { GFP_ATOMIC, GFP_KERNEL, __GFP_NOWARN } from '../lib/kernel/gfp';
import { local_bh_disable, local_bh_enable } from '../lib/kernel/preemption';
import type { Task } from '../lib/kernel/task';
import { DMA_ATTR_MAY_SLEEP, DMA_ATTR_NO_WARN, DMA_MAPPING_ERROR, DMA_TO_DEVICE } from '../lib/dma/attrs';
import { dma_init } from '../lib/dma/init';
import { dma_map_page, dma_unmap_page } from '../lib/dma/mapping';
import { device_register } from '../lib/dma/state';
import { swiotlb_prepare, type SwiotlbImage } from '../lib/dma/swiotlb/setup';
import { alloc_pages, ALLOC_WMARK_MIN, kfree, kmalloc, get_order, LRU_FILE_CLEAN, mm_init, mm_prepare, MIB, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, wmark_pages, type MemoryImage } from '../lib/mm';
import { ProgramError } from '../scheduler';
import { defineScenario } from '../lib/scenario/define';

const PAGE = 4096;

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  /** Framebuffer (256 KiB blocks), cursor and overlay images, allocated at boot. */
  fb: number[];
  cursors: number[];
  overlays: number[];
  restore(): void;
}

export const M_IRQ_MAP_FAILURES = 'vc4.irq_map_failures';
export const M_IRQ_MAPS = 'vc4.irq_maps';

const scenario = defineScenario({
  id: 'S11',
  name: 'DMA_ATTR_MAY_SLEEP passed from atomic context makes swiotlb allocate with a blocking GFP',
  description:
    "Petr Tesarik, RFC 'swiotlb: Allow dynamic allocation of bounce buffers' (2023-03) and v2 RESEND (2023-05, 'drm: Use DMA_ATTR_MAY_SLEEP from process context'): per-mapping bounce buffers are allocated with GFP_NOWAIT unless the caller passes DMA_ATTR_MAY_SLEEP (then GFP_KERNEL in the RFC, GFP_NOIO in v2). " +
    'A vc4-like display controller whose mappings all bounce (swiotlb=force); its mappings of a page or more get dynamic buffers first, as the RFC tried them (rfc-dynamic), the pool when one cannot be had. ' +
    "buggy: the driver's mapping helper passes DMA_ATTR_MAY_SLEEP also from the vblank interrupt handler under event_lock -> might_sleep (the handler passes DMA_ATTR_NO_WARN in both variants: a GFP_KERNEL allocation in the handler can still fail under the memory pressure, and its fallback to the full pool is then counted, not printed; before this was made equal, buggy reported an extra swiotlb_full in most schedules, e.g. --seed 13). " +
    'fixed: DMA_ATTR_MAY_SLEEP only from the ioctl (process context); the handler maps with GFP_NOWAIT and DMA_ATTR_NO_WARN -> clean, with the dynamic buffers GFP_NOWAIT cannot get while a reader keeps memory at its watermarks counted (swiotlb.dyn_alloc_failures; the RFC then falls back to the pool, so vc4.irq_map_failures stays low - since issue 19 the RFC tries the dynamic buffer first, as posted).',
  params: {
    /** The kernel of the threads (RFC 2023-03 and v2 2023-05, both on v6.3): the machine's kernel and the swiotlb profile; --kernel overrides. */
    kernel: '6.3',
    cpus: 2,
    memoryMiB: 256,
    /** swiotlb boot pool and the framebuffer that fills it but for one cursor's room (KiB). */
    poolKiB: 1024,
    fbKiB: 1008,
    /** Cursor (process context) and overlay (interrupt handler) images per flip (KiB). */
    cursorKiB: 16,
    overlayKiB: 64,
    flips: 6,
    /** maySleepGfp of the design: GFP_KERNEL (RFC) or GFP_NOIO (v2). */
    gfp: 'GFP_KERNEL',
    /** Free pages below the min watermark at boot (the rest is clean page cache). */
    belowMin: 32,
    /** Pages the NIC's RX refill takes with GFP_ATOMIC while the flips run. */
    rxPages: 256,
  },
  machine: (p) => ({ cpus: p.cpus }),
  variants: [
    { name: 'buggy', expect: { findings: ['might_sleep', 'lockdep'] }, options: { iterations: 10 } },
    { name: 'fixed', expect: { clean: true, metrics: [M_IRQ_MAPS, M_IRQ_MAP_FAILURES, 'swiotlb.dyn_allocs'] }, options: { iterations: 20 } },
  ],
  options: { iterations: 20 },
  keyMetrics: ['might_sleep.printed', 'might_sleep.suppressed', M_IRQ_MAPS, M_IRQ_MAP_FAILURES, 'swiotlb.dyn_allocs', 'swiotlb.dyn_alloc_failures'],
  derive: (m) => ({ 'vc4.irq_map_failure_pct': (100 * (m[M_IRQ_MAP_FAILURES] ?? 0)) / (m[M_IRQ_MAPS] ?? 0) }),
  perturbations: [
    { name: 'cpus-4', params: { cpus: 4 } },
    { name: 'flips-12', params: { flips: 12 } },
    { name: 'big-overlay', params: { overlayKiB: 256 } },
    { name: 'memory-2x', params: { memoryMiB: 512 } },
  ],
  prepare(p): Prepared {
    if (p.gfp !== 'GFP_KERNEL' && p.gfp !== 'GFP_NOIO') throw new ProgramError(`gfp must be GFP_KERNEL or GFP_NOIO, got ${String(p.gfp)}`);
    if (!(Number.isInteger(p.memoryMiB) && p.memoryMiB >= 64)) throw new ProgramError(`memoryMiB must be an integer of at least 64, got ${p.memoryMiB}`);
    for (const k of ['poolKiB', 'fbKiB', 'cursorKiB', 'overlayKiB', 'flips'] as const) if (!(Number.isInteger(p[k]) && p[k] >= 1)) throw new ProgramError(`${k} must be a positive integer, got ${p[k]}`);
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    const swiotlb = swiotlb_prepare(image, { cpus: p.cpus, size: p.poolKiB * 1024, force: true, kernel: String(p.kernel), policy: { name: 'rfc-dynamic', maySleepGfp: p.gfp } });
    const phys = image.phys;
    const zones = phys.zones;
    const boot = (bytes: number, mt: number): number => {
      const pfn = phys.rmqueue(zones[zones.length - 1], get_order(bytes, PAGE), mt, 0);
      if (pfn < 0) throw new ProgramError('no room for the display buffers');
      return pfn;
    };
    const fb: number[] = [];
    for (let left = p.fbKiB * 1024; left > 0; left -= 256 * 1024) fb.push(boot(Math.min(left, 256 * 1024), MIGRATE_UNMOVABLE));
    const cursors: number[] = [];
    const overlays: number[] = [];
    for (let i = 0; i < p.flips; i++) {
      cursors.push(boot(p.cursorKiB * 1024, MIGRATE_UNMOVABLE));
      overlays.push(boot(p.overlayKiB * 1024, MIGRATE_UNMOVABLE));
    }
    // The rest: clean page cache (reclaimable without I/O), down to belowMin pages under min.
    const top = zones[zones.length - 1];
    const keep = Math.max(0, wmark_pages(top, ALLOC_WMARK_MIN) - p.belowMin);
    for (let z = 0; z < zones.length; z++) {
      const zone = zones[z];
      const want = z === zones.length - 1 ? keep : 0;
      while (zone.nr_free > want) {
        const pfn = phys.rmqueue(zone, 0, MIGRATE_MOVABLE, 0);
        if (pfn < 0) break;
        image.lru.add(LRU_FILE_CLEAN, pfn);
      }
    }
    image.snapshot();
    return { image, swiotlb, fb, cursors, overlays, restore: () => image.restore() };
  },
  build(m, { variant, params, state }) {
    mm_init(m, { image: state.image });
    dma_init(m, { swiotlb: state.swiotlb });
    const hvs = device_register(m, { name: 'vc4-hvs', dmaBits: 32 });
    const event_lock = DEFINE_SPINLOCK(m, '&dev->event_lock');
    const cursorBytes = params.cursorKiB * 1024;
    const overlayBytes = params.overlayKiB * 1024;
    // What the vblank handler maps with: the bug is one helper passing MAY_SLEEP everywhere. Both
    // variants pass DMA_ATTR_NO_WARN there (the plane is retried at the next vblank): without it the
    // buggy handler's GFP_KERNEL allocation, which fails under the watermark pressure the NIC
    // creates, would fall back to the full boot pool and print "swiotlb buffer is full" in some
    // schedules - a second difference between the variants, not the bug under test.
    const irqAttrs = (variant === 'buggy' ? DMA_ATTR_MAY_SLEEP : 0) | DMA_ATTR_NO_WARN;
    const pending: number[] = [];
    let shown: { addr: number; bytes: number } | null = null;
    const flipDone = DECLARE_COMPLETION(m, 'flip_done');
    const vblank = request_irq(m, 0, 'vc4-crtc', function* vc4_crtc_irq_handler(cur: Task) {
      yield* spin_lock(cur, event_lock);
      yield* fn(cur, 'vc4_crtc_handle_page_flip', (function* () {
        const sim = cur.thread.sim;
        while (pending.length > 0) {
          const pfn = pending.shift()!;
          sim.count(M_IRQ_MAPS, 1);
          sim.count(M_IRQ_MAP_FAILURES, 0);
          const addr = yield* dma_map_page(cur, hvs, pfn, 0, overlayBytes, DMA_TO_DEVICE, irqAttrs);
          if (addr === DMA_MAPPING_ERROR) {
            sim.count(M_IRQ_MAP_FAILURES, 1); // the plane stays as it was until the next vblank
            continue;
          }
          if (shown !== null) yield* dma_unmap_page(cur, hvs, shown.addr, shown.bytes, DMA_TO_DEVICE, 0);
          shown = { addr, bytes: overlayBytes };
        }
      })());
      yield* spin_unlock(cur, event_lock);
      yield* complete(cur, flipDone);
    });
    m.process('Xorg', params.cpus > 1 ? 1 : 0, function* (cur) {
      // modeset: drm_gem_shmem_get_pages_sgt builds the framebuffer's table (sg_alloc_table,
      // GFP_KERNEL) and maps it (process context, MAY_SLEEP)
      const nents = Math.ceil(params.fbKiB / 256);
      const sgt = yield* fn(cur, 'sg_alloc_table', kmalloc(cur, nents * 32, GFP_KERNEL));
      const fb: number[] = [];
      for (let i = 0, left = params.fbKiB * 1024; left > 0; i++, left -= 256 * 1024) {
        fb.push(yield* fn(cur, 'drm_gem_shmem_get_pages_sgt', dma_map_page(cur, hvs, state.fb[i], 0, Math.min(left, 256 * 1024), DMA_TO_DEVICE, DMA_ATTR_MAY_SLEEP)));
      }
      for (let i = 0; i < params.flips; i++) {
        // DRM_IOCTL_MODE_ATOMIC: the cursor is mapped in the ioctl (process context, MAY_SLEEP)
        const cursor = yield* fn(cur, 'drm_atomic_helper_prepare_planes', dma_map_page(cur, hvs, state.cursors[i], 0, cursorBytes, DMA_TO_DEVICE, DMA_ATTR_MAY_SLEEP));
        const flags = yield* spin_lock_irqsave(cur, event_lock);
        pending.push(state.overlays[i]);
        yield* spin_unlock_irqrestore(cur, event_lock, flags);
        yield* raise_irq(cur, vblank); // the next vblank
        yield* wait_for_completion(cur, flipDone);
        if (cursor !== DMA_MAPPING_ERROR) yield* dma_unmap_page(cur, hvs, cursor, cursorBytes, DMA_TO_DEVICE, 0);
      }
      const last = shown as { addr: number; bytes: number } | null;
      if (last !== null) yield* dma_unmap_page(cur, hvs, last.addr, last.bytes, DMA_TO_DEVICE, 0);
      shown = null;
      yield* kfree(cur, sgt);
      for (let i = 0, left = params.fbKiB * 1024; left > 0; i++, left -= 256 * 1024) {
        if (fb[i] !== DMA_MAPPING_ERROR) yield* dma_unmap_page(cur, hvs, fb[i], Math.min(left, 256 * 1024), DMA_TO_DEVICE, 0);
      }
    });
    // NAPI polls refill a NIC's RX ring with GFP_ATOMIC pages that the socket queues hold on to:
    // atomic allocations reach under the min watermark, where GFP_NOWAIT gets nothing
    m.kthread('napi/eth0-0', 0, function* (cur) {
      for (let n = 0; n < params.rxPages; n += 16) {
        yield* local_bh_disable(cur);
        yield* fn(cur, 'page_pool_alloc_pages', (function* () {
          for (let k = 0; k < 16; k++) if ((yield* alloc_pages(cur, GFP_ATOMIC | __GFP_NOWARN, 0)) < 0) break;
        })());
        yield* local_bh_enable(cur);
      }
    });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
