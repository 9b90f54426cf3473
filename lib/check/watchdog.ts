/**
 * The kernel's liveness watchdogs, as findings, only where they mean something (timed mode or a
 * fair strategy: Engine.liveness; pure interleaving starves threads on purpose):
 *  - hung_task (kernel/hung_task.c): a task in TASK_UNINTERRUPTIBLE (not TASK_IDLE) for more than
 *    hung_task_timeout_secs (120 s). Checked once per sleep at its deadline; the kernel's
 *    khungtaskd checks every timeout, so it may report up to one period later.
 *  - soft_lockup (kernel/watchdog.c): a CPU that has not switched context for more than
 *    2 * watchdog_thresh (20 s) while what runs on it cannot be preempted (spinning, preempt or
 *    IRQs disabled, in an interrupt, or no kernel preemption). Sampled every watchdog_thresh*2/5
 *    (4 s), like the watchdog hrtimer. The NMI hard-lockup detector is not modelled.
 *  - stall: the run reached its horizon with tasks that have not finished (livelock, throttled
 *    loops): docs/contract.md's "no forward progress within the horizon".
 * Every timer used is a daemon timer: a watchdog never keeps a run alive.
 */
import type { Machine } from '../kernel/machine';
import { NSEC_PER_SEC } from '../kernel/log';
import type { Cpu } from '../kernel/cpu';
import { Task } from '../kernel/task';
import { describeWait, formatStates, machineStates } from '../kernel/show-state';
import { waitClasses } from './deadlock';
import { lockdepOf } from './lockdep';
import { callTrace } from '../kernel/show-state';

export interface WatchdogOptions {
  /** hung_task_timeout_secs. */
  hungTaskTimeoutSecs?: number;
  /** watchdog_thresh (soft lockup after twice this). */
  watchdogThreshSecs?: number;
}

/**
 * debug_show_all_locks (kernel/locking/lockdep.c, v6.12): "INFO: lockdep is turned off." after a
 * lockdep report; else every task with held locks (lockdep_print_held_locks, real usage bits)
 * and a closing ruler. Nothing without lockdep.
 */
function heldLocks(m: Machine): string {
  const ld = lockdepOf(m);
  if (ld === null) return '';
  if (!ld.on) return 'INFO: lockdep is turned off.';
  const lines = ['', 'Showing all locks held in the system:'];
  for (const t of m.tasks) {
    const h = ld.heldLines(t);
    if (h[0].startsWith('no locks held')) continue;
    lines.push(...h);
  }
  lines.push('', '=============================================', '');
  return lines.join('\n');
}

function canSchedule(m: Machine, t: Task): boolean {
  if (t.depth > 0 || t.preempt_count !== 0 || t.irqs_disabled) return false;
  const w = t.waitingFor;
  if (w !== null && (w.kind === 'spinlock' || w.kind === 'rwlock' || w.kind === 'ipi' || w.kind === 'flag')) return false;
  return m.preemption === 'full';
}

export function installWatchdogs(m: Machine, opts: WatchdogOptions = {}): void {
  const sim = m.sim;
  if (!sim.liveness) return;
  const hungNs = (opts.hungTaskTimeoutSecs ?? 120) * NSEC_PER_SEC;
  const threshNs = (opts.watchdogThreshSecs ?? 10) * NSEC_PER_SEC;
  const lockupNs = 2 * threshNs;
  const periodNs = (2 * threshNs) / 5;

  m.addHooks({
    sleep(cur: Task) {
      // kernel/hung_task.c: exactly TASK_UNINTERRUPTIBLE. v6.6-v6.12 test `state ==
      // TASK_UNINTERRUPTIBLE`; later task_is_hung() skips TASK_WAKEKILL | TASK_NOLOAD |
      // TASK_FROZEN: either way killable (TASK_WAKEKILL) and idle (TASK_NOLOAD) sleeps are skipped.
      if (cur.state !== 'TASK_UNINTERRUPTIBLE') return;
      const seq = cur.sleepSeq;
      sim.after(
        hungNs,
        () => {
          if (cur.sleepSeq !== seq || cur.state !== 'TASK_UNINTERRUPTIBLE') return;
          const secs = Math.round(hungNs / NSEC_PER_SEC);
          const text = [
            // check_hung_task: the taint state, release and version (print_tainted, utsname)
            `INFO: task ${cur.comm}:${cur.pid} blocked for more than ${secs} seconds.`,
            `      Not tainted ${m.kernel.version === '3.x-arm' ? '3.x' : `${m.kernel.version}.0`}-irqsim #1`,
            '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
            `task:${cur.comm.padEnd(15)} state:D stack:0     pid:${cur.pid} flags:0x${(cur.flags >>> 0).toString(16).padStart(8, '0')}`,
            `  ${describeWait(cur) ?? 'sleeping'}`,
            callTrace(cur, ['__schedule', 'schedule']).replace('<IRQ>', '<TASK>').replace('</IRQ>', '</TASK>'),
            heldLocks(m),
          ].join('\n');
          m.log.printk(cur.cpu.id, text);
          sim.report({
            kind: 'hung_task',
            fingerprint: `hung_task:${cur.comm}@${cur.waitingFor?.what ?? cur.site}`,
            headline: `INFO: task ${cur.comm}:${cur.pid} blocked for more than ${secs} seconds (${describeWait(cur) ?? 'sleeping'})`,
            text,
            // what --confirm matches a lockdep prediction against: what the hung task holds and waits on
            data: { cpuStates: machineStates(m), classes: waitClasses([cur]) },
          });
        },
        'khungtaskd',
        { daemon: true },
      );
    },
  });

  // The per-CPU watchdog hrtimer: one daemon timer chain per CPU.
  const reported = new Map<Cpu, number>();
  const sample = (cpu: Cpu) => {
    const t = cpu.curr;
    const now = sim.now();
    if (t !== null && now - cpu.lastSwitch > lockupNs && !canSchedule(m, t) && reported.get(cpu) !== cpu.lastSwitch) {
      reported.set(cpu, cpu.lastSwitch);
      const secs = Math.floor((now - cpu.lastSwitch) / NSEC_PER_SEC);
      const text = [
        `watchdog: BUG: soft lockup - CPU#${cpu.id} stuck for ${secs}s! [${t.comm}:${t.pid}]`,
        `CPU: ${cpu.id} PID: ${t.pid} Comm: ${t.comm} Not tainted (irqsim)`,
        `  in ${t.context}, irqs ${t.irqs_disabled ? 'off' : 'on'}: ${describeWait(t) ?? 'running'}`,
        callTrace(t, []),
        '',
        'machine state:',
        formatStates(machineStates(m)),
      ].join('\n');
      m.log.printk(cpu.id, text);
      sim.report({
        kind: 'soft_lockup',
        fingerprint: `soft_lockup:${t.comm}@${t.site}`,
        headline: `BUG: soft lockup - CPU#${cpu.id} stuck for ${secs}s! [${t.comm}:${t.pid}] ${describeWait(t) ?? `in ${t.site}`}`,
        text,
        data: { cpuStates: machineStates(m) },
      });
    }
    sim.after(periodNs, () => sample(cpu), `watchdog/${cpu.id}`, { daemon: true });
  };
  for (const cpu of m.cpus) sim.after(periodNs, () => sample(cpu), `watchdog/${cpu.id}`, { daemon: true });

  sim.onHorizon((live) => {
    const tasks = live.map((th) => th.local).filter((x): x is Task => x instanceof Task);
    if (tasks.length === 0) return;
    const secs = (sim.horizon / NSEC_PER_SEC).toFixed(3);
    const parts = tasks.map((t) => `  CPU${t.cpu.id} ${t.comm}/${t.pid} in ${t.context}: ${describeWait(t) ?? `running in ${t.site}`}`);
    sim.report({
      kind: 'stall',
      fingerprint: `stall:${[...new Set(tasks.map((t) => `${t.comm}@${t.waitingFor?.what ?? t.site}`))].sort().join('+')}`,
      headline: `stall: ${tasks.length} task(s) made no forward progress to completion by the horizon (${secs} s)`,
      text: [`irqsim: stall: the run reached its horizon (${secs} s of virtual time) with tasks still running:`, ...parts, '', 'machine state:', formatStates(machineStates(m))].join('\n'),
      data: { cpuStates: machineStates(m) },
    });
  });
}
