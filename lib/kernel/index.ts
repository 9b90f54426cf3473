/** The kernel execution model, built on the engine. */
export * from './cpu';
export * from './hooks';
export * from './irq';
export * from './irqflags';
export * from './lock';
export * from './log';
export * from './machine';
export * from './mutex';
export * from './preempt';
export * from './preemption';
export * from './sched';
export * from './smp';
export * from './spinlock';
export * from './stack';
export * from './task';
export * from './rcu';
