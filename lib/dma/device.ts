/**
 * struct device, as far as the DMA API looks: the masks and limits that decide whether an
 * address is reachable (dma_mask, coherent_dma_mask, bus_dma_limit), the segment rules
 * (max_seg_size, seg_boundary_mask, min_align_mask), coherence, an optional IOMMU domain, and
 * the swiotlb state upstream keeps per device (its io_tlb_mem, the transient pools list under
 * dma_io_tlb_lock, the dma_uses_io_tlb flag). Designs that index dynamic buffers per device keep
 * their index in `swiotlbIndex`; DMA-API debug keeps its entries in `dmaDebug`.
 */
import { ProgramError } from '../../scheduler';
import type { Machine } from '../kernel/machine';
import { DEFINE_SPINLOCK, type spinlock_t } from '../kernel/spinlock';
import { lockdep_set_class } from '../kernel/lock';
import { DMA_BIT_MASK } from './attrs';
import type { iommu_domain } from './iommu';
import type { io_tlb_mem } from './swiotlb/mem';
import type { io_tlb_pool } from './swiotlb/pool';

export interface DeviceOptions {
  /** dev_name(): "nvme0", "0000:00:04.0", ... */
  name: string;
  /** dma_set_mask: addressing bits for streaming DMA (default 64). */
  dmaBits?: number;
  /** dma_set_coherent_mask bits (default: dmaBits). */
  coherentBits?: number;
  /** bus_dma_limit: the highest address the interconnect passes, 0 for none (a display engine behind a 1 GiB window). */
  busLimit?: number;
  /** dma_set_min_align_mask (NVMe: 0xfff). */
  minAlignMask?: number;
  /** dma_set_max_seg_size (default 64 KiB as dma_get_max_seg_size without dma_parms). */
  maxSegSize?: number;
  /** dma_set_seg_boundary (default 0xffffffff). */
  segBoundaryMask?: number;
  /** dev_is_dma_coherent (default true, as on x86). */
  coherent?: boolean;
  /** Behind this IOMMU domain (default: direct mapping). */
  iommu?: iommu_domain | null;
  /** An external-facing device the IOMMU does not trust (sub-granule buffers are bounced). */
  untrusted?: boolean;
}

export class device {
  readonly id: number;
  readonly name: string;
  dma_mask: number;
  coherent_dma_mask: number;
  bus_dma_limit: number;
  min_align_mask: number;
  max_seg_size: number;
  seg_boundary_mask: number;
  dma_coherent: boolean;
  iommu: iommu_domain | null;
  untrusted: boolean;

  /** dev->dma_io_tlb_mem: the swiotlb allocator this device bounces through (null: none). */
  dma_io_tlb_mem: io_tlb_mem | null = null;
  /** CONFIG_SWIOTLB_DYNAMIC: this device's transient pools (an RCU list upstream). */
  readonly dma_io_tlb_pools: io_tlb_pool[] = [];
  /** Protects dma_io_tlb_pools; one lockdep class for every device, as device_initialize makes it. */
  readonly dma_io_tlb_lock: spinlock_t;
  /** Set on the first bounce through any dynamic pool, never cleared. */
  dma_uses_io_tlb = false;
  /** A swiotlb design's per-device index of dynamic buffers (v2 list, rbtree, maple tree). */
  swiotlbIndex: unknown = undefined;
  /** DMA-API debug's entries for this device (lib/dma/debug.ts). */
  dmaDebug: unknown = undefined;

  constructor(
    readonly m: Machine,
    id: number,
    o: DeviceOptions,
  ) {
    if (typeof o.name !== 'string' || o.name === '') throw new ProgramError('a DMA device needs a name');
    this.id = id;
    this.name = o.name;
    const bits = o.dmaBits ?? 64;
    const cbits = o.coherentBits ?? bits;
    for (const [what, b] of [['dmaBits', bits], ['coherentBits', cbits]] as const) {
      if (!Number.isInteger(b) || b < 24 || b > 64) throw new ProgramError(`device ${o.name}: ${what} must be an integer from 24 to 64, got ${b}`);
    }
    this.dma_mask = DMA_BIT_MASK(bits);
    this.coherent_dma_mask = DMA_BIT_MASK(cbits);
    this.bus_dma_limit = checkNonNeg(o.name, 'busLimit', o.busLimit ?? 0);
    this.min_align_mask = checkMask(o.name, 'minAlignMask', o.minAlignMask ?? 0);
    this.max_seg_size = checkNonNeg(o.name, 'maxSegSize', o.maxSegSize ?? 65536);
    if (this.max_seg_size === 0) throw new ProgramError(`device ${o.name}: maxSegSize must be positive`);
    this.seg_boundary_mask = checkMask(o.name, 'segBoundaryMask', o.segBoundaryMask ?? 0xffffffff);
    this.dma_coherent = o.coherent ?? true;
    this.iommu = o.iommu ?? null;
    this.untrusted = o.untrusted ?? false;
    this.dma_io_tlb_lock = DEFINE_SPINLOCK(m, `${o.name}:dma_io_tlb_lock`);
    lockdep_set_class(this.dma_io_tlb_lock, '&dev->dma_io_tlb_lock');
  }

  /** dev_name(). */
  toString(): string {
    return this.name;
  }
}

function checkNonNeg(dev: string, what: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new ProgramError(`device ${dev}: ${what} must be a non-negative integer, got ${v}`);
  return v;
}

/** A mask is 2^k - 1. */
function checkMask(dev: string, what: string, v: number): number {
  checkNonNeg(dev, what, v);
  if (((v + 1) & v) !== 0 && v !== 0xffffffff && !Number.isInteger(Math.log2(v + 1))) throw new ProgramError(`device ${dev}: ${what} must be 2^k - 1, got 0x${v.toString(16)}`);
  return v;
}

/** min_not_zero(*dev->dma_mask, dev->bus_dma_limit): the highest bus address the device reaches. */
export function dma_limit(dev: device): number {
  return dev.bus_dma_limit === 0 ? dev.dma_mask : Math.min(dev.dma_mask, dev.bus_dma_limit);
}

/**
 * dma_capable(dev, addr, size, is_ram): the whole range lies below both the mask and the bus
 * limit. Addresses here are bus addresses (phys_to_dma is the identity in this model).
 */
export function dma_capable(dev: device, addr: number, size: number): boolean {
  if (size === 0) return true;
  const end = addr + size - 1;
  return end <= dma_limit(dev) && end >= addr;
}

export function dma_set_mask(dev: device, mask: number): number {
  dev.dma_mask = mask;
  return 0;
}

export function dma_set_coherent_mask(dev: device, mask: number): number {
  dev.coherent_dma_mask = mask;
  return 0;
}

export function dma_set_mask_and_coherent(dev: device, mask: number): number {
  dma_set_mask(dev, mask);
  return dma_set_coherent_mask(dev, mask);
}

export function dma_set_min_align_mask(dev: device, mask: number): void {
  dev.min_align_mask = checkMask(dev.name, 'min_align_mask', mask);
}

export function dma_get_min_align_mask(dev: device): number {
  return dev.min_align_mask;
}

export function dma_set_max_seg_size(dev: device, size: number): number {
  dev.max_seg_size = checkNonNeg(dev.name, 'max_seg_size', size);
  return 0;
}

export function dma_get_max_seg_size(dev: device): number {
  return dev.max_seg_size;
}

export function dma_get_seg_boundary(dev: device): number {
  return dev.seg_boundary_mask;
}

export function dev_is_dma_coherent(dev: device): boolean {
  return dev.dma_coherent;
}

/** A mask or limit as the kernel prints it (%llx): DMA_BIT_MASK(64) is not exact in a double. */
export function fmtMask(v: number): string {
  return v >= DMA_BIT_MASK(64) ? 'ffffffffffffffff' : v.toString(16);
}
