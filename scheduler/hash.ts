/**
 * Small deterministic hashes: FNV-1a over strings (program hashes, schedule checksums)
 * and an integer mixer for the per-step event-log hash. 32-bit, no allocation.
 */

export function fnv1a(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Mix one 32-bit integer into a running hash (murmur3-style round). */
export function mix(h: number, x: number): number {
  let k = Math.imul(x | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** Mix a non-negative number that may exceed 32 bits (virtual clocks in ns). */
export function mixNum(h: number, x: number): number {
  return mix(mix(h, x | 0), Math.floor(x / 4294967296) | 0);
}

export function hex32(h: number): string {
  return (h >>> 0).toString(16).padStart(8, '0');
}
