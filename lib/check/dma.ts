/**
 * The DMA layer's reports (lib/dma):
 * - `swiotlb_full`: swiotlb_tbl_map_single found no room. The kernel's dev_warn_ratelimited
 *   prints "<dev>: swiotlb buffer is full (sz: N bytes), total T (slots), used U (slots)" at
 *   most 10 times per 5 s (one ratelimit state for the call site, shared by every device);
 *   the finding counts every failure, fingerprinted per device and swiotlb design.
 *   DMA_ATTR_NO_WARN failures never reach the hook (a metric instead).
 * - `dma_debug` (with `subkind`): CONFIG_DMA_API_DEBUG's err_printk reports (lib/dma/debug.ts)
 *   and the mapping path's WARNs (DmaWarnInfo from lib/dma/swiotlb/map.ts and dma-direct).
 *   err_printk WARNs only while dma_debug's num_errors allows: 1 by default, so the log shows
 *   the machine's first dma-debug error only; mapping-path warnings print as the kernel's do
 *   (WARN_ONCE once per fingerprint, WARN every time, dev_warn_ratelimited 10 per 5 s).
 *   Findings count every occurrence either way.
 * - `iommu_map`: iommu_map refused a request not aligned to the domain's smallest page size
 *   ("iommu: unaligned: iova 0x... pa 0x... size 0x... min_pagesz 0x..."), a pr_err printed
 *   every time.
 */
import type { Machine } from '../kernel/machine';
import { NSEC_PER_SEC } from '../kernel/log';
import type { Task } from '../kernel/task';
import type { DmaDebugInfo, dma_debug_entry } from '../dma/debug';
import type { IommuMapInfo } from '../dma/iommu';
import type { DmaWarnInfo, SwiotlbFullInfo } from '../dma/swiotlb/map';
import { machineStates } from '../kernel/show-state';
import { callTrace } from '../kernel/show-state';
import { callerOf } from './caller';

/** DEFAULT_RATELIMIT_INTERVAL / DEFAULT_RATELIMIT_BURST. */
const RATELIMIT_INTERVAL = 5 * NSEC_PER_SEC;
const RATELIMIT_BURST = 10;

/** "swiotlb buffer is full" lines the ratelimit let through (swiotlb.full counts every failure). */
export const M_FULL_PRINTED = 'swiotlb.full_printed';

/** Frames of the DMA layer: a report's site is the first frame outside them (the driver). */
const DMA_FRAME_PREFIXES = ['dma_', '__dma_', 'debug_dma_', 'iommu_', '__iommu_', 'swiotlb_', '__swiotlb_'];

/** The frame that called into the DMA API (skipping the DMA layer's own frames). */
const callerOfDma = (cur: Task): string => callerOf(cur, (f) => DMA_FRAME_PREFIXES.some((p) => f.startsWith(p)));

/**
 * Where the kernel's warning for a mapping-path subkind sits and how it prints: a WARN_ONCE
 * (once per fingerprint here), a WARN / WARN_ON (every time), or a ratelimited line without a
 * trace (dev_warn_ratelimited).
 */
type WarnStyle = 'once' | 'every' | 'ratelimited';
const WARN_SITES: Record<string, { at: string; style: WarnStyle }> = {
  map_overflow: { at: 'kernel/dma/swiotlb.c swiotlb_map', style: 'once' },
  buffer_overflow: { at: 'kernel/dma/swiotlb.c swiotlb_bounce', style: 'once' },
  access_before_start: { at: 'kernel/dma/swiotlb.c swiotlb_bounce', style: 'once' },
  bad_direction: { at: 'kernel/dma/swiotlb.c swiotlb_sync_single', style: 'once' },
  no_swiotlb: { at: 'kernel/dma/swiotlb.c swiotlb_tbl_map_single', style: 'ratelimited' },
  map_single_vmalloc: { at: 'include/linux/dma-mapping.h dma_map_single_attrs', style: 'once' },
  free_irqs_disabled: { at: 'kernel/dma/mapping.c dma_free_attrs', style: 'every' },
  pool_exhausted: { at: 'kernel/dma/pool.c dma_alloc_from_pool', style: 'every' },
  pool_unsuitable: { at: 'kernel/dma/pool.c dma_alloc_from_pool', style: 'every' },
  iommu_unmap_size: { at: 'drivers/iommu/dma-iommu.c __iommu_dma_unmap', style: 'every' },
  iommu_unmap_unmapped: { at: 'drivers/iommu/dma-iommu.c iommu_dma_unmap_page', style: 'every' },
};
const DEFAULT_WARN_SITE = { at: 'kernel/dma/mapping.c', style: 'every' as WarnStyle };
/** dma-direct's own overflow WARN_ONCE shares the subkind with swiotlb's; its text tells them apart. */
const DIRECT_OVERFLOW = { at: 'kernel/dma/direct.h dma_direct_map_phys', style: 'once' as WarnStyle };

function warnSite(info: DmaWarnInfo): { at: string; style: WarnStyle } {
  if (info.subkind === 'map_overflow' && info.message.startsWith('DMA addr')) return DIRECT_OVERFLOW;
  return WARN_SITES[info.subkind] ?? DEFAULT_WARN_SITE;
}

function hex(v: number): string {
  return `0x${v.toString(16)}`;
}

function entryData(e: dma_debug_entry | null): Record<string, unknown> | null {
  if (e === null) return null;
  return { type: e.type, addr: e.addr, size: e.size, dir: e.dir, site: e.site, comm: e.comm, pid: e.pid, cpu: e.cpu, time: e.time };
}

function cpuLine(cur: Task): string {
  return `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`;
}

export function installDmaCheck(m: Machine): void {
  m.addHooks({
    swiotlbFull(cur: Task, info: SwiotlbFullInfo) {
      const logged = m.log.ratelimit('swiotlb_full', RATELIMIT_INTERVAL, RATELIMIT_BURST);
      const line = `${info.dev}: swiotlb buffer is full (sz: ${info.size} bytes), total ${info.total} (slots), used ${info.used} (slots)`;
      if (logged) {
        m.log.printk(cur.cpu.id, line);
        // What dmesg shows, as a metric beside swiotlb.full (every failure): hunts sum both.
        m.sim.count(M_FULL_PRINTED, 1);
      }
      m.sim.report({
        kind: 'swiotlb_full',
        fingerprint: `swiotlb_full:${info.dev}:${info.policy}`,
        headline: info.tooLarge ? `${line} (the request exceeds the largest swiotlb mapping)` : line,
        text: line,
        logged,
        data: { dev: info.dev, size: info.size, total: info.total, used: info.used, policy: info.policy, tooLarge: info.tooLarge, caller: callerOfDma(cur), cpuStates: machineStates(m) },
      });
    },

    dmaDebug(cur: Task | null, info: DmaDebugInfo | DmaWarnInfo) {
      if ('message' in info) reportWarn(m, cur, info);
      else reportDebug(m, cur, info);
    },

    iommuMap(cur: Task, info: IommuMapInfo) {
      const line = `iommu: unaligned: iova ${hex(info.iova)} pa ${hex(info.paddr)} size ${hex(info.size)} min_pagesz ${hex(info.min_pagesz)}`;
      m.log.printk(cur.cpu.id, line);
      const caller = callerOfDma(cur);
      m.sim.report({
        kind: 'iommu_map',
        fingerprint: `iommu_map:${info.domain}@${caller}`,
        headline: `${line} (domain ${info.domain}, from ${caller})`,
        text: [line, cpuLine(cur), callTrace(cur, ['iommu_map'])].join('\n'),
        logged: true,
        data: { domain: info.domain, iova: info.iova, paddr: info.paddr, size: info.size, min_pagesz: info.min_pagesz, caller, cpuStates: machineStates(m) },
      });
    },
  });
}

/** err_printk: the DMA-API line, the WARN with its trace, then where the entry was mapped. */
function reportDebug(m: Machine, cur: Task | null, info: DmaDebugInfo): void {
  const site = cur === null ? 'driver_release' : callerOfDma(cur);
  // dma_debug's num_errors defaults to 1: only the machine's first error is printed.
  const logged = m.log.firstTime('dma_debug:num_errors');
  const e = info.entry;
  const lines = ['------------[ cut here ]------------', info.text];
  if (cur !== null) lines.push(`WARNING: CPU: ${cur.cpu.id} PID: ${cur.pid} at kernel/dma/debug.c ${info.fn}`, cpuLine(cur), callTrace(cur, [info.fn]));
  else lines.push(`WARNING: at kernel/dma/debug.c ${info.fn}`);
  if (e !== null && info.subkind !== 'leak') lines.push(`DMA-API: Mapped at: ${e.site} (${e.comm}/${e.pid}, CPU${e.cpu})`);
  const text = lines.join('\n');
  if (logged) m.log.printk(cur === null ? 0 : cur.cpu.id, text);
  const first = info.text.split('\n')[0];
  m.sim.report({
    kind: 'dma_debug',
    subkind: info.subkind,
    fingerprint: `dma_debug:${info.subkind}:${info.dev}@${site}`,
    headline: first,
    text,
    logged,
    data: {
      subkind: info.subkind,
      dev: info.dev,
      addr: info.addr,
      size: info.size,
      site,
      mappedAt: entryData(e),
      ...(info.entries ? { count: info.count ?? info.entries.length, entries: info.entries.map(entryData) } : {}),
      cpuStates: machineStates(m),
    },
  });
}

/** A mapping-path WARN (dev_WARN_ONCE) or warning line, reported through the same kind. */
function reportWarn(m: Machine, cur: Task | null, info: DmaWarnInfo): void {
  const where = warnSite(info);
  const site = cur === null ? 'unknown' : callerOfDma(cur);
  const fp = `dma_debug:${info.subkind}:${info.dev}@${site}`;
  const warn = where.style !== 'ratelimited';
  const logged = where.style === 'once' ? m.log.firstTime(fp) : where.style === 'every' ? true : m.log.ratelimit(`dma_warn:${info.subkind}`, RATELIMIT_INTERVAL, RATELIMIT_BURST);
  const line = `${info.dev}: ${info.message}`;
  const lines = warn ? ['------------[ cut here ]------------', line] : [line];
  if (warn && cur !== null) lines.push(`WARNING: CPU: ${cur.cpu.id} PID: ${cur.pid} at ${where.at}`, cpuLine(cur), callTrace(cur, [where.at.split(' ').pop() ?? 'dma_map']));
  const text = lines.join('\n');
  if (logged) m.log.printk(cur === null ? 0 : cur.cpu.id, text);
  m.sim.report({
    kind: 'dma_debug',
    subkind: info.subkind,
    fingerprint: fp,
    headline: line,
    text,
    logged,
    data: { subkind: info.subkind, dev: info.dev, site, message: info.message, cpuStates: machineStates(m) },
  });
}
