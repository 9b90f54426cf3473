/**
 * Local interrupt state: local_irq_disable/enable/save/restore. IRQs-off is the engine
 * thread's `interruptible = false`: a pending interrupt for this CPU waits. Enabling is a
 * delivery point (a pending interrupt may land right there), so it yields a scheduling point.
 *
 * Every kernel primitive is a generator called with `yield*`, even the ones that never yield,
 * so a transcribed code path reads the same whichever primitive it calls.
 */
import type { Task } from './task';
import { trace_hardirqs_off, trace_hardirqs_on } from './irqtrace';

/** X86_EFLAGS_IF: the bit local_irq_save's flags carry when interrupts were enabled. */
export const ARCH_IRQ_ENABLED = 0x200;

// trace_hardirqs_off / _on (CONFIG_TRACE_IRQFLAGS): each real transition is an irq event, at
// `ip`: the caller by default; lock functions pass their own name (_raw_spin_lock_irqsave).
export function* local_irq_disable(cur: Task, ip = cur.site): Generator<unknown, void, unknown> {
  cur.thread.interruptible = false;
  trace_hardirqs_off(cur, ip);
}

export function* local_irq_enable(cur: Task, ip = cur.site): Generator<unknown, void, unknown> {
  trace_hardirqs_on(cur, ip);
  cur.thread.interruptible = true;
  yield cur.thread.point();
}

export function* local_irq_save(cur: Task, ip = cur.site): Generator<unknown, number, unknown> {
  const flags = cur.thread.interruptible ? ARCH_IRQ_ENABLED : 0;
  cur.thread.interruptible = false;
  trace_hardirqs_off(cur, ip);
  return flags;
}

export function* local_irq_restore(cur: Task, flags: number, ip = cur.site): Generator<unknown, void, unknown> {
  if (flags & ARCH_IRQ_ENABLED) yield* local_irq_enable(cur, ip);
  else cur.thread.interruptible = false;
}

export function irqs_disabled(cur: Task): boolean {
  return !cur.thread.interruptible;
}
