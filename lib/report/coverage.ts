/**
 * The text summary's coverage lines: what the hunt's schedules reached (lock-order pairs, IRQs
 * taken while holding locks, interleaving classes) and, under PCT, the guarantee it gives.
 */
import type { HuntCoverage } from '../../scheduler';

/** How the kernel observer's key groups (lib/check/coverage.ts) read in a sentence. */
const GROUP_NAMES: Record<string, [string, string]> = {
  lockorder: ['lock-order pair', 'lock-order pairs'],
  irqheld: ['irq-while-holding state', 'irq-while-holding states'],
};

function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** A probability with two significant digits, exponent form when small. */
function prob(p: number): string {
  return p >= 0.01 || p === 0 ? String(Number(p.toPrecision(2))) : p.toExponential(1);
}

function pctFormula(n: number, k: number, d: number): string {
  if (d === 1) return `1/${n}`;
  if (d === 2) return `1/(${n}·${k})`;
  return `1/(${n}·${k}^${d - 1})`;
}

/** Two or three short lines for the hunt summary. */
export function formatCoverage(c: HuntCoverage): string[] {
  if (c.schedules === 0) return ['coverage: no schedules run'];
  // the kernel groups always show (a zero says something); any other group follows
  const parts = Object.keys(GROUP_NAMES).map((p) => count(c.groups[p]?.distinct ?? 0, ...GROUP_NAMES[p]));
  for (const [p, g] of Object.entries(c.groups)) if (GROUP_NAMES[p] === undefined) parts.push(count(g.distinct, `${p} key`, `${p} keys`));
  const spc = c.schedulesPerClass;
  const lines = [
    `coverage: ${parts.join(', ')}`,
    `  ${count(c.interleavingClasses, 'interleaving class', 'interleaving classes')} over ${count(c.schedules, 'schedule', 'schedules')}` +
      ` (mean ${spc.mean} per class, max ${spc.max}; ${c.singletonClasses} seen once)`,
  ];
  if (c.pctBound !== null && c.depth !== null) {
    // schedules after which a given depth-d bug has been hit with probability >= 1/2
    const even = c.pctBound >= 1 ? 1 : Math.ceil(Math.log(0.5) / Math.log1p(-c.pctBound));
    lines.push(
      `  PCT depth ${c.depth}: >= ${pctFormula(c.threads, c.steps, c.depth)} = ${prob(c.pctBound)} per schedule (n = ${c.threads} threads, k = ${c.steps} steps);` +
        ` even odds for a given depth-${c.depth} bug by ${count(even, 'schedule', 'schedules')}`,
    );
  }
  return lines;
}
