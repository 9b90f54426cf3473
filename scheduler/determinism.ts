/**
 * --check-determinism: every iteration's choices are replayed twice with the event log on and
 * the logs compared; the first divergent event becomes a `nondeterminism` finding.
 */
import { Engine, type EngineOptions, type RunResult } from './engine';
import type { Finding } from './finding';
import type { Program } from './program';
import { ReplayStrategy } from './strategies/replay';

/**
 * Replay a run's choices twice with the event log on and compare the two logs, and the first
 * log's hash with the hash of the original (light) run. Returns the run with a
 * `nondeterminism` finding added when anything differs.
 */
export function withDeterminismCheck(program: Program, eopts: EngineOptions, first: RunResult, seed: number, expected: number): RunResult {
  const d = checkDeterminism(program, eopts, first.deviations, seed, expected, first.hash);
  if (d === null) return first;
  const f: Finding = {
    kind: 'nondeterminism',
    fingerprint: `nondeterminism:${program.name}`,
    headline: `nondeterminism: two runs of the same schedule diverged${d.index >= 0 ? ` at event ${d.index}` : ''}`,
    text: `two runs with seed ${seed} and the same choices diverged${d.index >= 0 ? ` at event ${d.index}` : ''}:\n  first:  ${d.first}\n  second: ${d.second}\nLook for Math.random, Date.now, timers, or state kept between runs outside the engine.`,
    fatal: false,
    step: Math.max(0, d.index),
    time: 0,
    thread: -1,
    count: 1,
    logged: true,
    loggedCount: 1,
  };
  first.findings.push(f);
  return first;
}

export interface Divergence {
  /** Index of the first differing event, or -1 when only the hashes differ. */
  index: number;
  first: string;
  second: string;
}

/**
 * Determinism self-check: run the same choices (deviations over the default policy) twice with
 * full instrumentation; return the first event where the logs differ, or null when identical.
 * With `expectHash`, also compare against the hash of an earlier (possibly light) run.
 */
export function checkDeterminism(
  program: Program,
  opts: EngineOptions,
  devs: RunResult['deviations'],
  seed: number,
  expected = 100,
  expectHash?: number,
): Divergence | null {
  const eopts: EngineOptions = { ...opts, instrument: true };
  const a = new Engine(eopts).run(program, new ReplayStrategy(devs, 'lenient'), seed, expected);
  const b = new Engine(eopts).run(program, new ReplayStrategy(devs, 'lenient'), seed, expected);
  const ea = a.events!, eb = b.events!;
  const n = Math.max(ea.length, eb.length);
  for (let i = 0; i < n; i++) {
    if (ea[i] !== eb[i]) return { index: i, first: ea[i] ?? '(end of log)', second: eb[i] ?? '(end of log)' };
  }
  if (a.hash !== b.hash) return { index: -1, first: `event hash ${a.hash}`, second: `event hash ${b.hash}` };
  if (expectHash !== undefined && (a.hash >>> 0) !== (expectHash >>> 0)) {
    return { index: -1, first: `hunt run: event hash ${expectHash >>> 0}`, second: `replay: event hash ${a.hash >>> 0}` };
  }
  return null;
}
