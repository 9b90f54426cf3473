/**
 * The simulated kernel log (dmesg) with the kernel's ratelimits. Findings count every
 * occurrence; the log shows what the kernel would have printed.
 */
import type { Engine } from '../../scheduler';

export const NSEC_PER_SEC = 1_000_000_000;

export interface LogLine {
  time: number;
  cpu: number;
  text: string;
}

export class KernelLog {
  readonly lines: LogLine[] = [];
  private readonly windows = new Map<string, { start: number; printed: number; missed: number }>();
  private readonly once = new Set<string>();

  constructor(private readonly sim: Engine) {}

  printk(cpu: number, text: string): void {
    for (const l of text.split('\n')) this.lines.push({ time: this.sim.now(), cpu, text: l });
  }

  /**
   * ___ratelimit(): at most `burst` in each `interval` ns window per key. Returns whether to print.
   * might_sleep uses one per second (burst 1); "swiotlb buffer is full" 10 per 5 s.
   */
  ratelimit(key: string, interval: number, burst: number): boolean {
    const now = this.sim.now();
    let w = this.windows.get(key);
    if (w === undefined || now - w.start >= interval) {
      w = { start: now, printed: 0, missed: 0 };
      this.windows.set(key, w);
    }
    if (w.printed < burst) {
      w.printed++;
      return true;
    }
    w.missed++;
    return false;
  }

  /** WARN_ONCE / printk_once: true the first time for this key. */
  firstTime(key: string): boolean {
    if (this.once.has(key)) return false;
    this.once.add(key);
    return true;
  }

  /** dmesg-style text: "[    0.000123] ..." with virtual time in seconds. */
  text(): string {
    return this.lines.map((l) => `[${(l.time / NSEC_PER_SEC).toFixed(6).padStart(12)}] ${l.text}`).join('\n');
  }
}
