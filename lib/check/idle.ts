/**
 * "bad: scheduling from the idle thread!": kernel/sched/idle.c dequeue_task_idle() prints it
 * (then dump_stack) when the idle task is taken off the run queue, which happens when an
 * interrupt that landed on an idle CPU tries to sleep. It follows the "scheduling while atomic"
 * splat of the same schedule() (__schedule_bug runs first, in schedule_debug).
 */
import type { Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';
import { callTrace } from '../kernel/show-state';

export function installIdleScheduleCheck(m: Machine): void {
  const sim = m.sim;
  m.addHooks({
    idleSchedule(cur: Task) {
      const text = [
        'bad: scheduling from the idle thread!',
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, ['dump_stack_lvl', 'dequeue_task_idle', 'dequeue_task', '__schedule', 'schedule']),
      ].join('\n');
      m.log.printk(cur.cpu.id, text);
      sim.report({
        kind: 'might_sleep',
        subkind: 'scheduling_from_idle',
        fingerprint: `scheduling_from_idle:${cur.site}`,
        headline: `bad: scheduling from the idle thread! (CPU ${cur.cpu.id}, ${cur.context})`,
        text,
      });
    },
  });
}
