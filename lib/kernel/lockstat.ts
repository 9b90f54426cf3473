/**
 * CONFIG_LOCK_STAT and the irqsoff tracer, as run metrics (opt-in machine options `lockStat`
 * and `irqsoffTracer`):
 *
 *   lock.<class>.acquisitions / contentions / wait_ns / hold_ns, and the longest wait and hold
 *   (wait_max_ns, hold_max_ns as peaks) — /proc/lock_stat's columns per lock class;
 *   irqsoff.cpu<N>.ns and irqsoff.cpu<N>.max_ns — total and longest IRQs-off span per CPU,
 *   hardirq handlers included (they run with IRQs off), as the irqsoff tracer measures.
 *
 * Times are the simulation's virtual ns. Lockdep maps (fs_reclaim, work maps) are not locks
 * anyone waits on and are left out. Spans still open when a run ends are not counted.
 */
import type { Thread } from '../../scheduler';
import type { Lock } from './lock';
import type { Machine } from './machine';
import type { Task } from './task';

interface ClassNames {
  acq: string;
  cont: string;
  wait: string;
  waitMax: string;
  hold: string;
  holdMax: string;
}

export function lockstat_init(m: Machine): void {
  const names = new Map<string, ClassNames>();
  const namesOf = (lock: Lock): ClassNames => {
    let n = names.get(lock.lockClass);
    if (n === undefined) {
      const c = `lock.${lock.lockClass}`;
      n = { acq: `${c}.acquisitions`, cont: `${c}.contentions`, wait: `${c}.wait_ns`, waitMax: `${c}.wait_max_ns`, hold: `${c}.hold_ns`, holdMax: `${c}.hold_max_ns` };
      names.set(lock.lockClass, n);
    }
    return n;
  };
  // When each context began trying for a lock: per task, by nesting depth.
  const attempts = new WeakMap<Task, number[]>();
  const sim = m.sim;
  m.addHooks({
    lockAcquire(cur, lock) {
      if (lock.kind === 'lockdep_map') return;
      let a = attempts.get(cur);
      if (a === undefined) attempts.set(cur, (a = []));
      a[cur.depth] = cur.thread.clock;
    },
    lockAcquired(cur, lock) {
      if (lock.kind === 'lockdep_map') return;
      const n = namesOf(lock);
      sim.count(n.acq, 1);
      const a = attempts.get(cur);
      const t0 = a?.[cur.depth];
      if (t0 === undefined || t0 < 0) return;
      a![cur.depth] = -1;
      const wait = cur.thread.clock - t0;
      if (wait > 0) {
        sim.count(n.cont, 1);
        sim.count(n.wait, wait);
        sim.peak(n.waitMax, wait);
      }
    },
    lockRelease(cur, lock) {
      if (lock.kind === 'lockdep_map') return;
      const held = cur.held;
      for (let i = held.length - 1; i >= 0; i--) {
        const h = held[i];
        if (h.lock !== lock) continue;
        if (h.since === undefined) return;
        const hold = cur.thread.clock - h.since;
        const n = namesOf(lock);
        sim.count(n.hold, hold);
        sim.peak(n.holdMax, hold);
        return;
      }
    },
  });
}

export function irqsoff_tracer_init(m: Machine): void {
  const total = m.cpus.map((c) => `irqsoff.cpu${c.id}.ns`);
  const max = m.cpus.map((c) => `irqsoff.cpu${c.id}.max_ns`);
  const sim = m.sim;
  sim.onMaskedSpan = (t: Thread, ns: number) => {
    const task = t.local as Task | undefined;
    if (task === undefined || ns <= 0) return;
    const id = task.cpu.id;
    sim.count(total[id], ns);
    sim.peak(max[id], ns);
  };
}
