/**
 * "Did you mean": the closest known word to a mistyped command, option, scenario id or variant,
 * by optimal-string-alignment distance (Levenshtein plus swapping two neighbouring characters,
 * so `hnut` is one edit from `hunt`). A suggestion is made only when it is clearly the one meant:
 * within a third of the word's length (at least 1, at most 3 edits), or when the typed word is a
 * prefix of exactly one known word.
 */

/** Edits (insert, delete, substitute, swap neighbours) between a and b, case-insensitive. */
export function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  // Three rows: the one before the previous is needed for swaps.
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = new Array<number>(m + 1);
  let cur = new Array<number>(m + 1);
  for (let j = 0; j <= m; j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    cur[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur[j] = d;
    }
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[m];
}

/** The known word meant by `typed`, or null when none is close enough or two tie. */
export function didYouMean(typed: string, known: readonly string[]): string | null {
  if (typed === '') return null;
  const limit = Math.min(3, Math.max(1, Math.floor(typed.replace(/^-+/, '').length / 3)));
  let best: string | null = null;
  let bestD = Infinity;
  let tie = false;
  for (const k of known) {
    if (k === typed) return null;
    const d = editDistance(typed, k);
    if (d < bestD) {
      best = k;
      bestD = d;
      tie = false;
    } else if (d === bestD && k !== best) {
      tie = true;
    }
  }
  if (best !== null && bestD <= limit && !tie) return best;
  const prefixed = known.filter((k) => k.toLowerCase().startsWith(typed.toLowerCase()));
  return prefixed.length === 1 ? prefixed[0] : null;
}

/** " (did you mean X?)" or "" — for appending to an error line. */
export function suggestion(typed: string, known: readonly string[]): string {
  const s = didYouMean(typed, known);
  return s === null ? '' : ` (did you mean ${s}?)`;
}
