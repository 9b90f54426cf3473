/** Weighted pick shared by strategies for jitter and fault choices. */
import type { Rng } from '../rng';

export function weightedPick(rng: Rng, n: number, weights: Float64Array | null): number {
  if (weights === null) return rng.int(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += weights[i] > 0 ? weights[i] : 0;
  if (!(sum > 0)) return 0;
  let r = rng.double() * sum;
  for (let i = 0; i < n; i++) {
    const w = weights[i] > 0 ? weights[i] : 0;
    if (r < w) return i;
    r -= w;
  }
  return n - 1;
}
