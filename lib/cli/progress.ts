/**
 * The hunt progress bar (cli-progress, a maintained library, rather than hand-drawn escape
 * codes), on stderr: a "preparing" line at once, then schedules done of the budget, rate,
 * findings and ETA in one line that fits the terminal (fields drop, the ETA never does); each
 * variant's result line stays on screen as it finishes; Ctrl-C restores the cursor and says
 * "interrupted". Only on a terminal and never with --json or in CI, where output stays quiet and
 * line-oriented. Wall-clock time here is presentation only: it never reaches the simulation.
 */
import { SingleBar } from 'cli-progress';
import type { HuntProgress } from '../../scheduler';

export interface Progress {
  /** A hunt of `label` starts: prints "preparing" at once; returns the callback the fold calls. */
  start(label: string): (p: HuntProgress) => void;
  /** The hunt of the current label ended (the bar goes away). */
  stop(): void;
  /** A variant finished: its result line (resultLine) printed above where the bar was, kept. */
  result(line: string): void;
}

const QUIET: Progress = { start: () => () => {}, stop: () => {}, result: () => {} };

const SHOW_CURSOR = '\x1b[?25h';
const CLEAR_LINE = '\r\x1b[K';

export function wantProgressBar(json: boolean, stream: NodeJS.WriteStream = process.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  return !json && stream.isTTY === true && !env.CI && env.TERM !== 'dumb';
}

/** Seconds as the ETA field shows them: 42s, 3m05s, 2h07m. */
export function formatEta(secs: number): string {
  if (!Number.isFinite(secs) || secs < 0) return '--';
  const s = Math.round(secs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** What one bar line shows. `rate` is schedules per second; the ETA is derived from it alone. */
export interface ProgressState {
  label: string;
  done: number;
  total: number;
  findings: number;
  /** Schedules per second since the first schedule (not counting preparation); 0: not known yet. */
  rate: number;
}

function barOf(done: number, total: number, size: number): string {
  const full = total > 0 ? Math.min(size, Math.round((done / total) * size)) : 0;
  return `[${'█'.repeat(full)}${'░'.repeat(size - full)}]`;
}

/**
 * One bar line at most `columns - 1` characters (the last column would wrap on some terminals).
 * Fields drop in this order as room runs out: the bar narrows, then findings, rate, the bar and
 * the word "schedules" go, then the label is cut; "done/total" and the ETA always stay. ETA =
 * schedules left / rate: the same rate the line shows, so the two always agree.
 */
export function progressLine(s: ProgressState, columns = 80): string {
  const max = Math.max(20, columns - 1);
  const eta = `ETA ${s.rate > 0 ? formatEta((s.total - s.done) / s.rate) : '--'}`;
  const rate = `${s.rate >= 10 ? s.rate.toFixed(0) : s.rate.toFixed(1)}/s`;
  const count = `${s.done}/${s.total}`;
  const tries: [boolean, boolean, number, boolean][] = [
    // findings, rate, bar size (0: none), the word "schedules"
    [true, true, 24, true],
    [true, true, 12, true],
    [true, true, 12, false],
    [false, true, 12, false],
    [false, false, 12, false],
    [false, false, 0, false],
  ];
  let line = '';
  for (const [fi, ra, size, word] of tries) {
    const fields = [`${count}${word ? ' schedules' : ''}`, ...(ra ? [rate] : []), ...(fi ? [`findings ${s.findings}`] : []), eta];
    line = `${s.label} ${size > 0 ? `${barOf(s.done, s.total, size)} ` : ''}${fields.join(' | ')}`;
    if (line.length <= max) return line;
  }
  // the label gives way last
  const rest = line.slice(s.label.length);
  const room = max - rest.length;
  return room >= 2 ? `${s.label.slice(0, room - 1)}…${rest}` : rest.slice(Math.max(0, rest.length - max));
}

/** What a variant's result line reads (the fields of RunJson it needs). */
export interface VariantResult {
  variant: string;
  verdict: string;
  schedulesRun: number;
  findings: readonly { kind: string }[];
  why?: string;
}

/** "S3/buggy: as-expected after 120 schedule(s): lockdep, deadlock" — one line per finished variant. */
export function resultLine(scenario: string, r: VariantResult): string {
  const kinds = [...new Set(r.findings.map((f) => f.kind))].join(', ') || 'clean';
  return `${scenario}/${r.variant}: ${r.verdict} after ${r.schedulesRun} schedule(s): ${kinds}${r.why ? ` (${r.why})` : ''}`;
}

/**
 * The bar. `now` (ms) is injectable for tests; `onInterrupt` decides what SIGINT does after the
 * terminal is restored (default: re-raise it, so the process ends as an interrupted one would).
 */
export function progressBar(enabled: boolean, stream: NodeJS.WriteStream = process.stderr, o: { now?: () => number; onInterrupt?: () => void } = {}): Progress {
  if (!enabled) return QUIET;
  const now = o.now ?? (() => Date.now());
  let bar: SingleBar | null = null;
  let label = '';
  let drawn = false; // something (preparing or the bar) is on the current line
  const columns = () => (typeof stream.columns === 'number' && stream.columns > 0 ? stream.columns : 80);

  const interrupt = (): void => {
    process.removeListener('SIGINT', interrupt);
    bar?.stop();
    bar = null;
    stream.write(`${drawn ? CLEAR_LINE : ''}${SHOW_CURSOR}${label ? `${label}: ` : ''}interrupted\n`);
    drawn = false;
    if (o.onInterrupt) o.onInterrupt();
    else if (process.listenerCount('SIGINT') === 0) process.kill(process.pid, 'SIGINT');
  };
  const guard = (on: boolean) => {
    process.removeListener('SIGINT', interrupt);
    if (on) process.on('SIGINT', interrupt);
  };

  const stop = () => {
    bar?.stop();
    bar = null;
    if (drawn) stream.write(CLEAR_LINE);
    drawn = false;
    guard(false);
  };

  return {
    start(l) {
      stop();
      label = l;
      guard(true);
      // at once: calibration and planning can take a while before the first schedule reports
      stream.write(`${CLEAR_LINE}${label.slice(0, Math.max(8, columns() - 14))} preparing…`);
      drawn = true;
      let t0 = -1;
      let d0 = 0;
      let state: ProgressState = { label, done: 0, total: 0, findings: 0, rate: 0 };
      return (p) => {
        const t = now();
        // the rate counts from the first report (preparation excluded), over the schedules since
        if (t0 < 0) {
          t0 = t;
          d0 = p.done;
        }
        const secs = (t - t0) / 1000;
        state = { label, done: p.done, total: p.total, findings: p.findings, rate: secs > 0 ? (p.done - d0) / secs : 0 };
        if (bar === null) {
          bar = new SingleBar({
            stream,
            format: () => progressLine(state, columns()),
            hideCursor: true,
            clearOnComplete: true,
            linewrap: false,
            fps: 8,
          });
          bar.start(p.total, p.done);
        } else bar.update(p.done);
      };
    },
    stop,
    result(line) {
      bar?.stop();
      bar = null;
      stream.write(`${drawn ? CLEAR_LINE : ''}${line}\n`);
      drawn = false;
    },
  };
}
