/**
 * A machine's swiotlb for one run: the default io_tlb_mem, the design in use, and the contents
 * store when the run tracks bytes. Made by swiotlb_init (setup.ts).
 */
import { ProgramError } from '../../../scheduler';
import type { Machine } from '../../kernel/machine';
import type { PhysContents } from '../../mm/contents';
import type { io_tlb_mem } from './mem';
import type { SwiotlbPolicy } from './policy';

export class SwiotlbState {
  /** pr_warn_once("Memory encryption is active and system is using DMA bounce buffers"). */
  warnedCc = false;

  constructor(
    readonly m: Machine,
    readonly mem: io_tlb_mem,
    readonly policy: SwiotlbPolicy,
    /** Memory is encrypted (CoCo guest): bounce buffers are shared, every device bounces. */
    readonly cc: boolean,
    /** Bytes per ns of a bounce copy. */
    readonly copyBytesPerNs: number,
    readonly contents: PhysContents | null,
  ) {}
}

const states = new WeakMap<Machine, SwiotlbState>();

export function attachSwiotlb(m: Machine, st: SwiotlbState): void {
  if (states.has(m)) throw new ProgramError('swiotlb_init called twice on one machine');
  states.set(m, st);
}

/** The machine's swiotlb, or null when it has none (no addressing limits, or swiotlb=noforce). */
export function swiotlbIfPresent(m: Machine): SwiotlbState | null {
  return states.get(m) ?? null;
}

export function swiotlb_state(m: Machine): SwiotlbState {
  const st = states.get(m);
  if (st === undefined) throw new ProgramError('this machine has no swiotlb: call dma_init(m, { swiotlb: ... }) in the scenario build');
  return st;
}
