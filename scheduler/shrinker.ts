/**
 * Shrinker: delta debugging (Zeller's ddmin) over a schedule's deviations while the same
 * fingerprint recurs. Replays are lenient, so a deviation whose point is no longer reached is
 * simply not applied; after each successful test the schedule becomes the deviations the run
 * actually took (a subset), so the result replays strictly. Deviations after the step where
 * the finding first occurred are dropped first ("earlier stop").
 *
 * ddmin only deletes, so it can stop at "switch to a bystander, then to the thread that
 * matters". A collapse pass then tries replacing each pair of neighbouring deviations of the
 * same kind by the later one moved to the earlier one's point, and ddmin runs again.
 */
import { Engine, type Deviation, type EngineOptions, type RunResult } from './engine';
import { programHash, type Program } from './program';
import { decodeSchedule, encodeSchedule, eventHash } from './schedule';
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
  const ddmin = (): void => {
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
  };
  const collapse = (): boolean => {
    for (let i = 1; i < devs.length && runs < maxRuns; i++) {
      const a = devs[i - 1], b = devs[i];
      if (a.kind !== b.kind) continue;
      const cand = devs.slice(0, i - 1).concat([{ step: a.step, sub: a.sub, kind: b.kind, id: b.id }], devs.slice(i + 1));
      const r = test(cand);
      if (r && r.deviations.length < devs.length) {
        best = r;
        devs = r.deviations;
        return true;
      }
    }
    return false;
  };
  ddmin();
  while (devs.length > 1 && runs < maxRuns && collapse()) ddmin();
  return {
    schedule: encodeSchedule({ hash, events: eventHash(best.hash), strategy: s.strategy, seed: s.seed, steps: best.metrics.steps, devs: best.deviations }),
    before: s.devs.length,
    after: best.deviations.length,
    runs,
    reproduced: true,
  };
}
