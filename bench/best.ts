/** Best wall-clock seconds of `runs` calls of `f`, after one warm-up call. */
export function best(runs: number, f: () => unknown): number {
  f();
  let b = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    f();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (s < b) b = s;
  }
  return b;
}
