/**
 * CONFIG_DMA_API_DEBUG (kernel/dma/debug.c): every successful map, sg map and coherent
 * allocation leaves an entry on its device, keyed by bus address; every unmap, free and sync is
 * checked against the entries (check_unmap, check_sync), and a device released with entries
 * left reports the leak (dma_debug_device_change on BUS_NOTIFY_UNBOUND_DRIVER). Each misuse is
 * handed to the 'dmaDebug' hook as a DmaDebugInfo; lib/check/dma.ts turns it into a finding.
 *
 * Simplified: one entry table per device instead of upstream's global hash with bucket locks,
 * and no entry preallocation (dma-debug never runs out of entries here); the checks cost no
 * virtual time, so these are plain functions (call them without `yield*`). The map-error
 * tracking (MAP_ERR_NOT_CHECKED), the stack/rodata checks and active-cacheline overlap tracking
 * are not modelled. Upstream cannot tell a double unmap from an unmap of a never-mapped address
 * (both print "tries to free DMA memory it has not allocated"); a short history of freed entries
 * lets the finding say which (double_unmap versus unknown_unmap) with the same text.
 */
import type { Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';
import { DMA_BIDIRECTIONAL, DMA_DIR_NAMES, DMA_FROM_DEVICE, DMA_MAPPING_ERROR, DMA_TO_DEVICE } from './attrs';
import type { device } from './device';
import { dmaIfPresent } from './state';
import type { DmaWarnInfo } from './swiotlb/map';

/** How the memory was mapped: dma_map_single, dma_map_page, dma_map_sg, dma_alloc_coherent. */
export type DmaDebugType = 'single' | 'page' | 'sg' | 'coherent';

/** type2name[] as debug.c prints it. */
const TYPE_NAMES: Record<DmaDebugType, string> = { single: 'single', page: 'page', sg: 'scatter-gather', coherent: 'coherent' };

/** struct dma_debug_entry: one live mapping of a device. */
export interface dma_debug_entry {
  type: DmaDebugType;
  addr: number;
  size: number;
  dir: number;
  /** Coherent allocations: the CPU address (checked on free). */
  vaddr: number;
  /** Scatterlists: the nents passed to dma_map_sg, and how many segments it returned. */
  sgCallEnts: number;
  sgMappedEnts: number;
  /** Where it was mapped (dump_entry_trace's "Mapped at"). */
  cpu: number;
  pid: number;
  comm: string;
  site: string;
  time: number;
}

/** What a misuse report carries (the 'dmaDebug' hook). */
export interface DmaDebugInfo {
  subkind: DmaDebugSubkind;
  dev: string;
  /** The DMA-API line as err_printk prints it ("DMA-API: <dev>: device driver ..."). */
  text: string;
  /** The debug.c function that noticed (check_unmap, check_sync, ...). */
  fn: string;
  addr: number;
  size: number;
  /** The entry it matched (its "Mapped at" site), or null. */
  entry: dma_debug_entry | null;
  /** leak: every entry left, one report line each. */
  entries?: dma_debug_entry[];
  count?: number;
}

export type DmaDebugSubkind =
  | 'unknown_unmap'
  | 'double_unmap'
  | 'invalid_unmap'
  | 'size_mismatch'
  | 'type_mismatch'
  | 'cpu_addr_mismatch'
  | 'sg_count_mismatch'
  | 'direction_mismatch'
  | 'sync_unmapped'
  | 'sync_overflow'
  | 'sync_direction'
  | 'sg_segment'
  | 'leak';

/** The scatterlist fields dma-debug reads (lib/dma/scatterlist.ts has the full struct). */
export interface DebugSg {
  dma_address: number;
  dma_length: number;
  length: number;
}

export const M_DEBUG_ERRORS = 'dma_debug.errors';
export const M_DEBUG_ENTRIES_PEAK = 'dma_debug.entries_peak';

/** How many unmapped entries a device remembers to tell a double unmap from an unknown one. */
export const DMA_DEBUG_FREED_HISTORY = 64;

/** A device's dma-debug state (dev.dmaDebug). */
export class DmaDebugDev {
  /** Live entries by bus address; more than one only when a driver maps one address twice. */
  readonly entries = new Map<number, dma_debug_entry[]>();
  live = 0;
  /** The most recently unmapped entries, a ring. */
  readonly freed: (dma_debug_entry | null)[] = new Array<dma_debug_entry | null>(DMA_DEBUG_FREED_HISTORY).fill(null);
  freedNext = 0;

  add(e: dma_debug_entry): void {
    const list = this.entries.get(e.addr);
    if (list === undefined) this.entries.set(e.addr, [e]);
    else list.push(e);
    this.live++;
  }

  remove(e: dma_debug_entry): void {
    const list = this.entries.get(e.addr);
    if (list === undefined) return;
    const i = list.indexOf(e);
    if (i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.entries.delete(e.addr);
    this.live--;
    this.freed[this.freedNext] = e;
    this.freedNext = (this.freedNext + 1) % DMA_DEBUG_FREED_HISTORY;
  }

  /** bucket_find_exact: an entry at `addr`, the best fit of several (same size, type, direction). */
  findExact(addr: number, size: number, type: DmaDebugType, dir: number): dma_debug_entry | null {
    const list = this.entries.get(addr);
    if (list === undefined) return null;
    if (list.length === 1) return list[0];
    let best = list[0];
    let bestScore = -1;
    for (const e of list) {
      const score = (e.size === size ? 4 : 0) + (e.type === type ? 2 : 0) + (e.dir === dir ? 1 : 0);
      if (score > bestScore) {
        best = e;
        bestScore = score;
      }
    }
    return best;
  }

  /** bucket_find_contain: the entry whose range holds `addr` (a partial sync). */
  findContaining(addr: number): dma_debug_entry | null {
    const exact = this.entries.get(addr);
    if (exact !== undefined) return exact[0];
    for (const list of this.entries.values()) {
      for (const e of list) if (addr >= e.addr && addr < e.addr + e.size) return e;
    }
    return null;
  }

  /** The newest unmapped entry at `addr`, if it is still remembered. */
  findFreed(addr: number): dma_debug_entry | null {
    for (let k = 1; k <= DMA_DEBUG_FREED_HISTORY; k++) {
      const e = this.freed[(this.freedNext - k + DMA_DEBUG_FREED_HISTORY) % DMA_DEBUG_FREED_HISTORY];
      if (e === null) return null;
      if (e.addr === addr) return e;
    }
    return null;
  }

  /** Every live entry, oldest mapping first. */
  list(): dma_debug_entry[] {
    const all: dma_debug_entry[] = [];
    for (const l of this.entries.values()) all.push(...l);
    all.sort((a, b) => a.time - b.time);
    return all;
  }
}

/** dma_debug_disabled(): whether `dev`'s machine runs dma-debug. */
export function dma_debug_enabled(m: Machine): boolean {
  const st = dmaIfPresent(m);
  return st !== null && st.debug;
}

function state(dev: device): DmaDebugDev | null {
  if (!dma_debug_enabled(dev.m)) return null;
  let d = dev.dmaDebug as DmaDebugDev | undefined;
  if (d === undefined) {
    d = new DmaDebugDev();
    dev.dmaDebug = d;
  }
  return d;
}

/** A device's dma-debug entries (empty when dma-debug is off). */
export function dma_debug_entries(dev: device): dma_debug_entry[] {
  const d = dev.dmaDebug as DmaDebugDev | undefined;
  return d === undefined ? [] : d.list();
}

/** Frames of the DMA layer itself: the "Mapped at" site is the first frame outside them. */
const DMA_FRAME_PREFIXES = ['dma_', '__dma_', 'debug_dma_', 'iommu_dma_', '__iommu_dma_', 'swiotlb_', 'dma_direct_', 'iommu_'];

/** The innermost frame of `cur` outside the DMA layer (the driver that called in). */
export function dma_caller(cur: Task): string {
  const s = cur.stack;
  for (let i = s.length - 1; i >= 0; i--) {
    const f = s[i];
    let dma = false;
    for (const p of DMA_FRAME_PREFIXES) {
      if (f.startsWith(p)) {
        dma = true;
        break;
      }
    }
    if (!dma) return f;
  }
  return cur.context;
}

function hex16(v: number): string {
  return `0x${v.toString(16).padStart(16, '0')}`;
}

function dirName(dir: number): string {
  return DMA_DIR_NAMES[dir] ?? `direction ${dir}`;
}

function makeEntry(cur: Task, type: DmaDebugType, addr: number, size: number, dir: number): dma_debug_entry {
  return {
    type,
    addr,
    size,
    dir,
    vaddr: 0,
    sgCallEnts: 0,
    sgMappedEnts: 0,
    cpu: cur.cpu.id,
    pid: cur.pid,
    comm: cur.comm,
    site: dma_caller(cur),
    time: cur.thread.sim.now(),
  };
}

/** err_printk: count the error and hand the report to the detectors. */
function err(cur: Task | null, dev: device, subkind: DmaDebugSubkind, fn: string, msg: string, addr: number, size: number, entry: dma_debug_entry | null, extra?: Partial<DmaDebugInfo>): void {
  dev.m.sim.count(M_DEBUG_ERRORS, 1);
  const info: DmaDebugInfo = { subkind, dev: dev.name, text: `DMA-API: ${dev.name}: ${msg}`, fn, addr, size, entry, ...extra };
  dev.m.emit('dmaDebug', cur, info);
}

function added(dev: device, d: DmaDebugDev): void {
  dev.m.sim.peak(M_DEBUG_ENTRIES_PEAK, d.live);
}

/** debug_dma_map_page / debug_dma_map_single: record a successful streaming mapping. */
export function debug_dma_map_page(cur: Task, dev: device, addr: number, size: number, dir: number, type: DmaDebugType = 'page'): void {
  const d = state(dev);
  if (d === null || addr === DMA_MAPPING_ERROR) return;
  d.add(makeEntry(cur, type, addr, size, dir));
  added(dev, d);
}

/**
 * check_unmap: the entry at `addr` must exist and match in size, type, direction (and CPU
 * address, sg count); it is removed either way.
 */
function check_unmap(cur: Task, dev: device, d: DmaDebugDev, ref: { type: DmaDebugType; addr: number; size: number; dir: number; vaddr?: number; sgCallEnts?: number }): void {
  const entry = d.findExact(ref.addr, ref.size, ref.type, ref.dir);
  if (entry === null) {
    if (ref.addr === DMA_MAPPING_ERROR) {
      err(cur, dev, 'invalid_unmap', 'check_unmap', 'device driver tries to free an invalid DMA memory address', ref.addr, ref.size, null);
      return;
    }
    const freed = d.findFreed(ref.addr);
    const msg = `device driver tries to free DMA memory it has not allocated [device address=${hex16(ref.addr)}] [size=${ref.size} bytes]`;
    err(cur, dev, freed !== null ? 'double_unmap' : 'unknown_unmap', 'check_unmap', msg, ref.addr, ref.size, freed);
    return;
  }
  const a = hex16(ref.addr);
  if (ref.size !== entry.size) {
    err(cur, dev, 'size_mismatch', 'check_unmap', `device driver frees DMA memory with different size [device address=${a}] [map size=${entry.size} bytes] [unmap size=${ref.size} bytes]`, ref.addr, ref.size, entry);
  }
  if (ref.type !== entry.type) {
    err(cur, dev, 'type_mismatch', 'check_unmap', `device driver frees DMA memory with wrong function [device address=${a}] [size=${ref.size} bytes] [mapped as ${TYPE_NAMES[entry.type]}] [unmapped as ${TYPE_NAMES[ref.type]}]`, ref.addr, ref.size, entry);
  } else if (entry.type === 'coherent' && ref.vaddr !== undefined && ref.vaddr !== entry.vaddr) {
    err(cur, dev, 'cpu_addr_mismatch', 'check_unmap', `device driver frees DMA memory with different CPU address [device address=${a}] [size=${ref.size} bytes] [cpu alloc address=0x${entry.vaddr.toString(16)}] [cpu free address=0x${ref.vaddr.toString(16)}]`, ref.addr, ref.size, entry);
  }
  if (ref.type === 'sg' && ref.sgCallEnts !== undefined && ref.sgCallEnts !== 0 && ref.sgCallEnts !== entry.sgCallEnts) {
    err(cur, dev, 'sg_count_mismatch', 'check_unmap', `device driver frees DMA sg list with different entry count [map count=${entry.sgCallEnts}] [unmap count=${ref.sgCallEnts}]`, ref.addr, ref.size, entry);
  }
  if (ref.dir !== entry.dir) {
    err(cur, dev, 'direction_mismatch', 'check_unmap', `device driver frees DMA memory with different direction [device address=${a}] [size=${ref.size} bytes] [mapped with ${dirName(entry.dir)}] [unmapped with ${dirName(ref.dir)}]`, ref.addr, ref.size, entry);
  }
  d.remove(entry);
}

/** debug_dma_unmap_page: check an unmap against the entries before it happens. */
export function debug_dma_unmap_page(cur: Task, dev: device, addr: number, size: number, dir: number, type: DmaDebugType = 'page'): void {
  const d = state(dev);
  if (d === null) return;
  check_unmap(cur, dev, d, { type, addr, size, dir });
}

/**
 * check_sync: the synced range must lie inside a live mapping, in a direction the mapping
 * allows (a BIDIRECTIONAL mapping may be synced either way).
 */
function check_sync(cur: Task, dev: device, d: DmaDebugDev, addr: number, size: number, dir: number, toCpu: boolean, sgCallEnts = 0): void {
  const entry = d.findContaining(addr);
  const a = hex16(addr);
  if (entry === null) {
    err(cur, dev, 'sync_unmapped', 'check_sync', `device driver tries to sync DMA memory it has not allocated [device address=${a}] [size=${size} bytes]`, addr, size, d.findFreed(addr));
    return;
  }
  // Upstream compares the sync's offset+size with the allocation size.
  const end = addr - entry.addr + size;
  if (end > entry.size) {
    err(cur, dev, 'sync_overflow', 'check_sync', `device driver syncs DMA memory outside allocated range [device address=${hex16(entry.addr)}] [allocation size=${entry.size} bytes] [sync offset+size=${end}]`, addr, size, entry);
  }
  if (entry.dir === DMA_BIDIRECTIONAL) return;
  const tail = `[device address=${a}] [size=${entry.size} bytes] [mapped with ${dirName(entry.dir)}] [synced with ${dirName(dir)}]`;
  if (dir !== entry.dir) err(cur, dev, 'sync_direction', 'check_sync', `device driver syncs DMA memory with different direction ${tail}`, addr, size, entry);
  if (toCpu && entry.dir !== DMA_FROM_DEVICE && dir !== DMA_TO_DEVICE) err(cur, dev, 'sync_direction', 'check_sync', `device driver syncs device read-only DMA memory for cpu ${tail}`, addr, size, entry);
  if (!toCpu && entry.dir !== DMA_TO_DEVICE && dir !== DMA_FROM_DEVICE) err(cur, dev, 'sync_direction', 'check_sync', `device driver syncs device write-only DMA memory to device ${tail}`, addr, size, entry);
  if (sgCallEnts !== 0 && entry.type === 'sg' && sgCallEnts !== entry.sgCallEnts) {
    err(cur, dev, 'sg_count_mismatch', 'check_sync', `device driver syncs DMA sg list with different entry count [map count=${entry.sgCallEnts}] [sync count=${sgCallEnts}]`, addr, size, entry);
  }
}

/** debug_dma_sync_single_for_cpu / _for_device (forDevice selects which). */
export function debug_dma_sync_single(cur: Task, dev: device, addr: number, size: number, dir: number, forDevice: boolean): void {
  const d = state(dev);
  if (d === null) return;
  check_sync(cur, dev, d, addr, size, dir, !forDevice);
}

/** check_sg_segment: a mapped segment must respect max_seg_size and the segment boundary. */
function check_sg_segment(cur: Task, dev: device, sg: DebugSg): void {
  const max = dev.max_seg_size;
  if (sg.length > max) {
    err(cur, dev, 'sg_segment', 'check_sg_segment', `mapping sg segment longer than device claims to support [len=${sg.length}] [max=${max}]`, sg.dma_address, sg.length, null);
  }
  const start = sg.dma_address;
  const end = start + sg.dma_length - 1;
  const boundary = dev.seg_boundary_mask;
  // Both ends must fall in the same boundary window: compare the bits above the mask.
  if (Math.floor(start / (boundary + 1)) !== Math.floor(end / (boundary + 1))) {
    err(cur, dev, 'sg_segment', 'check_sg_segment', `mapping sg segment across boundary [start=${hex16(start)}] [end=${hex16(end)}] [boundary=${hex16(boundary)}]`, start, sg.dma_length, null);
  }
}

/** debug_dma_map_sg: one entry per mapped segment, each remembering nents and the mapped count. */
export function debug_dma_map_sg(cur: Task, dev: device, sgl: ArrayLike<DebugSg>, nents: number, mapped: number, dir: number): void {
  const d = state(dev);
  if (d === null || mapped <= 0) return;
  const n = Math.min(mapped, sgl.length);
  for (let i = 0; i < n; i++) {
    const s = sgl[i];
    check_sg_segment(cur, dev, s);
    const e = makeEntry(cur, 'sg', s.dma_address, s.dma_length, dir);
    e.sgCallEnts = nents;
    e.sgMappedEnts = mapped;
    d.add(e);
  }
  added(dev, d);
}

/** get_nr_mapped_entries: the mapped count the first segment's entry remembers (0: unknown). */
function nr_mapped_entries(d: DmaDebugDev, s: DebugSg, dir: number): number {
  const e = d.findExact(s.dma_address, s.dma_length, 'sg', dir);
  return e === null ? 0 : e.sgMappedEnts;
}

/**
 * debug_dma_unmap_sg: checks as many segments as the map returned. As upstream, an sg list
 * whose first segment has no entry (never mapped, or unmapped already) is not checked at all.
 */
export function debug_dma_unmap_sg(cur: Task, dev: device, sgl: ArrayLike<DebugSg>, nents: number, dir: number): void {
  const d = state(dev);
  if (d === null || nents <= 0 || sgl.length === 0) return;
  const mapped = nr_mapped_entries(d, sgl[0], dir);
  const n = Math.min(mapped, nents, sgl.length);
  for (let i = 0; i < n; i++) {
    const s = sgl[i];
    check_unmap(cur, dev, d, { type: 'sg', addr: s.dma_address, size: s.dma_length, dir, sgCallEnts: nents });
  }
}

/** debug_dma_sync_sg_for_cpu / _for_device. */
export function debug_dma_sync_sg(cur: Task, dev: device, sgl: ArrayLike<DebugSg>, nents: number, dir: number, forDevice: boolean): void {
  const d = state(dev);
  if (d === null || nents <= 0 || sgl.length === 0) return;
  const mapped = nr_mapped_entries(d, sgl[0], dir);
  const n = Math.min(mapped === 0 ? 1 : mapped, nents, sgl.length);
  for (let i = 0; i < n; i++) {
    const s = sgl[i];
    check_sync(cur, dev, d, s.dma_address, s.dma_length, dir, !forDevice, nents);
  }
}

/** debug_dma_alloc_coherent: record a coherent allocation (always BIDIRECTIONAL). */
export function debug_dma_alloc_coherent(cur: Task, dev: device, size: number, addr: number, vaddr: number): void {
  const d = state(dev);
  if (d === null || addr === DMA_MAPPING_ERROR) return;
  const e = makeEntry(cur, 'coherent', addr, size, DMA_BIDIRECTIONAL);
  e.vaddr = vaddr;
  d.add(e);
  added(dev, d);
}

/** debug_dma_free_coherent: check a free against the allocation (size, CPU address, type). */
export function debug_dma_free_coherent(cur: Task, dev: device, size: number, addr: number, vaddr: number): void {
  const d = state(dev);
  if (d === null) return;
  check_unmap(cur, dev, d, { type: 'coherent', addr, size, dir: DMA_BIDIRECTIONAL, vaddr });
}

/**
 * dma_debug_device_change(BUS_NOTIFY_UNBOUND_DRIVER): a driver released from its device with
 * mappings left. One report naming the count, with a line per entry. The entries stay (upstream
 * does not drop them either). `cur` is null when the release happens outside any task.
 */
export function dma_debug_device_shutdown(cur: Task | null, dev: device): number {
  if (!dma_debug_enabled(dev.m)) return 0;
  const d = dev.dmaDebug as DmaDebugDev | undefined;
  if (d === undefined || d.live === 0) return 0;
  const entries = d.list();
  const last = entries[entries.length - 1];
  const msg = [
    `device driver has pending DMA allocations while released from device [count=${entries.length}]`,
    ...entries.map((e) => `  [device address=${hex16(e.addr)}] [size=${e.size} bytes] [mapped with ${dirName(e.dir)}] [mapped as ${TYPE_NAMES[e.type]}] at ${e.site} (${e.comm}/${e.pid}, CPU${e.cpu})`),
  ].join('\n');
  err(cur, dev, 'leak', 'dma_debug_device_change', msg, last.addr, last.size, last, { entries, count: entries.length });
  return entries.length;
}

export { TYPE_NAMES as DMA_DEBUG_TYPE_NAMES };

declare module '../kernel/hooks' {
  interface HookPayloads {
    /** A DMA-API debug report (DmaDebugInfo) or a WARN of a mapping path (DmaWarnInfo, which has `message`). */
    dmaDebug: DmaDebugInfo | DmaWarnInfo;
  }
}
