/**
 * The DMA API's vocabulary: directions, attributes and the error cookie, with upstream's values
 * (include/linux/dma-direction.h, include/linux/dma-mapping.h; docs/kernel-facts.md §8.1).
 */

/** enum dma_data_direction. */
export const DMA_BIDIRECTIONAL = 0;
export const DMA_TO_DEVICE = 1;
export const DMA_FROM_DEVICE = 2;
export const DMA_NONE = 3;
export type dma_data_direction = 0 | 1 | 2 | 3;
export const DMA_DIR_NAMES = ['DMA_BIDIRECTIONAL', 'DMA_TO_DEVICE', 'DMA_FROM_DEVICE', 'DMA_NONE'] as const;

export function valid_dma_direction(dir: number): dir is dma_data_direction {
  return dir === DMA_BIDIRECTIONAL || dir === DMA_TO_DEVICE || dir === DMA_FROM_DEVICE;
}

// DMA attributes (bits as upstream numbers them).
export const DMA_ATTR_WEAK_ORDERING = 1 << 1;
export const DMA_ATTR_WRITE_COMBINE = 1 << 2;
export const DMA_ATTR_NO_KERNEL_MAPPING = 1 << 4;
export const DMA_ATTR_SKIP_CPU_SYNC = 1 << 5;
export const DMA_ATTR_FORCE_CONTIGUOUS = 1 << 6;
export const DMA_ATTR_ALLOC_SINGLE_PAGES = 1 << 7;
export const DMA_ATTR_NO_WARN = 1 << 8;
export const DMA_ATTR_PRIVILEGED = 1 << 9;
/**
 * Not upstream: Tesarik's dynamic-swiotlb RFC/v2 (2023) proposed it so a caller could let the
 * map path allocate with a blocking GFP. It was never merged (docs/kernel-facts.md §1.12, 8.1); the
 * rfc-dynamic policy honours it, everything else ignores it.
 */
export const DMA_ATTR_MAY_SLEEP = 1 << 16;

/** DMA_MAPPING_ERROR (~(dma_addr_t)0): what a failed map returns. */
export const DMA_MAPPING_ERROR = -1;

export function dma_mapping_error_value(addr: number): boolean {
  return addr === DMA_MAPPING_ERROR;
}

/**
 * DMA_BIT_MASK(n). Model addresses stay far below 2^53, so the 64-bit mask only needs to compare
 * greater than any of them; it is 2^64 - 1 rounded to a double.
 */
export function DMA_BIT_MASK(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new RangeError(`DMA_BIT_MASK: bits must be 0..64, got ${n}`);
  return n === 0 ? 0 : 2 ** n - 1;
}

export function attrsName(attrs: number): string {
  if (attrs === 0) return '0';
  const names: string[] = [];
  const table: [number, string][] = [
    [DMA_ATTR_WEAK_ORDERING, 'DMA_ATTR_WEAK_ORDERING'],
    [DMA_ATTR_WRITE_COMBINE, 'DMA_ATTR_WRITE_COMBINE'],
    [DMA_ATTR_NO_KERNEL_MAPPING, 'DMA_ATTR_NO_KERNEL_MAPPING'],
    [DMA_ATTR_SKIP_CPU_SYNC, 'DMA_ATTR_SKIP_CPU_SYNC'],
    [DMA_ATTR_FORCE_CONTIGUOUS, 'DMA_ATTR_FORCE_CONTIGUOUS'],
    [DMA_ATTR_ALLOC_SINGLE_PAGES, 'DMA_ATTR_ALLOC_SINGLE_PAGES'],
    [DMA_ATTR_NO_WARN, 'DMA_ATTR_NO_WARN'],
    [DMA_ATTR_PRIVILEGED, 'DMA_ATTR_PRIVILEGED'],
    [DMA_ATTR_MAY_SLEEP, 'DMA_ATTR_MAY_SLEEP'],
  ];
  let rest = attrs;
  for (const [bit, name] of table) {
    if (attrs & bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest) names.push(`0x${rest.toString(16)}`);
  return names.join('|');
}
