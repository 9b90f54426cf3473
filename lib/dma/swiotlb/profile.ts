/**
 * The swiotlb as each kernel release had it (issue 19): one profile per version the threads were
 * about, selecting every version-dependent behaviour the model has. Pinned to release tags (x.y.0);
 * the v6.9 alignment fixes were backported to stable 6.6.y/6.8.y, which these profiles do not
 * include.
 *
 *   3.x-arm  the 2014 ARM thread: no CONFIG_SWIOTLB_DYNAMIC; the slot search is taken as 6.3's
 *            (the thread is about dma_alloc_coherent, not the bounce allocator).
 *   6.3      the base Tesarik's RFC and v2 were posted against: one fixed pool split into areas,
 *            no transient pools, no growth. Per-area search rules of swiotlb_do_find_slots after
 *            the two v6.3-rc fixes ("fix the deadlock in swiotlb_do_find_slots", 2023-02-23:
 *            slots_checked bounds the loop; "fix slot alignment checks", 2023-03-21: the page and
 *            alloc_align bits join min_align_mask in the slot-address test).
 *   6.6      first CONFIG_SWIOTLB_DYNAMIC: pools list walked pool by pool
 *            (swiotlb_pool_find_slots per pool), 6.3's per-area rules, no early exit for a request
 *            over 256 KiB (the pools fail it, then swiotlb_find_slots kicks dyn_alloc and tries a
 *            GFP_NOWAIT transient pool of nr_slots(size), whose search fails too), and every step
 *            of unmap and sync finds the pool again (swiotlb_find_pool in is_swiotlb_buffer,
 *            swiotlb_bounce, swiotlb_del_transient and swiotlb_release_slots).
 *   6.8      as 6.6 but area-major: for each area offset, every pool that has that many areas
 *            (swiotlb_find_slots iterating areas outside pools).
 *   6.12     v6.9's alignment rework (alloc_align_mask checked against zero, min_align bits
 *            against orig; page alignment only without either mask; pad slots for a min_align
 *            offset of 2 KiB or more; a partial sync inside a min_align mapping copies with a
 *            negative offset), the oversize request refused before growth, and v6.12's
 *            swiotlb_find_pool once per dma_* call with the pool passed down (2 lookups per
 *            bounced unmap with CPU sync, 1 without).
 */
import { ProgramError } from '../../../scheduler';
import type { SearchOrder } from './mem';

export type SwiotlbKernel = '3.x-arm' | '6.3' | '6.6' | '6.8' | '6.12';
export const SWIOTLB_KERNELS: readonly SwiotlbKernel[] = ['3.x-arm', '6.3', '6.6', '6.8', '6.12'];
/** The newest profile: the default for anything not about an older thread. */
export const SWIOTLB_KERNEL_DEFAULT: SwiotlbKernel = '6.12';

export interface SwiotlbProfile {
  readonly version: SwiotlbKernel;
  /** CONFIG_SWIOTLB_DYNAMIC exists (growth and transient pools). */
  readonly dynamic: boolean;
  readonly searchOrder: SearchOrder;
  /**
   * The per-area search: 'v6.3' (one iotlb_align_mask of min_align | alloc_align | page bits
   * compared with orig's bits, stride from it) or 'v6.9' (alloc_align against zero, min_align
   * bits above 2 KiB against orig's, page alignment only without either mask).
   */
  readonly areaRules: 'v6.3' | 'v6.9';
  /** The in-slot offset keeps alloc_align bits too, so an offset of 2 KiB or more becomes pad slots (v6.9). */
  readonly padSlots: boolean;
  /** A request over 256 KiB fails before any growth or transient pool (after v6.8). */
  readonly oversizeEarlyExit: boolean;
  /** swiotlb_find_pool once per dma_* call, the pool passed down (v6.12); else once per step. */
  readonly poolPassedDown: boolean;
  /** swiotlb_bounce allows tlb_offset < orig offset in later slots of the mapping (v6.9). */
  readonly negativeSyncOffset: boolean;
}

const P63: SwiotlbProfile = { version: '6.3', dynamic: false, searchOrder: 'pool-major', areaRules: 'v6.3', padSlots: false, oversizeEarlyExit: false, poolPassedDown: false, negativeSyncOffset: false };

const PROFILES: Record<SwiotlbKernel, SwiotlbProfile> = {
  '3.x-arm': { ...P63, version: '3.x-arm' },
  '6.3': P63,
  '6.6': { ...P63, version: '6.6', dynamic: true },
  '6.8': { ...P63, version: '6.8', dynamic: true, searchOrder: 'area-major' },
  '6.12': { version: '6.12', dynamic: true, searchOrder: 'area-major', areaRules: 'v6.9', padSlots: true, oversizeEarlyExit: true, poolPassedDown: true, negativeSyncOffset: true },
};

/** The profile of a kernel version string (a one-line error for an unknown one). */
export function swiotlb_profile(version: string | undefined): SwiotlbProfile {
  const v = (version ?? SWIOTLB_KERNEL_DEFAULT) as SwiotlbKernel;
  const p = PROFILES[v];
  if (p === undefined) throw new ProgramError(`unknown kernel version '${String(version)}' for the swiotlb (known: ${SWIOTLB_KERNELS.join(', ')})`);
  return p;
}
