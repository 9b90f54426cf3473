/**
 * IRQ-flag tracing (CONFIG_TRACE_IRQFLAGS, kernel/locking/lockdep.c): per task, a counter of
 * irq-state events and, for each of hardirqs on / off and softirqs on / off, the event number and
 * the code location of the last transition. Only real transitions count: turning interrupts off
 * when they are already off is "redundant" upstream and records nothing (lockdep_hardirqs_off).
 * print_irqtrace_events() prints the block reports add when interrupts are off.
 *
 * Sources: local_irq_* (irqflags.ts), hardirq entry and exit (irq.ts), local_bh_* (preemption.ts),
 * the *_lock_bh / *_unlock_bh lock operations and softirq processing (through hooks here).
 * Locations are the innermost transcribed function (CALLER_ADDR0 of the caller); irq entry and
 * exit use the architecture's entry symbol. The model has no instruction addresses, so the
 * "[<...>]" column is a stable stand-in derived from the symbol.
 */
import { fnv1a } from '../../scheduler';
import type { Machine } from './machine';
import type { Task } from './task';

export interface IrqTraceEvents {
  irq_events: number;
  hardirq_enable_event: number;
  hardirq_enable_ip: string | null;
  hardirq_disable_event: number;
  hardirq_disable_ip: string | null;
  softirq_enable_event: number;
  softirq_enable_ip: string | null;
  softirq_disable_event: number;
  softirq_disable_ip: string | null;
  /** lockdep's view of this task's hardirq / softirq state (for redundancy). */
  hardirqsOn: boolean;
  softirqsOn: boolean;
}

const traces = new WeakMap<Task, IrqTraceEvents>();

export function irqtrace(t: Task): IrqTraceEvents {
  let e = traces.get(t);
  if (e === undefined) {
    e = {
      irq_events: 0,
      hardirq_enable_event: 0,
      hardirq_enable_ip: null,
      hardirq_disable_event: 0,
      hardirq_disable_ip: null,
      softirq_enable_event: 0,
      softirq_enable_ip: null,
      softirq_disable_event: 0,
      softirq_disable_ip: null,
      hardirqsOn: true,
      softirqsOn: true,
    };
    traces.set(t, e);
  }
  return e;
}

/** lockdep_hardirqs_off(ip). */
export function trace_hardirqs_off(t: Task, ip: string): void {
  const e = irqtrace(t);
  if (!e.hardirqsOn) return;
  e.hardirqsOn = false;
  e.hardirq_disable_ip = ip;
  e.hardirq_disable_event = ++e.irq_events;
}

/** lockdep_hardirqs_on(ip). */
export function trace_hardirqs_on(t: Task, ip: string): void {
  const e = irqtrace(t);
  if (e.hardirqsOn) return;
  e.hardirqsOn = true;
  e.hardirq_enable_ip = ip;
  e.hardirq_enable_event = ++e.irq_events;
}

/** __local_bh_disable_ip: the first disable records (softirq_count() was 0). */
export function trace_softirqs_off(t: Task, ip: string): void {
  const e = irqtrace(t);
  if (!e.softirqsOn) return;
  e.softirqsOn = false;
  e.softirq_disable_ip = ip;
  e.softirq_disable_event = ++e.irq_events;
}

/** lockdep_softirqs_on(ip): when the last bh-disable / softirq count goes away. */
export function trace_softirqs_on(t: Task, ip: string): void {
  const e = irqtrace(t);
  if (e.softirqsOn) return;
  e.softirqsOn = true;
  e.softirq_enable_ip = ip;
  e.softirq_enable_event = ++e.irq_events;
}

/** A stand-in kernel text address for a symbol ("[<ffffffff81xxxxxx>]"). */
function addr(sym: string | null): string {
  if (sym === null) return '0000000000000000';
  return `ffffffff8${(fnv1a(sym) >>> 4).toString(16).padStart(7, '0')}`;
}

function line(what: string, n: number, ip: string | null): string {
  return `${what} (${n}): [<${addr(ip)}>] ${ip ?? '0x0'}`;
}

/**
 * print_irqtrace_events(curr) (kernel/locking/lockdep.c, v6.12): the event stamp, then the last
 * hardirq enable and disable, then the last softirq enable and disable, each with its event
 * number and location ("0x0" where none happened yet).
 */
export function print_irqtrace_events(t: Task): string[] {
  const e = irqtrace(t);
  return [
    `irq event stamp: ${e.irq_events}`,
    line('hardirqs last  enabled at', e.hardirq_enable_event, e.hardirq_enable_ip),
    line('hardirqs last disabled at', e.hardirq_disable_event, e.hardirq_disable_ip),
    line('softirqs last  enabled at', e.softirq_enable_event, e.softirq_enable_ip),
    line('softirqs last disabled at', e.softirq_disable_event, e.softirq_disable_ip),
  ];
}

/** The architecture's interrupt entry symbol (where irq entry turns hardirqs off and exit on). */
export function irqEntrySymbol(m: Machine, exit: boolean): string {
  if (m.arch === 'arm') return '__irq_svc';
  if (m.arch === 'arm64') return exit ? 'el1_interrupt' : 'enter_from_kernel_mode';
  return exit ? 'asm_common_interrupt' : 'common_interrupt';
}

/** Subscribe the hook-fed sources: *_lock_bh / *_unlock_bh, and softirq processing. */
export function irqtrace_init(m: Machine): void {
  m.addHooks({
    lockAcquire(cur, _lock, how) {
      if (how.endsWith('_bh')) trace_softirqs_off(cur, `_raw_${how}`);
    },
    lockRelease(cur, _lock, how) {
      // *_unlock_bh: the hook runs before SOFTIRQ_DISABLE_OFFSET is dropped; softirqs come back
      // on when that was the last of the softirq count
      if (how.endsWith('_bh') && (cur.preempt_count & 0xff00) === 0x200) trace_softirqs_on(cur, `_raw_${how}`);
    },
    // __do_softirq runs each vector with SOFTIRQ_OFFSET added (the hooks see it already added)
    softirqEnter(cur) {
      trace_softirqs_off(cur, '__do_softirq');
    },
    softirqExit(cur) {
      if ((cur.preempt_count & 0xff00) === 0x100) trace_softirqs_on(cur, '__do_softirq');
    },
  });
}
