/**
 * A machine's DMA layer for one run: its devices and the platform facts dma-direct decides by
 * (memory encryption, CONFIG_DMA_DIRECT_REMAP, the ARM32 allocator choice, CONFIG_DMA_API_DEBUG).
 * Made by dma_init (init.ts).
 */
import { ProgramError } from '../../scheduler';
import type { Machine } from '../kernel/machine';
import { device, type DeviceOptions } from './device';
import { swiotlbIfPresent } from './swiotlb/state';

/** ARM32's dma_alloc_coherent allocator choice (arch/arm/mm/dma-mapping.c, docs/kernel-facts.md §7). */
export type Arm32Allocator = 'cma' | 'simple' | 'remap' | 'pool';

export interface DmaOptions {
  /** Bytes of each coherent atomic pool (coherent_pool=); default 128 KiB per GiB, 128 KiB..4 MiB. */
  coherentPool?: number;
  /** CONFIG_DMA_DIRECT_REMAP: non-coherent coherent allocations are remapped uncached (default: arm64). */
  remap?: boolean;
  /** Model ARM32's dma_alloc_coherent allocator choice instead of dma-direct's. */
  arm32?: boolean;
  /**
   * ARM32 before v3.6 (Russell King's design): bytes of the consistent DMA region
   * (CONSISTENT_DMA_SIZE) whose page tables consistent_init allocates at boot; every
   * non-coherent allocation, atomic or not, is remapped into it without allocating page tables.
   * 0 / absent: the v3.6+ choice (atomic pool, or remap through the vmalloc space).
   */
  arm32Consistent?: number;
  /**
   * ARM32, hypothetical (rejected in Russell King's 2014 mail): an atomic non-coherent allocation
   * takes lowmem pages and changes the cache attributes of the linear map's section entries in
   * place (break, TLB flush on every CPU by IPI, make) instead of using the atomic pool.
   */
  arm32SectionRemap?: boolean;
  /** CONFIG_DMA_API_DEBUG (default true): misuse is reported as dma_debug findings. */
  debug?: boolean;
}

export class DmaState {
  readonly devices: device[] = [];
  /** The coherent atomic pools (lib/dma/pool.ts keeps its state here). */
  atomicPools: unknown = undefined;

  constructor(
    readonly m: Machine,
    readonly opts: DmaOptions,
    /** force_dma_unencrypted: memory is encrypted, DMA memory must be shared (CoCo guest). */
    readonly cc: boolean,
  ) {}

  get debug(): boolean {
    return this.opts.debug ?? true;
  }

  get remap(): boolean {
    return this.opts.remap ?? this.m.arch === 'arm64';
  }
}

const states = new WeakMap<Machine, DmaState>();

export function attachDma(m: Machine, st: DmaState): void {
  if (states.has(m)) throw new ProgramError('dma_init called twice on one machine');
  states.set(m, st);
}

export function dmaIfPresent(m: Machine): DmaState | null {
  return states.get(m) ?? null;
}

export function dma_state(m: Machine): DmaState {
  const st = states.get(m);
  if (st === undefined) throw new ProgramError('this machine has no DMA layer: call dma_init(m, ...) in the scenario build');
  return st;
}

/**
 * device_add for a DMA master: make the device and give it the machine's swiotlb
 * (swiotlb_dev_init), so it bounces when it must.
 */
export function device_register(m: Machine, o: DeviceOptions): device {
  const st = dma_state(m);
  if (st.devices.some((d) => d.name === o.name)) throw new ProgramError(`device ${o.name} registered twice`);
  const dev = new device(m, st.devices.length, o);
  const sw = swiotlbIfPresent(m);
  dev.dma_io_tlb_mem = sw === null ? null : sw.mem;
  st.devices.push(dev);
  return dev;
}
