/**
 * Shrinker: delta debugging (Zeller's ddmin) over a schedule's deviations while the same
 * fingerprint recurs. Replays are lenient, so a deviation whose point is no longer reached is
 * simply not applied; after each successful test the schedule becomes the deviations the run
 * actually took (a subset), so the result replays strictly. Deviations after the step where
 * the finding first occurred are dropped first ("earlier stop").
 */
import { Engine, type Deviation, type EngineOptions, type RunResult } from './engine';
import { programHash, type Program } from './program';
import { decodeSchedule, encodeSchedule } from './schedule';
import { ReplayStrategy } from './strategies/replay';

export interface ShrinkResult {
  schedule: string;
  before: number;
  after: number;
  runs: number;
  /** False when the input schedule did not reproduce the fingerprint at all. */
  reproduced: boolean;
}

export function shrinkSchedule(program: Program, schedule: string, fingerprint: string, opts: EngineOptions = {}, maxRuns = 400): ShrinkResult {
  const s = decodeSchedule(schedule);
  const engine = new Engine({ ...opts, instrument: false });
  const hash = programHash(program, { ...opts, instrument: false });
  let runs = 0;
  const test = (devs: readonly Deviation[]): RunResult | null => {
    runs++;
    const r = engine.run(program, new ReplayStrategy(devs, 'lenient'), s.seed, Math.max(1, s.steps));
    return r.findings.some((f) => f.fingerprint === fingerprint) ? r : null;
  };
  const first = test(s.devs);
  if (first === null) return { schedule, before: s.devs.length, after: s.devs.length, runs, reproduced: false };
  const at = first.findings.find((f) => f.fingerprint === fingerprint)!.step;
  let best = first;
  let devs = first.deviations.filter((d) => d.step <= at);
  if (devs.length < first.deviations.length) {
    const r = test(devs);
    if (r) {
      best = r;
      devs = r.deviations;
    } else devs = first.deviations;
  }
  let n = 2;
  while (devs.length > 0 && runs < maxRuns) {
    const chunk = Math.ceil(devs.length / n);
    let reduced = false;
    for (let i = 0; i < devs.length && runs < maxRuns; i += chunk) {
      const cand = devs.slice(0, i).concat(devs.slice(i + chunk));
      const r = test(cand);
      if (r) {
        best = r;
        devs = r.deviations;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= devs.length) break;
      n = Math.min(devs.length, n * 2);
    }
  }
  return {
    schedule: encodeSchedule({ hash, strategy: s.strategy, seed: s.seed, steps: best.metrics.steps, devs: best.deviations }),
    before: s.devs.length,
    after: best.deviations.length,
    runs,
    reproduced: true,
  };
}
