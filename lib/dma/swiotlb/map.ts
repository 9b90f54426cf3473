/**
 * What every swiotlb design shares (docs/kernel-facts.md §1.6, 1.7): swiotlb_tbl_map_single's size and
 * alignment arithmetic, the "buffer is full" report, the bounce copies (map always copies to
 * the device buffer, even for DMA_FROM_DEVICE), unmap's copy back, sync, and swiotlb_map's
 * reachability check. The design in use (policy.ts) supplies the room and the lookups.
 *
 * Simplified: x86_64 has no highmem, so bounce copies never go page by page with IRQs off;
 * phys_to_dma is the identity (no memory encryption bit in bus addresses).
 */
import type { KernelBody } from '../../kernel/machine';
import type { Task } from '../../kernel/task';
import { DMA_ATTR_NO_WARN, DMA_ATTR_SKIP_CPU_SYNC, DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_MAPPING_ERROR, DMA_TO_DEVICE } from '../attrs';
import { dma_capable, dma_limit, fmtMask, type device } from '../device';
import { IO_TLB_MAX_BYTES, IO_TLB_SIZE, MAP_OVERHEAD_NS, INVALID_PHYS_ADDR } from './constants';
import { swiotlb_align_offset } from './find';
import { BounceRef } from './policy';
import { swiotlbIfPresent, type SwiotlbState } from './state';

export const M_MAPS = 'swiotlb.maps';
export const M_UNMAPS = 'swiotlb.unmaps';
export const M_SYNCS = 'swiotlb.syncs';
export const M_BOUNCE_BYTES = 'swiotlb.bounce_bytes';
export const M_COPY_NS = 'swiotlb.copy_ns';
export const M_FULL = 'swiotlb.full';
export const M_FULL_NOWARN = 'swiotlb.full_nowarn';
export const M_USED_PEAK = 'swiotlb.used_slots_peak';
export const M_FOOTPRINT_PEAK = 'swiotlb.footprint_bytes_peak';

/** The record behind a "swiotlb buffer is full" report (lib/check/dma.ts). */
export interface SwiotlbFullInfo {
  dev: string;
  /** The size searched for (mapping size + offset, aligned). */
  size: number;
  /** mem->nslabs and slots in use when it failed. */
  total: number;
  used: number;
  /** The request was larger than any mapping can be (256 KiB less the min_align offset). */
  tooLarge: boolean;
  policy: string;
}

/** A WARN on the mapping path (overflow, buffer overflow), reported through DMA-API debug. */
export interface DmaWarnInfo {
  subkind: string;
  dev: string;
  message: string;
}

function st(dev: device): SwiotlbState | null {
  return swiotlbIfPresent(dev.m);
}

/** swiotlb_max_mapping_size: 256 KiB, less the min_align_mask offset a mapping may need. */
export function swiotlb_max_mapping_size(dev: device): number {
  const min = dev.min_align_mask;
  const align = min === 0 ? 0 : Math.ceil(min / IO_TLB_SIZE) * IO_TLB_SIZE;
  return IO_TLB_MAX_BYTES - align;
}

/** is_swiotlb_active: the device has a swiotlb with slots. */
export function is_swiotlb_active(dev: device): boolean {
  const mem = dev.dma_io_tlb_mem;
  return mem !== null && mem.nslabs > 0;
}

/** is_swiotlb_force_bounce: every streaming mapping of this device bounces. */
export function is_swiotlb_force_bounce(dev: device): boolean {
  const mem = dev.dma_io_tlb_mem;
  return mem !== null && mem.force_bounce;
}

function copyCost(s: SwiotlbState, bytes: number): number {
  return Math.ceil(bytes / s.copyBytesPerNs);
}

/** swiotlb_bounce: copy between the original buffer and the bounce buffer. */
function* bounce(cur: Task, s: SwiotlbState, dev: device, tlbAddr: number, size: number, toDevice: boolean, ref: BounceRef): KernelBody<void> {
  let orig = ref.orig;
  if (orig === INVALID_PHYS_ADDR) return;
  const tlbOffset = tlbAddr & (IO_TLB_SIZE - 1);
  const origOffset = swiotlb_align_offset(dev, 0, orig);
  // v6.9+ (swiotlb_bounce): the difference may be negative - an address in the first `offset`
  // bytes of the mapping's second or later slot, e.g. a partial sync - and the copy goes ahead
  // from orig + that (negative) amount. Before v6.9 it was refused with a WARN and nothing copied.
  if (tlbOffset < origOffset && !s.mem.profile.negativeSyncOffset) {
    warn(cur, dev, 'access_before_start', `Access before mapping start detected. orig offset ${origOffset}, requested offset ${tlbOffset}.`);
    return;
  }
  const into = tlbOffset - origOffset;
  let allocSize = ref.remaining;
  if (into > allocSize && !s.mem.profile.negativeSyncOffset) {
    warn(cur, dev, 'buffer_overflow', `Buffer overflow detected. Allocation size: ${allocSize}. Mapping size: ${size}+${into}.`);
    return;
  }
  orig += into;
  allocSize -= into;
  if (size > allocSize) {
    warn(cur, dev, 'buffer_overflow', `Buffer overflow detected. Allocation size: ${allocSize}. Mapping size: ${size}.`);
    size = allocSize;
  }
  if (size <= 0) return;
  const ns = copyCost(s, size);
  yield cur.thread.work(ns);
  const sim = cur.thread.sim;
  sim.count(M_BOUNCE_BYTES, size);
  sim.count(M_COPY_NS, ns);
  const c = s.contents;
  if (c !== null) {
    if (toDevice) c.copy(tlbAddr, orig, size);
    else c.copy(orig, tlbAddr, size);
  }
}

function warn(cur: Task, dev: device, subkind: string, message: string): void {
  const info: DmaWarnInfo = { subkind, dev: dev.name, message };
  cur.cpu.machine.emit('dmaDebug', cur, info);
}

/**
 * swiotlb_tbl_map_single: a bounce buffer for [orig, orig + mappingSize), filled from the
 * original. Returns the bounce buffer's physical address, or DMA_MAPPING_ERROR.
 */
export function* swiotlb_tbl_map_single(cur: Task, dev: device, orig: number, mappingSize: number, allocAlignMask: number, dir: number, attrs: number): KernelBody<number> {
  const s = st(dev);
  const mem = dev.dma_io_tlb_mem;
  if (s === null || mem === null || mem.nslabs === 0) {
    warn(cur, dev, 'no_swiotlb', "Can not allocate SWIOTLB buffer earlier and can't now provide you with the DMA bounce buffer");
    return DMA_MAPPING_ERROR;
  }
  if (s.cc && !s.warnedCc) {
    s.warnedCc = true;
    s.m.log.printk(cur.cpu.id, 'Memory encryption is active and system is using DMA bounce buffers');
  }
  yield cur.thread.work(MAP_OVERHEAD_NS);
  const offset = swiotlb_align_offset(dev, allocAlignMask, orig, mem.profile.padSlots);
  const unit = allocAlignMask + 1;
  const size = Math.ceil((mappingSize + offset) / unit) * unit;
  // A request over 256 KiB never fits a pool run (free counters stop at a segment); the design
  // still gets it: the pools fail it, v6.6/v6.8 then kick growth and try a transient pool, v6.12
  // stops before growth, and a per-mapping design may give it a buffer of its own.
  const tooLarge = size > IO_TLB_MAX_BYTES;
  const tlb = yield* s.policy.map(cur, dev, orig, size, offset, allocAlignMask, attrs);
  const sim = cur.thread.sim;
  if (tlb < 0) {
    if (attrs & DMA_ATTR_NO_WARN) sim.count(M_FULL_NOWARN, 1);
    else {
      sim.count(M_FULL, 1);
      const info: SwiotlbFullInfo = { dev: dev.name, size, total: mem.nslabs, used: mem.total_used, tooLarge, policy: s.policy.name };
      cur.cpu.machine.emit('swiotlbFull', cur, info);
    }
    return DMA_MAPPING_ERROR;
  }
  sim.count(M_MAPS, 1);
  sim.peak(M_USED_PEAK, mem.total_used);
  sim.peak(M_FOOTPRINT_PEAK, s.policy.footprint(s));
  s.m.emit('swiotlbUsage', cur, s);
  // Always fill the bounce buffer, even for DMA_FROM_DEVICE: a device that writes less than
  // the whole buffer must not expose stale bounce contents to the original on unmap.
  const ref = new BounceRef();
  ref.orig = orig;
  ref.remaining = size - offset;
  yield* bounce(cur, s, dev, tlb, mappingSize, true, ref);
  return tlb;
}

/**
 * What is_swiotlb_buffer costs every dma_unmap / dma_sync caller (Hellwig, seeds/000: "overhead
 * even for callers that don't end up going into the dynamic range or do not use swiotlb at
 * all"): lookups that found a bounce buffer and lookups that found none (an address mapped
 * without bouncing), with the CPU time each took (range checks, index walk, index lock wait).
 */
export const M_FIND_HITS = 'swiotlb.find_hits';
export const M_FIND_HIT_NS = 'swiotlb.find_hit_ns';
export const M_FIND_MISSES = 'swiotlb.find_misses';
export const M_FIND_MISS_NS = 'swiotlb.find_miss_ns';

/** Every swiotlb_find_pool / is_swiotlb_buffer call (hits and misses). */
export const M_FIND_CALLS = 'swiotlb.find_calls';

/** Resolve a bounce address for `dev` (swiotlb_find_pool / is_swiotlb_buffer), or null. */
export function* swiotlb_find_pool(cur: Task, dev: device, tlbAddr: number): KernelBody<BounceRef | null> {
  const s = st(dev);
  if (s === null || dev.dma_io_tlb_mem === null) return null;
  const sim = cur.thread.sim;
  const t0 = sim.now();
  const ref = new BounceRef();
  const hit = yield* s.policy.find(cur, dev, tlbAddr, ref);
  const ns = sim.now() - t0;
  sim.count(M_FIND_CALLS, 1);
  sim.count(hit ? M_FIND_HITS : M_FIND_MISSES, 1);
  if (ns > 0) sim.count(hit ? M_FIND_HIT_NS : M_FIND_MISS_NS, ns);
  return hit ? ref : null;
}

/** is_swiotlb_buffer. */
export function* is_swiotlb_buffer(cur: Task, dev: device, phys: number): KernelBody<boolean> {
  return (yield* swiotlb_find_pool(cur, dev, phys)) !== null;
}

/**
 * The pool (or buffer) again, where the kernel looks it up again instead of using the one the
 * caller found: before v6.12 swiotlb_bounce, swiotlb_del_transient and swiotlb_release_slots each
 * call swiotlb_find_pool (v6.6-v6.11); on the single-pool kernels (v6.3) they index the one pool
 * directly, except that the per-mapping patches' swiotlb_bounce looks a dynamic buffer up in the
 * index again (lookup_dyn_slot). v6.12 passes the pool down: no second lookup.
 */
function* relookup(cur: Task, s: SwiotlbState, dev: device, tlbAddr: number, r: BounceRef, step: 'bounce' | 'release'): KernelBody<BounceRef> {
  const p = s.mem.profile;
  if (p.poolPassedDown) return r;
  const again = p.dynamic || (step === 'bounce' && r.pool === null);
  if (!again) return r;
  return (yield* swiotlb_find_pool(cur, dev, tlbAddr)) ?? r;
}

/**
 * swiotlb_tbl_unmap_single: copy back for FROM_DEVICE / BIDIRECTIONAL (unless
 * DMA_ATTR_SKIP_CPU_SYNC), then give the buffer back. `ref` from swiotlb_find_pool, or looked up.
 * Before v6.12, swiotlb_del_transient and swiotlb_release_slots look the pool up again each.
 */
export function* swiotlb_tbl_unmap_single(cur: Task, dev: device, tlbAddr: number, mappingSize: number, dir: number, attrs: number, ref?: BounceRef | null): KernelBody<void> {
  const s = st(dev);
  if (s === null) return;
  const r = ref ?? (yield* swiotlb_find_pool(cur, dev, tlbAddr));
  if (r === null) return;
  yield cur.thread.work(MAP_OVERHEAD_NS);
  if (!(attrs & DMA_ATTR_SKIP_CPU_SYNC) && (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL)) yield* bounce(cur, s, dev, tlbAddr, mappingSize, false, yield* relookup(cur, s, dev, tlbAddr, r, 'bounce'));
  if (s.mem.profile.dynamic && !s.mem.profile.poolPassedDown) {
    // swiotlb_del_transient, then swiotlb_release_slots: a swiotlb_find_pool each
    yield* relookup(cur, s, dev, tlbAddr, r, 'release');
    yield* relookup(cur, s, dev, tlbAddr, r, 'release');
  }
  yield* s.policy.release(cur, dev, tlbAddr, r);
  cur.thread.sim.count(M_UNMAPS, 1);
  s.m.emit('swiotlbUsage', cur, s);
}

/** swiotlb_sync_single_for_device: TO_DEVICE / BIDIRECTIONAL copy to the bounce buffer. */
export function* swiotlb_sync_single_for_device(cur: Task, dev: device, tlbAddr: number, size: number, dir: number, ref?: BounceRef | null): KernelBody<void> {
  const s = st(dev);
  if (s === null) return;
  const r = ref ?? (yield* swiotlb_find_pool(cur, dev, tlbAddr));
  if (r === null) return;
  cur.thread.sim.count(M_SYNCS, 1);
  if (dir === DMA_TO_DEVICE || dir === DMA_BIDIRECTIONAL) yield* bounce(cur, s, dev, tlbAddr, size, true, yield* relookup(cur, s, dev, tlbAddr, r, 'bounce'));
  else if (dir !== DMA_FROM_DEVICE) warn(cur, dev, 'bad_direction', `BUG: swiotlb_sync_single_for_device with direction ${dir}`);
}

/** swiotlb_sync_single_for_cpu: FROM_DEVICE / BIDIRECTIONAL copy back to the original. */
export function* swiotlb_sync_single_for_cpu(cur: Task, dev: device, tlbAddr: number, size: number, dir: number, ref?: BounceRef | null): KernelBody<void> {
  const s = st(dev);
  if (s === null) return;
  const r = ref ?? (yield* swiotlb_find_pool(cur, dev, tlbAddr));
  if (r === null) return;
  cur.thread.sim.count(M_SYNCS, 1);
  if (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL) yield* bounce(cur, s, dev, tlbAddr, size, false, yield* relookup(cur, s, dev, tlbAddr, r, 'bounce'));
  else if (dir !== DMA_TO_DEVICE) warn(cur, dev, 'bad_direction', `BUG: swiotlb_sync_single_for_cpu with direction ${dir}`);
}

/**
 * swiotlb_map: bounce `size` bytes at `phys` and return the bus address, or DMA_MAPPING_ERROR.
 * If the bounce buffer itself is beyond the device's reach the mapping is undone with a WARN
 * (once per device), as upstream.
 */
export function* swiotlb_map(cur: Task, dev: device, phys: number, size: number, dir: number, attrs: number): KernelBody<number> {
  const tlb = yield* swiotlb_tbl_map_single(cur, dev, phys, size, 0, dir, attrs);
  if (tlb === DMA_MAPPING_ERROR) return DMA_MAPPING_ERROR;
  if (!dma_capable(dev, tlb, size)) {
    yield* swiotlb_tbl_unmap_single(cur, dev, tlb, size, dir, attrs | DMA_ATTR_SKIP_CPU_SYNC);
    warn(cur, dev, 'map_overflow', `swiotlb addr 0x${tlb.toString(16)}+${size} overflow (mask ${fmtMask(dev.dma_mask)}, bus limit ${fmtMask(dev.bus_dma_limit)}).`);
    return DMA_MAPPING_ERROR;
  }
  return tlb;
}

export { dma_limit };

declare module '../../kernel/hooks' {
  interface HookPayloads {
    swiotlbFull: SwiotlbFullInfo;
    swiotlbUsage: SwiotlbState;
  }
}
