/**
 * Timers (kernel/time/timer.c): timer_list with an expiry in jiffies, armed on the CPU that calls
 * mod_timer. When the expiry comes, that CPU's local timer interrupt fires (hardirq context);
 * its handler raises TIMER_SOFTIRQ and the expired callbacks run in softirq context at irq exit,
 * in expiry order. del_timer_sync waits for a callback running on another CPU.
 *
 * Simplifications: a timer fires at its jiffy boundary exactly (no wheel granularity beyond a
 * jiffy, no slack); there is no periodic tick, only ticks that have work (NO_HZ idle-like).
 */

import type { Cpu } from './cpu';
import { hardirqEntry } from './irq';
import type { KernelBody, Machine } from './machine';
import { TIMER_SOFTIRQ, open_softirq, raise_softirq_irqoff } from './softirq';
import type { Task } from './task';

export type TimerFn = (cur: Task, timer: timer_list) => KernelBody;

export class timer_list {
  /** Expiry in jiffies. */
  expires = 0;
  /** Armed and not yet run or deleted (timer_pending). */
  pending = false;
  /** CPU whose timer base holds it. */
  cpu: Cpu | null = null;
  /** The CPU running the callback now, or null. */
  running: Cpu | null = null;
  /** Bumped at every (re)arm and delete, so stale engine events are ignored. */
  seq = 0;
  readonly obj: number;
  constructor(
    m: Machine,
    readonly name: string,
    public fn: TimerFn,
  ) {
    this.obj = m.sim.object(`timer:${name}`);
  }
}

/** Per-CPU timer base: expired timers waiting for TIMER_SOFTIRQ, and hooks the tick runs. */
export class TickState {
  readonly expired: timer_list[][];
  /** Work the local timer interrupt does on a CPU besides timers (RCU's rcu_sched_clock_irq). */
  readonly tickHooks: ((cur: Task) => KernelBody)[] = [];
  constructor(m: Machine) {
    this.expired = m.cpus.map(() => []);
  }
}

export function nsPerJiffy(m: Machine): number {
  return 1_000_000_000 / m.hz;
}

/** The current jiffies counter. */
export function jiffies(m: Machine): number {
  return Math.floor(m.sim.now() / nsPerJiffy(m));
}

export function msecs_to_jiffies(m: Machine, ms: number): number {
  return Math.ceil((ms * 1_000_000) / nsPerJiffy(m));
}

/** timer_setup(timer, callback, flags): a timer named for reports. */
export function timer_setup(m: Machine, name: string, fn: TimerFn): timer_list {
  return new timer_list(m, name, fn);
}
export const DEFINE_TIMER = timer_setup;

/** Boot: every CPU's local timer interrupt line and the TIMER_SOFTIRQ action. */
export function timers_init(m: Machine): void {
  const st = m.tick;
  for (const cpu of m.cpus) {
    cpu.tick = m.sim.interruptSource({
      name: `LOC/${cpu.id}`,
      target: cpu.running.thread,
      handler: hardirqEntry('apic_timer_interrupt', function* (cur: Task) {
        // update_process_times: expired timers -> TIMER_SOFTIRQ; then the other tick work.
        if (st.expired[cur.cpu.id].length > 0) yield* raise_softirq_irqoff(cur, TIMER_SOFTIRQ);
        for (const h of st.tickHooks) yield* h(cur);
      }),
    });
    cpu.irqs.push(cpu.tick);
  }
  open_softirq(m, TIMER_SOFTIRQ, run_timer_softirq);
}

/** Make `cpu`'s local timer interrupt pending (a tick with work to do). */
export function tick_raise(cpu: Cpu): void {
  if (cpu.tick !== null) cpu.machine.sim.raise(cpu.tick);
}

function arm(m: Machine, timer: timer_list, cpu: Cpu, expires: number): void {
  timer.expires = expires;
  timer.pending = true;
  timer.cpu = cpu;
  const seq = ++timer.seq;
  const at = Math.max(expires * nsPerJiffy(m), m.sim.now());
  m.sim.timer(
    at,
    () => {
      if (timer.seq !== seq || !timer.pending) return;
      m.tick.expired[cpu.id].push(timer);
      tick_raise(cpu);
    },
    `timer:${timer.name}`,
  );
}

function detach(m: Machine, timer: timer_list): boolean {
  const was = timer.pending;
  if (was && timer.cpu !== null) {
    const list = m.tick.expired[timer.cpu.id];
    const i = list.indexOf(timer);
    if (i >= 0) list.splice(i, 1);
  }
  timer.pending = false;
  timer.seq++;
  return was;
}

/** mod_timer(timer, expires): (re)arm on this CPU; true if it was pending. */
export function* mod_timer(cur: Task, timer: timer_list, expires: number): KernelBody<boolean> {
  const m = cur.cpu.machine;
  yield cur.thread.write(timer.obj);
  const was = detach(m, timer);
  arm(m, timer, cur.cpu, expires);
  return was;
}

/** add_timer(timer): arm with the expiry already set in timer.expires. */
export function* add_timer(cur: Task, timer: timer_list): KernelBody<void> {
  yield* mod_timer(cur, timer, timer.expires);
}

/** add_timer_on(timer, cpu). */
export function* add_timer_on(cur: Task, timer: timer_list, cpu: number): KernelBody<void> {
  const m = cur.cpu.machine;
  yield cur.thread.write(timer.obj);
  detach(m, timer);
  arm(m, timer, m.cpu(cpu), timer.expires);
}

export function timer_pending(timer: timer_list): boolean {
  return timer.pending;
}

/** del_timer / timer_delete: disarm; true if it was pending. Does not wait for a running callback. */
export function* del_timer(cur: Task, timer: timer_list): KernelBody<boolean> {
  yield cur.thread.write(timer.obj);
  return detach(cur.cpu.machine, timer);
}
export const timer_delete = del_timer;

/**
 * del_timer_sync / timer_delete_sync: disarm and wait until the callback is not running on any
 * CPU. Spins (it does not sleep), so holding a lock the callback takes deadlocks, as upstream.
 */
export function* del_timer_sync(cur: Task, timer: timer_list): KernelBody<boolean> {
  const m = cur.cpu.machine;
  yield cur.thread.write(timer.obj);
  const was = detach(m, timer);
  if (timer.running !== null && timer.running !== cur.cpu) {
    const on = timer.running;
    cur.waitingFor = { kind: 'flag', what: `timer ${timer.name} callback on ${on}`, pendingOn: () => (timer.running ? [timer.running] : []) };
    yield cur.thread.spinUntil(() => timer.running === null, null, null, null, [timer.obj]);
    cur.waitingFor = null;
  }
  return was;
}
export const timer_delete_sync = del_timer_sync;

/** TIMER_SOFTIRQ: run this CPU's expired timers in expiry order (ties: arming order). */
function* run_timer_softirq(cur: Task): KernelBody<void> {
  const m = cur.cpu.machine;
  const list = m.tick.expired[cur.cpu.id];
  while (list.length > 0) {
    let k = 0;
    for (let i = 1; i < list.length; i++) if (list[i].expires < list[k].expires) k = i;
    const timer = list.splice(k, 1)[0];
    timer.pending = false;
    m.sim.also(timer.obj); // del_timer_sync's predicate reads `running`: declared on timer.obj
    timer.running = cur.cpu;
    yield cur.thread.write(timer.obj);
    cur.stack.push(`call_timer_fn`);
    cur.stack.push(timer.name);
    yield* timer.fn(cur, timer);
    cur.stack.length -= 2;
    m.sim.also(timer.obj);
    timer.running = null;
    yield cur.thread.write(timer.obj);
  }
}



