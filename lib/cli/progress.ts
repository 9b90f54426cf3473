/**
 * The hunt progress bar (cli-progress, a maintained library, rather than hand-drawn escape
 * codes): schedules done of the budget, rate, findings so far and ETA, on stderr. Only on a
 * terminal and never with --json or in CI, where output stays quiet and line-oriented.
 * Wall-clock time here is presentation only: it never reaches the simulation or its output.
 */
import { SingleBar } from 'cli-progress';
import type { HuntProgress } from '../../scheduler';

export interface Progress {
  /** A hunt of `label` starts: returns the callback the fold calls. */
  start(label: string): (p: HuntProgress) => void;
  /** The hunt of the current label ended. */
  stop(): void;
}

const QUIET: Progress = { start: () => () => {}, stop: () => {} };

export function wantProgressBar(json: boolean, stream: NodeJS.WriteStream = process.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  return !json && stream.isTTY === true && !env.CI && env.TERM !== 'dumb';
}

export function progressBar(enabled: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled) return QUIET;
  let bar: SingleBar | null = null;
  let t0 = 0;
  return {
    start(label) {
      bar?.stop();
      bar = new SingleBar({
        stream,
        format: `${label} [{bar}] {value}/{total} schedules | {rate}/s | findings {findings} | ETA {eta_formatted}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
        fps: 8,
      });
      t0 = Date.now();
      let started = false;
      return (p) => {
        if (bar === null) return;
        const secs = Math.max(1e-3, (Date.now() - t0) / 1000);
        const payload = { findings: p.findings, rate: (p.done / secs).toFixed(p.done / secs >= 10 ? 0 : 1) };
        if (!started) {
          bar.start(p.total, p.done, payload);
          started = true;
        } else bar.update(p.done, payload);
      };
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}
