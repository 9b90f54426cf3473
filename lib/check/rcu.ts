/**
 * The `rcu` detector. Subkind `use_after_free`, in four forms (the fingerprint names the form):
 *  - freed_under_reader: an object is freed while another context's read-side section that obtained
 *    it with rcu_dereference is still active, reported at the free with the reader's state. It
 *    fires whether or not the reader touches the object again, so it predicts the KASAN report.
 *  - kasan: a READ_ONCE / WRITE_ONCE of a freed object (and a second kfree: double-free), in
 *    KASAN's words, with a note on how RCU was (mis)used. As with KASAN's default (no
 *    kasan_multi_shot) the log prints the first report only; findings count every one.
 *  - stale_pointer: a pointer from rcu_dereference used after the section that obtained it ended
 *    (irqsim's check, worded as lockdep-RCU); rcu_pointer_handoff() declares other protection.
 *  - unprotected: rcu_dereference outside any read-side section (lockdep-RCU's "suspicious
 *    rcu_dereference_check() usage", with lockdep on; once per site in the log).
 * Subkind `stall`: a grace period still waiting for a read-side section after the RCU CPU stall
 * timeout (CONFIG_RCU_CPU_STALL_TIMEOUT, 21 s): "rcu: INFO: rcu_preempt detected stalls on
 * CPUs/tasks:". A liveness finding: only when rcuStallChecks(m) says liveness means something.
 * Every finding is non-fatal: the kernel goes on after KASAN and stall reports, and so does the run.
 * Fingerprints: rcu:use_after_free:<form>:<object type>@<site>, rcu:stall:rcu_read_lock@<sites>.
 *
 * A KASAN report where RCU plays no part (the accessing context never obtained the object with
 * rcu_dereference, and it was freed by plain kfree, never queued with call_rcu / kfree_rcu) is
 * its own kind, `use_after_free` (subkinds kasan, double_free), in KASAN's words only:
 * mm/kasan/report.c (v6.12) print_report: the "BUG: KASAN: <bug type> in <ip>" line, the access
 * line, dump_stack, then the object's alloc / free stacks (print_track) and its address.
 * Fingerprints: use_after_free:<form>:<object type>@<site>.
 */
import type { Machine } from '../kernel/machine';
import { isKObject, type KObject, type ObjectEvent } from '../kernel/object';
import { rcuCallbackRunning, rcuStateIfUsed, type GracePeriod, type RcuReader } from '../kernel/rcu';
import type { Task } from '../kernel/task';
import { nsPerJiffy } from '../kernel/timer';
import { NSEC_PER_SEC } from '../kernel/log';
import { machineStates } from '../kernel/show-state';
import { callTrace } from '../kernel/show-state';

/** CONFIG_RCU_CPU_STALL_TIMEOUT: seconds a grace period may wait before the stall warning. */
export const RCU_CPU_STALL_TIMEOUT_S = 21;

/**
 * Whether stall checks run: only where liveness findings mean something (timed mode, or a fair
 * strategy); pure interleaving may starve a reader on purpose.
 */
export function rcuStallChecks(m: Machine): boolean {
  return m.sim.liveness;
}

const KASAN_RULE = '==================================================================';

function secs(ns: number): string {
  return (ns / NSEC_PER_SEC).toFixed(6);
}

function frames(stack: readonly string[], indent = ' '): string {
  return stack.map((f) => `${indent}${f}`).join('\n');
}

function trace(stack: readonly string[], ctx: 'TASK' | 'IRQ'): string {
  return ['Call Trace:', ` <${ctx}>`, frames(stack), ` </${ctx}>`].join('\n');
}

function eventText(what: string, e: ObjectEvent, top: string[]): string {
  return [`${what} by task ${e.pid} on cpu ${e.cpu} at ${secs(e.time)}s:`, frames([...top, ...e.stack])].join('\n');
}

function who(t: Task): string {
  return `${t.comm}/${t.pid}`;
}

/** A reader's state now: where its context runs and what it is doing. */
function readerText(r: RcuReader): string {
  const t = r.task;
  const stack = [...(t.stacks[r.depth] ?? [])].reverse();
  const state = r.depth === t.depth && t.cpu.curr === t && t.state === 'TASK_RUNNING' ? `running on CPU${t.cpu.id}` : `${t.state === 'TASK_RUNNING' ? 'preempted, waiting for' : 'sleeping, last on'} CPU${t.cpu.id}`;
  return [
    `  ${who(t)} in ${r.context}, ${state}: ${r.flavor}_read_lock() at ${r.site}, section #${r.id} begun at ${secs(r.start)}s`,
    ...(stack.length ? [`  its stack now: ${stack.join(' <- ')}`] : []),
  ].join('\n');
}

function gpText(m: Machine): string {
  const st = rcuStateIfUsed(m);
  if (st === undefined) return 'no grace period requested';
  const gp = st.gp;
  return `grace periods completed: ${st.completed}; ${gp ? `#${gp.id} in progress since ${secs(gp.start)}s, waiting for ${gp.waitingOn.length} reader(s)` : 'none in progress'}`;
}

export function installRcuCheck(m: Machine): void {
  const sim = m.sim;
  const report = (cur: Task, form: string, cls: string, site: string, headline: string, text: string, logged = true, rcu = true): void => {
    if (logged) m.log.printk(cur.cpu.id, text);
    sim.report({
      kind: rcu ? 'rcu' : 'use_after_free',
      subkind: rcu ? 'use_after_free' : form,
      fingerprint: rcu ? `rcu:use_after_free:${form}:${cls}@${site}` : `use_after_free:${form}:${cls}@${site}`,
      headline,
      text,
      logged,
      data: { cpuStates: machineStates(m) },
    });
  };

  /** How RCU was used for `obj`, as seen from `cur` accessing it. */
  const rcuNote = (cur: Task, obj: KObject<object>): string => {
    const st = rcuStateIfUsed(m);
    const r = st?.heldBy(cur, obj) ?? null;
    const freed = obj.freedBy!;
    const after = freed.how === 'kfree' ? 'by kfree() with no grace period after it was unpublished' : `by ${freed.how} after a grace period`;
    if (r === null) return `irqsim: RCU: ${obj} was freed ${after}; this context did not obtain it with rcu_dereference().`;
    if (r.active) {
      return freed.how === 'kfree'
        ? `irqsim: RCU: this reader obtained ${obj} with rcu_dereference() in its read-side section #${r.id} (rcu_read_lock at ${r.site}), which is still active: the updater freed it ${after} instead of waiting for readers (synchronize_rcu, kfree_rcu or call_rcu).`
        : `irqsim: RCU: this reader obtained ${obj} with rcu_dereference() in section #${r.id}, begun after the grace period that preceded the free had started: the object was still reachable when it was queued for freeing.`;
    }
    return `irqsim: RCU: this context obtained ${obj} with rcu_dereference() in section #${r.id} (rcu_read_lock at ${r.site}), which ended at ${secs(r.end)}s; it was freed ${after} and used after rcu_read_unlock().`;
  };

  /** Whether RCU plays a part in this access to a freed object (else: a plain use-after-free). */
  const rcuInvolved = (cur: Task, obj: KObject<object>): boolean =>
    (rcuStateIfUsed(m)?.heldBy(cur, obj) ?? null) !== null || obj.rcuQueuedBy !== null || (obj.freedBy !== null && obj.freedBy.how !== 'kfree');

  const kasan = (cur: Task, obj: KObject<object>, how: 'read' | 'write'): void => {
    const rcu = rcuInvolved(cur, obj);
    const site = cur.site;
    const field = obj.accessField ?? '';
    const off = obj.offsetOf(field as never);
    const region = obj.size;
    const freed = obj.freedBy!;
    const text = [
      KASAN_RULE,
      `BUG: KASAN: slab-use-after-free in ${site}`,
      `${how === 'read' ? 'Read' : 'Write'} of size 8 at addr ${obj.address(off)} by task ${who(cur)}`,
      '',
      `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
      callTrace(cur, ['dump_stack_lvl', 'print_report', 'kasan_report']),
      '',
      eventText('Allocated', obj.allocatedBy, ['kzalloc']),
      '',
      eventText('Freed', freed, ['kfree']),
      ...(obj.rcuQueuedBy ? ['', 'Last potentially related work creation:', frames(['kasan_record_aux_stack', 'call_rcu', ...obj.rcuQueuedBy.stack])] : []),
      '',
      `The buggy address belongs to the object at ${obj.address()}`,
      ` which belongs to the cache ${obj.cache} of size ${region}`,
      `The buggy address is located ${off} bytes inside of`,
      ` freed ${region}-byte region [${obj.address()}, ${obj.address(region)})`,
      KASAN_RULE,
      ...(rcu ? [rcuNote(cur, obj)] : []),
    ].join('\n');
    report(
      cur,
      'kasan',
      obj.name,
      site,
      `BUG: KASAN: slab-use-after-free in ${site}: ${how} of ${obj.name}->${field} by ${who(cur)} on CPU${cur.cpu.id} after ${freed.how} by ${freed.task}/${freed.pid}`,
      text,
      m.log.firstTime('kasan'),
      rcu,
    );
  };

  const doubleFree = (cur: Task, obj: KObject<object>, how: string): void => {
    const site = cur.site;
    const first = obj.freedBy!;
    const text = [
      KASAN_RULE,
      `BUG: KASAN: double-free in ${site}`,
      `Free of addr ${obj.address()} by task ${who(cur)}`,
      '',
      `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
      callTrace(cur, ['dump_stack_lvl', 'print_report', 'kasan_report_invalid_free', how === 'kfree_rcu' ? 'kfree' : how]),
      '',
      eventText('Allocated', obj.allocatedBy, ['kzalloc']),
      '',
      eventText('Freed', first, ['kfree']),
      '',
      `The buggy address belongs to the object at ${obj.address()}`,
      ` which belongs to the cache ${obj.cache} of size ${obj.size}`,
      KASAN_RULE,
      `irqsim: ${obj} freed twice: first by ${first.how} in ${first.stack[0] ?? first.context}, now by ${how} in ${site}.`,
    ].join('\n');
    const rcu = how !== 'kfree' || first.how !== 'kfree' || obj.rcuQueuedBy !== null;
    report(cur, 'double_free', obj.name, site, `BUG: KASAN: double-free in ${site}: ${obj.name} freed by ${how} after ${first.how} by ${first.task}/${first.pid}`, text, m.log.firstTime('kasan'), rcu);
  };

  const freedUnderReader = (cur: Task, obj: KObject<object>, how: string, readers: RcuReader[]): void => {
    const site = cur.site;
    const r = readers[0];
    const cb = rcuCallbackRunning(cur);
    const why =
      cb === null
        ? `without waiting for an RCU grace period`
        : `by an RCU callback (queued by ${cb.queuedBy}) after grace period #${cb.gp}, which did not cover the reader's section: it began after that grace period started, so ${obj.name} was still reachable when it was queued`;
    const text = [
      '=============================================',
      'WARNING: RCU: object freed while a reader may still hold it',
      '---------------------------------------------',
      `${site}: ${how}() of ${obj} (${obj.cache}, ${obj.address()}) by ${who(cur)} on CPU${cur.cpu.id} ${why},`,
      `while ${readers.length === 1 ? 'a read-side critical section that' : `${readers.length} read-side critical sections that`} obtained it with rcu_dereference() ${readers.length === 1 ? 'is' : 'are'} still active:`,
      ...readers.map(readerText),
      '',
      'other info that might help us debug this:',
      '',
      gpText(m),
      '',
      'stack backtrace:',
      `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
      callTrace(cur, [how === 'kfree_rcu' ? 'kfree' : how]),
      `irqsim: the reader may use ${obj} until its rcu_read_unlock(); unpublish the pointer, then wait with synchronize_rcu() before kfree(), or free with kfree_rcu()/call_rcu().`,
    ].join('\n');
    report(
      cur,
      'freed_under_reader',
      obj.name,
      site,
      `rcu: ${obj.name} freed by ${how} in ${site} ${cb === null ? 'without a grace period ' : 'after a grace period that missed the reader '}while ${who(r.task)} (CPU${r.task.cpu.id}, ${r.context}) holds it from rcu_dereference in ${r.site}`,
      text,
    );
  };

  /** lockdep-RCU's splat (lockdep_rcu_suspicious); the log prints it once per site, as RCU_LOCKDEP_WARN does. */
  const suspicious = (cur: Task, form: string, cls: string, line: string, headline: string, extra: string[]): void => {
    const site = cur.site;
    const text = [
      '=============================',
      'WARNING: suspicious RCU usage',
      '-----------------------------',
      `${site}: ${line}`,
      '',
      'other info that might help us debug this:',
      '',
      'rcu_scheduler_active = 2, debug_locks = 1',
      `RCU nest depth: ${cur.rcu_read_depth}`,
      ...extra,
      '',
      'stack backtrace:',
      `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
      callTrace(cur, ['dump_stack_lvl', 'lockdep_rcu_suspicious']),
    ].join('\n');
    report(cur, form, cls, site, headline, text, m.log.firstTime(`rcu:${form}@${site}`));
  };

  m.addHooks({
    objectFree(cur, obj, how) {
      if (!isKObject(obj)) return;
      if (obj.frees > 1) return doubleFree(cur, obj, how);
      const st = rcuStateIfUsed(m);
      if (st === undefined) return;
      const readers = st.active.filter((r) => !(r.task === cur && r.depth === cur.depth) && r.derefs.includes(obj));
      if (readers.length > 0) freedUnderReader(cur, obj, how, readers);
    },

    objectAccess(cur, obj, how) {
      if (!isKObject(obj)) return;
      if (obj.freed) return kasan(cur, obj, how);
      const r = rcuStateIfUsed(m)?.heldBy(cur, obj) ?? null;
      if (r === null || r.active) return;
      const field = obj.accessField ?? '';
      suspicious(
        cur,
        'stale_pointer',
        obj.name,
        `${obj.name}->${field} ${how} through a pointer from rcu_dereference() outside the read-side critical section that obtained it!`,
        `suspicious RCU usage: ${obj.name}->${field} ${how} in ${cur.site} by ${who(cur)} after rcu_read_unlock() ended the section that obtained it (rcu_read_lock at ${r.site})`,
        [
          `${obj} obtained with rcu_dereference() in section #${r.id} (rcu_read_lock at ${r.site}), ended by rcu_read_unlock() at ${secs(r.end)}s`,
          `irqsim: after rcu_read_unlock() nothing keeps ${obj.name} alive: an updater may free it at any time. Use it inside the section, or take a reference there and say so with rcu_pointer_handoff().`,
        ],
      );
    },

    rcuDereference(cur, obj) {
      if (!m.lockdep) return;
      const st = rcuStateIfUsed(m);
      if (st !== undefined && st.activeReader(cur) !== null) return;
      suspicious(
        cur,
        'unprotected',
        'rcu_pointer',
        'suspicious rcu_dereference_check() usage!',
        `suspicious RCU usage: rcu_dereference() outside a read-side critical section in ${cur.site} by ${who(cur)} (${cur.context})${obj === null ? ', pointer NULL this time' : ''}`,
        ['no read-side critical section in this context (rcu_read_lock_held() is false)'],
      );
    },

    rcuGracePeriod(event, id) {
      if (event !== 'start' || !rcuStallChecks(m)) return;
      const gp = rcuStateIfUsed(m)?.gp ?? null;
      if (gp === null || gp.id !== id || gp.blockers.length === 0) return;
      // One-shot and a daemon: it never keeps a run alive, and a run that ended needs no check.
      sim.after(RCU_CPU_STALL_TIMEOUT_S * NSEC_PER_SEC, () => stallCheck(gp), `rcu_stall_check:gp${id}`, { daemon: true });
    },
  });

  const stallCheck = (gp: GracePeriod): void => {
    if (gp.end >= 0) return;
    const stalled = gp.waitingOn;
    if (stalled.length === 0) return;
    const st = rcuStateIfUsed(m)!;
    const n = m.cpus.length;
    const ticks = Math.floor((sim.now() - gp.start) / nsPerJiffy(m));
    const onCpu = (r: RcuReader): boolean => r.flavor !== 'rcu' || r.depth > 0 || (r.task.cpu.curr === r.task && r.task.state === 'TASK_RUNNING');
    const cpus = stalled.filter(onCpu);
    const tasks = stalled.filter((r) => !onCpu(r));
    const stalledCpus = new Set(cpus.map((r) => r.task.cpu.id));
    let by = 0;
    while (by < n - 1 && stalledCpus.has(by)) by++;
    const q = st.cbs.reduce((a, l) => a + l.length, 0);
    const lines = ['rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:'];
    for (const r of cpus) lines.push(`rcu: \t${r.task.cpu.id}-....: (${ticks} ticks this GP)`);
    if (tasks.length) lines.push(`rcu: \tTasks blocked on level-0 rcu_node (CPUs 0-${n - 1}): ${tasks.map((r) => `P${r.task.pid}`).join(' ')}`);
    lines.push(`rcu: \t(detected by ${by}, t=${ticks} jiffies, g=${gp.id * 4 + 1}, q=${q} ncpus=${n})`);
    for (const r of cpus) {
      const t = r.task;
      lines.push(`Sending NMI from CPU ${by} to CPUs ${t.cpu.id}:`, `NMI backtrace for cpu ${t.cpu.id}`);
      lines.push(`CPU: ${t.cpu.id} PID: ${t.pid} Comm: ${t.comm} (${t.contexts[t.depth] ?? 'task'})`);
      lines.push(trace([...(t.stacks[t.depth] ?? [])].reverse(), t.depth > 0 ? 'IRQ' : 'TASK'));
    }
    for (const r of tasks) {
      const t = r.task;
      lines.push(`task:${t.comm} state:${t.state === 'TASK_RUNNING' ? 'R' : 'D'} pid:${t.pid}`);
      lines.push(trace(['__schedule', t.state === 'TASK_RUNNING' ? 'preempt_schedule' : 'schedule', ...[...(t.stacks[0] ?? [])].reverse()], 'TASK'));
    }
    lines.push(
      `irqsim: grace period #${gp.id} (requested by ${gp.by}), started at ${secs(gp.start)}s, has waited ${secs(sim.now() - gp.start)}s (CONFIG_RCU_CPU_STALL_TIMEOUT=${RCU_CPU_STALL_TIMEOUT_S}) for:`,
      ...stalled.map(readerText),
    );
    const text = lines.join('\n');
    const sites = [...new Set(stalled.map((r) => r.site))].sort().join('+');
    m.log.printk(by, text);
    sim.report({
      kind: 'rcu',
      subkind: 'stall',
      fingerprint: `rcu:stall:rcu_read_lock@${sites}`,
      headline: `rcu: INFO: rcu_preempt detected stalls: grace period #${gp.id} waited ${RCU_CPU_STALL_TIMEOUT_S}s for ${stalled.map((r) => `${who(r.task)} (rcu_read_lock at ${r.site})`).join(', ')}`,
      text,
      data: { cpuStates: machineStates(m) },
    });
  };
}
