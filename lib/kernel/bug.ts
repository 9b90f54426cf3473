/**
 * WARN_ON / WARN_ON_ONCE / WARN / BUG_ON and lockdep_assert_held: a scenario's own checks on
 * simulated state, reported as `assertion` findings with the kernel's text. WARN_ON returns its
 * condition and the run goes on (subkind `warn`; WARN_ON_ONCE prints once per site, the finding
 * still counts every hit); BUG_ON ends the run, as the kernel's oops would end that task.
 *
 * These are plain functions, not generators: they take no step, and `if (WARN_ON(cur, x))`
 * reads as the kernel's code does.
 */
import type { Lock } from './lock';
import { callTrace } from './show-state';
import type { Task } from './task';

function warn(cur: Task, what: string, once: boolean): void {
  const m = cur.cpu.machine;
  const site = cur.site;
  const text = [`WARNING: CPU: ${cur.cpu.id} PID: ${cur.pid} at ${site}: ${what}`, `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`, callTrace(cur)].join('\n');
  const logged = once ? m.log.firstTime(`warn:${site}:${what}`) : true;
  if (logged) m.log.printk(cur.cpu.id, text);
  m.sim.report({ kind: 'assertion', subkind: 'warn', fingerprint: `warn:${what}@${site}`, headline: `WARNING at ${site}: ${what}`, text, logged });
}

/** WARN_ON(cond): a warning with a backtrace every time `cond` holds; returns `cond`. */
export function WARN_ON(cur: Task, cond: boolean, what = 'WARN_ON'): boolean {
  if (cond) warn(cur, what, false);
  return cond;
}

/** WARN_ON_ONCE(cond): printed the first time per site; every hit still counts. */
export function WARN_ON_ONCE(cur: Task, cond: boolean, what = 'WARN_ON_ONCE'): boolean {
  if (cond) warn(cur, what, true);
  return cond;
}

/** WARN(cond, fmt): WARN_ON with a message. */
export function WARN(cur: Task, cond: boolean, message: string): boolean {
  return WARN_ON(cur, cond, message);
}

/** BUG_ON(cond): "kernel BUG at <site>!" and the run ends (a fatal assertion). */
export function BUG_ON(cur: Task, cond: boolean, what = 'BUG_ON'): void {
  if (!cond) return;
  const m = cur.cpu.machine;
  const text = [`kernel BUG at ${cur.site}!`, `invalid opcode: 0000 [#1] SMP`, `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`, callTrace(cur)].join('\n');
  m.log.printk(cur.cpu.id, text);
  m.sim.report({ kind: 'assertion', subkind: 'bug', fingerprint: `bug:${what}@${cur.site}`, headline: `kernel BUG at ${cur.site}: ${what}`, text, fatal: true });
}

/** lockdep_assert_held(lock): with lockdep on, warn unless the running context's task holds it. */
export function lockdep_assert_held(cur: Task, lock: Lock): void {
  if (!cur.cpu.machine.lockdep) return;
  WARN_ON(cur, !cur.held.some((h) => h.lock === lock), `lockdep_assert_held(${lock.lockClass})`);
}
