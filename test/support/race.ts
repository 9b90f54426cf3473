/**
 * Both sides of a race test: the buggy form is found within `n` schedules of a hunt, the
 * correct form stays clean over `m` (every finding counts, not only the expected kind).
 */
import { expect } from 'chai';
import { Engine, hunt, makeStrategy, type FoundFinding, type HuntOptions, type Program } from '../../scheduler';
import type { KernelWorld } from './kernel';

export const describeFinding = (f: FoundFinding): string => `${f.kind}${f.subkind ? '/' + f.subkind : ''}: ${f.headline}`;

/** Hunt `p` with random walk until a finding matching `match` (kind or headline substring). */
export function foundWithin(p: Program, n: number, match: string, opts: Partial<HuntOptions> = {}): FoundFinding {
  const h = hunt(p, { strategy: 'random', seed: 1, iterations: n, stopAtFirst: false, stopWhen: (fs) => fs.some((f) => hit(f, match)), ...opts });
  const f = h.findings.find((x) => hit(x, match));
  expect(f, `${p.name}: no "${match}" within ${n} schedules; found: ${h.findings.map(describeFinding).join('; ') || 'nothing'}`).to.not.equal(undefined);
  return f!;
}

/** Hunt `p` over `m` schedules: no finding of any kind. */
export function cleanOver(p: Program, m: number, opts: Partial<HuntOptions> = {}): void {
  const h = hunt(p, { strategy: 'random', seed: 1, iterations: m, stopAtFirst: false, ...opts });
  expect(h.findings.map(describeFinding), `${p.name} over ${h.schedulesRun} schedules`).to.deep.equal([]);
  expect(h.schedulesRun).to.equal(m);
}

function hit(f: FoundFinding, match: string): boolean {
  return f.kind === match || f.subkind === match || f.headline.includes(match);
}

/** Run `p` under `n` random schedules; `check` sees each run's log (the clean side did do its work). */
export function everyRunLogs(p: Program, n: number, check: (log: string[]) => void): void {
  const e = new Engine();
  for (let i = 0; i < n; i++) {
    e.run(p, makeStrategy({ strategy: 'random' }), i);
    check((e.world as KernelWorld).log);
  }
}
