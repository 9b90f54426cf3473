/**
 * Cross-CPU function calls: smp_call_function_single / _many and on_each_cpu, with and without
 * wait. The caller queues a call on each target and raises that CPU's IPI; the target runs the
 * function in its IPI handler (hardirq context) and marks the call done; with wait the caller
 * spins until every call is done (csd_lock_wait), with interrupts as they were, so two CPUs
 * doing this with IRQs off wait for each other forever.
 */
import type { InterruptSource } from '../../scheduler';
import type { Cpu } from './cpu';
import { hardirqEntry } from './irq';
import { local_irq_restore, local_irq_save } from './irqflags';
import type { KernelBody, Machine } from './machine';
import type { Task } from './task';

export type SmpFn = (cur: Task) => KernelBody;

export interface Csd {
  fn: SmpFn;
  done: boolean;
  cpu: Cpu;
}

/**
 * Each CPU's call_single_queue as a shared object: the handler marks a call done inside a step
 * that writes it, and csd_lock_wait's predicate declares it as what it reads (DPOR footprint).
 */
const csdObjs = new WeakMap<Cpu, number>();

function csdObj(cpu: Cpu): number {
  const o = csdObjs.get(cpu);
  if (o === undefined) throw new Error(`${cpu} has no IPI line (smp_init not run)`);
  return o;
}

/** The call-function IPI line of a CPU and its queue of pending calls. */
function ipiOf(cpu: Cpu): { ipi: InterruptSource; pending: Csd[] } {
  if (cpu.ipi === null) throw new Error(`${cpu} has no IPI line (smp_init not run)`);
  return { ipi: cpu.ipi, pending: cpu.csdQueue };
}

/** Create the call-function IPI line of every CPU (done by the Machine at boot). */
export function smp_init(m: Machine): void {
  for (const cpu of m.cpus) {
    const pending = cpu.csdQueue;
    const obj = m.sim.object(`csd/${cpu.id}`);
    csdObjs.set(cpu, obj);
    cpu.ipi = m.sim.interruptSource({
      name: `IPI/${cpu.id}`,
      target: cpu.running.thread,
      handler: hardirqEntry('call_function_ipi', function* (cur: Task) {
        while (pending.length > 0) {
          const csd = pending.shift()!;
          yield* csd.fn(cur);
          m.sim.also(obj); // csd_unlock: the waiter's predicate reads this
          csd.done = true;
        }
      }),
    });
    cpu.irqs.push(cpu.ipi);
  }
}

function* callOn(cur: Task, targets: Cpu[], fn: SmpFn, wait: boolean): KernelBody<void> {
  const m = cur.cpu.machine;
  const csds: Csd[] = [];
  for (const c of targets) {
    const q = ipiOf(c);
    const csd = { fn, done: false, cpu: c };
    q.pending.push(csd);
    csds.push(csd);
    m.sim.raise(q.ipi);
  }
  yield cur.thread.point(); // the IPIs are sent
  if (!wait || csds.length === 0) return;
  cur.waitingFor = {
    kind: 'ipi',
    what: `IPI to ${targets.map((c) => `${c}`).join(',')}`,
    pendingOn: () => csds.filter((c) => !c.done).map((c) => c.cpu),
  };
  // csd_lock_wait reads only the done flags of its calls: declared per target CPU's queue.
  yield cur.thread.spinUntil(() => csds.every((c) => c.done), null, null, null, csds.map((c) => csdObj(c.cpu)));
  cur.waitingFor = null;
}

/** smp_call_function_single(cpu, func, info, wait). */
export function* smp_call_function_single(cur: Task, cpu: number, fn: SmpFn, wait: boolean): KernelBody<void> {
  const m = cur.cpu.machine;
  const target = m.cpu(cpu);
  m.emit('crossCall', cur, 'single', [target], wait);
  if (target === cur.cpu) {
    const flags = yield* local_irq_save(cur);
    yield* fn(cur);
    yield* local_irq_restore(cur, flags);
    return;
  }
  yield* callOn(cur, [target], fn, wait);
}

/** smp_call_function_many(mask, func, info, wait): every CPU in `cpus` but this one. */
export function* smp_call_function_many(cur: Task, cpus: number[], fn: SmpFn, wait: boolean): KernelBody<void> {
  const m = cur.cpu.machine;
  const targets = cpus.map((i) => m.cpu(i)).filter((c) => c !== cur.cpu);
  m.emit('crossCall', cur, 'many', targets, wait);
  yield* callOn(cur, targets, fn, wait);
}

/** on_each_cpu(func, info, wait): locally with IRQs off, and on every other CPU by IPI. */
export function* on_each_cpu(cur: Task, fn: SmpFn, wait: boolean): KernelBody<void> {
  const m = cur.cpu.machine;
  const others = m.cpus.filter((c) => c !== cur.cpu);
  m.emit('crossCall', cur, 'each', others, wait);
  yield* callOn(cur, others, fn, wait);
  const flags = yield* local_irq_save(cur);
  yield* fn(cur);
  yield* local_irq_restore(cur, flags);
}
