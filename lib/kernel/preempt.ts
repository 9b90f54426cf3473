/**
 * preempt_count layout and the context predicates built on it, as include/linux/preempt.h
 * defines them (docs/kernel-facts.md §4.1). The count lives with the running context: the kernel model
 * keeps it on the Task, and an interrupt handler nested on a task adds HARDIRQ_OFFSET to it,
 * as the kernel's per-CPU count does while the handler runs.
 */

export const PREEMPT_OFFSET = 0x1;
export const PREEMPT_MASK = 0xff;
export const SOFTIRQ_OFFSET = 0x100; // serving a softirq
export const SOFTIRQ_DISABLE_OFFSET = 0x200; // local_bh_disable
/** spin_lock_bh and friends: SOFTIRQ_DISABLE_OFFSET + PREEMPT_LOCK_OFFSET (include/linux/bottom_half.h, CONFIG_PREEMPT_COUNT). */
export const SOFTIRQ_LOCK_OFFSET = 0x201;
export const SOFTIRQ_MASK = 0xff00;
export const HARDIRQ_OFFSET = 0x10000;
export const HARDIRQ_MASK = 0xf0000;
export const NMI_OFFSET = 0x100000;
export const NMI_MASK = 0xf00000;

export const in_atomic = (pc: number): boolean => pc !== 0;
export const hardirq_count = (pc: number): number => pc & HARDIRQ_MASK;
export const softirq_count = (pc: number): number => pc & SOFTIRQ_MASK;
export const in_irq = (pc: number): boolean => hardirq_count(pc) !== 0;
export const in_serving_softirq = (pc: number): boolean => (softirq_count(pc) & SOFTIRQ_OFFSET) !== 0;
export const in_interrupt = (pc: number): boolean => (pc & (HARDIRQ_MASK | SOFTIRQ_MASK | NMI_MASK)) !== 0;
export const in_task = (pc: number): boolean => (pc & (NMI_MASK | HARDIRQ_MASK)) === 0 && !in_serving_softirq(pc);

export function hex(pc: number): string {
  return `0x${(pc >>> 0).toString(16).padStart(8, '0')}`;
}
