/**
 * A CPU: a run queue (an engine resource of capacity one: the task holding it is `curr`), an
 * idle task that waits for interrupts when no task runs, and the interrupt lines bound to it.
 * Interrupts always land on whatever context runs on the CPU: they are retargeted at every
 * context switch.
 */
import type { InterruptSource, Resource } from '../../scheduler';
import type { Machine } from './machine';
import type { Csd } from './smp';
import type { Task } from './task';

export class Cpu {
  curr: Task | null = null;
  idle!: Task;
  runqueue!: Resource;
  readonly irqs: InterruptSource[] = [];
  /** The call-function IPI line and the cross-CPU calls queued for it (smp.ts). */
  ipi: InterruptSource | null = null;
  readonly csdQueue: Csd[] = [];
  /** Softirq vectors raised on this CPU and not yet run (a bitmask, softirq.ts). */
  softirqPending = 0;
  /** The local timer (tick) interrupt line: timer expiry and RCU callback processing (timer.ts). */
  tick: InterruptSource | null = null;

  constructor(
    readonly id: number,
    readonly machine: Machine,
  ) {}

  /** The task whose context interrupts on this CPU land in. */
  get running(): Task {
    return this.curr ?? this.idle;
  }

  /**
   * Interrupt frames (hardirq, and the softirqs its exit runs) open on the idle task. A task
   * woken meanwhile is scheduled only when they are done, at irq exit, as the kernel's idle loop
   * does: the handler keeps the CPU even though no task holds the run queue.
   */
  idleIrq = 0;

  /** Virtual time of the last context switch (the soft-lockup watchdog's touch). */
  lastSwitch = 0;

  /** A context switch: point this CPU's interrupt lines at the new running context. */
  setCurr(t: Task | null): void {
    const prev = this.curr;
    this.curr = t;
    this.lastSwitch = this.machine.sim.now();
    const target = this.running.thread;
    for (const src of this.irqs) this.machine.sim.retarget(src, target);
    this.machine.emit('cpuSwitch', this, prev, t);
  }

  toString(): string {
    return `CPU${this.id}`;
  }
}
