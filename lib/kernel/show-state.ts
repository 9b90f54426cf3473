/**
 * The kernel's show_state() (include/linux/sched/debug.h: show_state_filter(0), which in
 * kernel/sched/core.c calls sched_show_task for every task, v6.x), with the held locks lockdep
 * would list: what every finding shows about the machine at the failing step: each CPU's running
 * context, its IRQ state, preempt_count, held locks and what it waits for, and the tasks that are
 * not running (sleeping, or waiting for their CPU). Detectors call it; the reports only render it.
 */
import type { Machine } from './machine';
import { hex } from './preempt';
import type { Task } from './task';

export interface ContextState {
  cpu: number;
  task: string;
  pid: number;
  context: string;
  irqsDisabled: boolean;
  preemptCount: string;
  held: string[];
  waitingFor: string | null;
  stack: string[];
}

export function describeWait(t: Task, depth = t.depth): string | null {
  const w = t.waits[depth] ?? null;
  if (w === null) return null;
  const lock = w.lock;
  if (lock) {
    const hs = lock.holders();
    const by = hs.length ? ` held by ${hs.map((o) => `${o.task.cpu} ${o.task} (${o.task.contexts[o.depth] ?? 'task'})`).join(', ')}` : '';
    return `${w.kind === 'spinlock' || w.kind === 'rwlock' ? 'spinning on' : 'sleeping on'} ${lock.kind} ${lock.lockClass}${by}`;
  }
  if (w.kind === 'ipi') return `spinning until ${w.what} is handled (csd_lock_wait)`;
  if (w.kind === 'cpu') return `waiting to run on ${w.cpu}`;
  if (w.holders) {
    const hs = w.holders();
    return `waiting for ${w.what}${hs.length ? ` held by ${hs.map((o) => `${o.cpu} ${o}`).join(', ')}` : ''}`;
  }
  return `waiting for ${w.what}`;
}

export function contextState(t: Task): ContextState {
  return {
    cpu: t.cpu.id,
    task: t.comm,
    pid: t.pid,
    context: t.context,
    irqsDisabled: t.irqs_disabled,
    preemptCount: hex(t.preempt_count),
    held: t.held.map((h) => `${h.lock.lockClass} (${h.how}, at ${h.at})`),
    waitingFor: describeWait(t),
    stack: [...t.stack].reverse(),
  };
}

/**
 * dump_stack()'s "Call Trace:" (lib/dump_stack.c, show_stack): `top` (the reporting function's
 * own frames, innermost first), then the task's transcribed stack, inside the <IRQ> or <TASK>
 * marker of the context it runs in. The one builder every splat uses.
 */
export function callTrace(t: Task, top: readonly string[] = []): string {
  const frames = [...top, ...[...t.stack].reverse()];
  const ctx = t.depth > 0 ? 'IRQ' : 'TASK';
  return ['Call Trace:', ` <${ctx}>`, ...frames.map((f) => ` ${f}`), ` </${ctx}>`].join('\n');
}

/** One entry per CPU (its running context), then every other live task. */
export function machineStates(m: Machine): ContextState[] {
  const out: ContextState[] = m.cpus.map((c) => contextState(c.running));
  for (const t of m.tasks) if (t.state !== 'TASK_DEAD' && !m.cpus.some((c) => c.running === t)) out.push(contextState(t));
  return out;
}

export function formatStates(states: ContextState[]): string {
  return states
    .map((s) => {
      const head = `CPU${s.cpu}: ${s.task}/${s.pid} in ${s.context}, irqs ${s.irqsDisabled ? 'off' : 'on'}, preempt_count ${s.preemptCount}`;
      const lines = [head];
      if (s.held.length) lines.push(`  holds: ${s.held.join('; ')}`);
      if (s.waitingFor) lines.push(`  ${s.waitingFor}`);
      if (s.stack.length) lines.push(`  at: ${s.stack.join(' <- ')}`);
      return lines.join('\n');
    })
    .join('\n');
}
