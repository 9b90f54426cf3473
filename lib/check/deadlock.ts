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
 *  - waiting for a resource with known owners (a driver's tags) -> the tasks holding it.
 * A cycle is a `deadlock` finding naming every participant; a hang without one is left to the
 * engine's `no_progress`. Checked at quiescence only: a cycle while other CPUs still run is found
 * when they stop (or hit the step budget).
 */
import type { Machine } from '../kernel/machine';
import { rcuStateIfUsed } from '../kernel/rcu';
import { Task } from '../kernel/task';
import { describeWait, formatStates, machineStates } from '../report/cpu-state';

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
  return [];
}

function site(n: Node): string {
  const s = n.task.stacks[n.depth] ?? [];
  return s.length ? s[s.length - 1] : (n.task.contexts[n.depth] ?? 'task');
}

function label(n: Node): string {
  const w = n.task.waits[n.depth];
  const what = w?.lock ? w.lock.lockClass : w?.holders ? w.what : (w?.kind ?? 'run');
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
        `irqsim: deadlock: a wait-for cycle of ${cycle.length} context${cycle.length > 1 ? 's' : ''}`,
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
        data: { cpuStates: machineStates(m), classes: [...new Set(cycle.map((n) => n.task.waits[n.depth]?.lock?.lockClass).filter((c): c is string => c !== undefined))].sort() },
      });
      return;
    }
  });
}
