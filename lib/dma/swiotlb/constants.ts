/**
 * swiotlb's constants, with upstream's values (include/linux/swiotlb.h, kernel/dma/swiotlb.c;
 * docs/kernel-facts.md §1.1). The cost constants are the model's own and say so.
 */

/** Slots are 2 KiB (IO_TLB_SHIFT 11). */
export const IO_TLB_SHIFT = 11;
export const IO_TLB_SIZE = 1 << IO_TLB_SHIFT;
/** At most 128 contiguous slots per mapping; free-run counters never cross a segment. */
export const IO_TLB_SEGSIZE = 128;
/** The largest bounce buffer: 128 slots, 256 KiB. */
export const IO_TLB_MAX_BYTES = IO_TLB_SEGSIZE * IO_TLB_SIZE;
/** Default pool: 64 MiB, 32768 slots. */
export const IO_TLB_DEFAULT_SIZE = 64 << 20;
/** Smallest pool worth having (1 MiB, 512 slots): boot and growth halve down to this. */
export const IO_TLB_MIN_SLABS = (1 << 20) >> IO_TLB_SHIFT;
/** An unused slot's orig_addr. */
export const INVALID_PHYS_ADDR = -1;

/** nr_slots(size): slots covering `size` bytes. */
export function nr_slots(size: number): number {
  return Math.ceil(size / IO_TLB_SIZE);
}

/** io_tlb_offset(i): a slot's position in its 128-slot segment. */
export function io_tlb_offset(i: number): number {
  return i & (IO_TLB_SEGSIZE - 1);
}

/**
 * Model costs (not upstream facts): checking one candidate slot in the search, and copying
 * bounce data. memcpy at about 8 bytes/ns is a typical streaming copy on a server core; the
 * per-slot check is a load of slots[i].list plus the alignment tests.
 */
export const SLOT_CHECK_NS = 2;
export const BOUNCE_BYTES_PER_NS = 8;
/** Fixed cost of entering swiotlb_tbl_map_single / unmap (argument checks, stats). */
export const MAP_OVERHEAD_NS = 50;
