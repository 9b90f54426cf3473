/**
 * Runtime deadlocks: when nothing can run, build a wait-for graph over contexts (a task body, or
 * an interrupt handler nested on it) and look for a cycle. Edges:
 *  - waiting for a spinlock or mutex -> the context that holds it; if that context is buried
 *    under a handler (the same CPU took an interrupt), -> the top of that task's stack, since the
 *    holder cannot run until the handler returns (so "a handler spins on a lock its own CPU
 *    holds" is a cycle of one);
 *  - spinning until an IPI is handled -> the context running on the target CPU, which has not
 *    taken it (IRQs off, or stuck itself);
 *  - waiting for a CPU -> the context running on it;
 *  - waiting in synchronize_rcu -> every reader the grace period still waits for;
 *  - waiting for a resource with known owners (a driver's tags) -> the tasks holding it;
 *  - flush_work / cancel_work_sync / flush_delayed_work -> the worker running the item (or the
 *    workers ahead of it); flush_workqueue -> the workers holding up its items in flight
 *    (lib/kernel/workqueue.ts work_holders); synchronize_irq -> the handler's CPU or its thread;
 *  - wait_for_completion* / wait_event* on an object annotated with its completer
 *    (lib/kernel/completer.ts) -> that task, or the worker running that work.
 * These are irqsim's own findings: upstream sees a flush cycle only as lockdep's
 * (work_completion) dependency and a completion cycle only as hung_task, so the text says it is
 * irqsim's and names the cycle, task -> what it waits for -> task.
 * A cycle is a `deadlock` finding naming every participant; a hang without one is left to the
 * engine's `no_progress`. Checked at quiescence only: a cycle while other CPUs still run is found
 * when they stop (or hit the step budget).
 */
import type { Machine } from '../kernel/machine';
import { completerTasks, completerWaitedBy } from '../kernel/completer';
import { rcuStateIfUsed } from '../kernel/rcu';
import { Task, type WaitInfo } from '../kernel/task';
import { describeWait, formatStates, machineStates } from '../kernel/show-state';

interface Node {
  task: Task;
  depth: number;
}

const key = (n: Node): string => `${n.task.pid}:${n.task.comm}:${n.depth}`;

function top(t: Task): Node {
  return { task: t, depth: t.depth };
}

function edges(n: Node): Node[] {
  const w = n.task.waits[n.depth] ?? null;
  if (w === null) return [];
  if (w.lock) return w.lock.waitsFor(n.task, n.depth).map((o) => top(o.task));
  if ((w.kind === 'ipi' || w.kind === 'flag') && w.pendingOn) return w.pendingOn().map((c) => top(c.running));
  if (w.holders) return w.holders().map(top);
  if (w.kind === 'cpu' && w.cpu) return w.cpu.curr ? [top(w.cpu.curr)] : [];
  // synchronize_rcu waits for the read-side sections the current grace period waits on
  if (w.kind === 'rcu') return rcuStateIfUsed(n.task.cpu.machine)?.gp?.waitingOn.map((r) => top(r.task)) ?? [];
  // a completion or wait queue whose completer is annotated
  if (w.kind === 'completion' || w.kind === 'wait_queue') {
    const e = completerWaitedBy(n.task.cpu.machine, n.task);
    if (e !== null) return completerTasks(e).map(top);
  }
  return [];
}

/** The lockdep map a flush wait stands for ("(work_completion)(fn)", "(wq_completion)wq"): --confirm matches it. */
function flushMap(w: WaitInfo): string | null {
  if (w.kind !== 'work') return null;
  const m = /^flush_workqueue\((.*)\)$/.exec(w.what);
  return m ? `(wq_completion)${m[1]}` : `(work_completion)(${w.what})`;
}

/** How a context waits, as the cycle line shows it: "mutex_lock(dev_mutex)", "flush_work(foo_fn)". */
function via(n: Node): string {
  const w = n.task.waits[n.depth];
  if (!w) return 'runnable';
  if (w.lock) return `${w.lock.kind} ${w.lock.lockClass}`;
  if (w.kind === 'work') return /^flush_workqueue\(/.test(w.what) ? w.what : `flush_work(${w.what})`;
  const irq = /^irq (\d+) thread$/.exec(w.what);
  if (irq) return `synchronize_irq(${irq[1]})`; // desc->wait_for_threads
  if (w.kind === 'completion' || w.kind === 'wait_queue') {
    const e = completerWaitedBy(n.task.cpu.machine, n.task);
    const call = w.kind === 'completion' ? 'wait_for_completion' : 'wait_event';
    return `${call}(${w.what})${e ? ` completed by ${e.label}` : ''}`;
  }
  if (w.kind === 'ipi') return `${w.what} (csd_lock_wait)`;
  return `${w.kind} ${w.what}`;
}

const who = (n: Node): string => `${n.task.comm}/${n.task.pid}${n.depth > 0 ? `[${n.task.contexts[n.depth]}]` : ''}`;

/** "a/1 → mutex m → b/2 → flush_work(f) → a/1". */
export function cycleLine(cycle: Node[]): string {
  return [...cycle.map((n) => `${who(n)} → ${via(n)}`), who(cycle[0])].join(' → ');
}

function site(n: Node): string {
  const s = n.task.stacks[n.depth] ?? [];
  return s.length ? s[s.length - 1] : (n.task.contexts[n.depth] ?? 'task');
}

function label(n: Node): string {
  const w = n.task.waits[n.depth];
  const what = w?.lock ? w.lock.lockClass : w?.holders || w?.kind === 'completion' || w?.kind === 'wait_queue' ? w.what : (w?.kind ?? 'run');
  return `${what}@${site(n)}`;
}

/** Depth-first search for a wait-for cycle reachable from `start`. */
function findCycle(start: Node, done: Set<string>): Node[] | null {
  const onPath = new Map<string, number>();
  const path: Node[] = [];
  const dfs = (n: Node): Node[] | null => {
    const k = key(n);
    const at = onPath.get(k);
    if (at !== undefined) return path.slice(at);
    if (done.has(k)) return null;
    onPath.set(k, path.length);
    path.push(n);
    for (const e of edges(n)) {
      const c = dfs(e);
      if (c !== null) return c;
    }
    path.pop();
    onPath.delete(k);
    done.add(k);
    return null;
  };
  return dfs(start);
}

export function installDeadlockCheck(m: Machine): void {
  m.sim.onQuiescent((stuck) => {
    const start: Node[] = [];
    for (const th of stuck) if (th.local instanceof Task) start.push(top(th.local));
    const done = new Set<string>();
    for (const s of start) {
      const cycle = findCycle(s, done);
      if (cycle === null) continue;
      const parts = cycle.map((n) => {
        const how = describeWait(n.task, n.depth) ?? 'runnable';
        return `  CPU${n.task.cpu.id} ${n.task.comm}/${n.task.pid} in ${n.task.contexts[n.depth] ?? 'task'} (irqs ${n.depth === n.task.depth && n.task.irqs_disabled ? 'off' : 'on'}): ${how}`;
      });
      const text = [
        `irqsim: deadlock: a wait-for cycle of ${cycle.length} context${cycle.length > 1 ? 's' : ''} (irqsim's own check; the kernel reports none of this itself)`,
        `  ${cycleLine(cycle)}`,
        ...parts,
        '',
        'machine state:',
        formatStates(machineStates(m)),
      ].join('\n');
      m.sim.report({
        kind: 'deadlock',
        fingerprint: `deadlock:${cycle.map(label).sort().join('+')}`,
        headline: `deadlock: ${cycle.map((n) => `${n.task.comm}[${n.task.contexts[n.depth] ?? 'task'}] waits for ${label(n)}`).join(', ')}`,
        text,
        fatal: true,
        // the lock classes the cycle waits on: what --confirm matches lockdep predictions against
        data: {
          cpuStates: machineStates(m),
          cycle: cycleLine(cycle),
          classes: [...new Set(cycle.map((n) => { const w = n.task.waits[n.depth]; return w?.lock?.lockClass ?? (w ? flushMap(w) : null); }).filter((c): c is string => c !== null && c !== undefined))].sort(),
        },
      });
      return;
    }
  });
}

/**
 * The lock classes (and flush maps) the given tasks hold or wait on: what --confirm matches a
 * lockdep prediction against when a run ends in hung_task or no_progress instead of a cycle.
 */
export function waitClasses(tasks: readonly Task[]): string[] {
  const out = new Set<string>();
  for (const t of tasks) {
    if (t.state === 'TASK_DEAD') continue;
    for (const h of t.held) out.add(h.lock.lockClass);
    for (const w of t.waits) {
      if (!w) continue;
      const c = w.lock?.lockClass ?? flushMap(w);
      if (c) out.add(c);
    }
  }
  return [...out].sort();
}
