/**
 * Interrupt lines: request_irq binds a handler to a CPU. The line is an engine interrupt source
 * that always targets whatever context runs on that CPU; a pending interrupt is taken only where
 * that context has IRQs on. The handler runs nested in hardirq context: irq_enter adds
 * HARDIRQ_OFFSET to preempt_count (IRQs are off, as hardware leaves them), irq_exit takes it
 * away and restores the interrupted state.
 */
import type { InterruptSource, Thread } from '../../scheduler';
import type { KernelBody, Machine } from './machine';
import { HARDIRQ_OFFSET } from './preempt';
import { irqExitSoftirqs } from './softirq';
import type { Task } from './task';

export type IrqHandler = (cur: Task) => KernelBody;

export interface IrqLine {
  name: string;
  cpu: number;
  src: InterruptSource;
}

/** The engine-side handler: irq_enter, the handler in hardirq context, irq_exit. */
export function hardirqEntry(name: string, handler: IrqHandler): (t: Thread) => KernelBody {
  return function* (t: Thread) {
    const cur = t.local as Task;
    const d = t.nesting;
    cur.contexts[d] = `hardirq ${name}`;
    cur.stacks[d] = [name];
    cur.waits[d] = null;
    cur.preempt_count += HARDIRQ_OFFSET;
    yield* handler(cur);
    cur.preempt_count -= HARDIRQ_OFFSET;
    yield* irqExitSoftirqs(cur); // irq_exit: softirqs raised by the handler run here
    cur.contexts.length = d;
    cur.stacks.length = d;
    cur.waits.length = d;
  };
}

/** request_irq(): a device interrupt line on `cpu` (its affinity). */
export function request_irq(m: Machine, cpu: number, name: string, handler: IrqHandler): IrqLine {
  const c = m.cpu(cpu);
  const src = m.sim.interruptSource({ name, target: c.running.thread, handler: hardirqEntry(name, handler) });
  c.irqs.push(src);
  return { name, cpu, src };
}

/** The device raises its interrupt (from a thread, a timer or setup). */
export function raise_irq(m: Machine, line: IrqLine): void {
  m.sim.raise(line.src);
}
