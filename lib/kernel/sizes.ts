/**
 * Size constants and the order arithmetic the memory and DMA layers share: include/linux/sizes.h
 * (SZ_*) and include/asm-generic/getorder.h (get_order). Plain numbers; nothing here knows a
 * machine's page size, so get_order takes it.
 */

export const SZ_4K = 0x1000;
export const SZ_16K = 0x4000;
export const SZ_64K = 0x10000;
export const SZ_2M = 0x200000;
export const SZ_32M = 0x2000000;
export const SZ_512M = 0x20000000;
export const SZ_1G = 0x40000000;

/** get_order(size): the smallest order whose block (pageSize << order) holds `size` bytes. */
export function get_order(size: number, pageSize: number): number {
  let order = 0;
  while (pageSize * 2 ** order < size) order++;
  return order;
}
