/**
 * Hunt coverage from the kernel model's hooks (an observer, not a detector: it reports nothing).
 * Per run it records, through the engine's coverage channel:
 *  - `lockorder:<outer>-><inner>`: a lock class taken while another is held in the same context
 *    (task body, or one handler nesting), named as lockdep names classes (`name/<subclass>` for
 *    the `_nested` annotations); a trylock is no inner lock, as lockdep records no dependency
 *    into one;
 *  - `irqheld:<irq>@<classes>`: a hardirq entered while the interrupted contexts hold these
 *    lock classes (sorted, joined by '+'; '-' for none);
 *  - the interleaving class: which context took each lock class the n-th time, for every n.
 *    Two schedules in which every lock class is taken by the same tasks in the same order fall
 *    in one class, whatever happened in between.
 * Lock-order pairs are kept as numbers in a per-run set, so a string is built only for a pair
 * new in this run.
 */
import { fnv1a, mix, type Engine } from '../../scheduler';
import type { KernelHooks } from '../kernel/hooks';
import type { Lock } from '../kernel/lock';
import type { Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';

/** lockdep's class name for a hold taken with `how` (`spin_lock_nested/1` -> `name/1`). */
function className(lock: Lock, how: string): string {
  const i = how.lastIndexOf('/');
  const sub = i < 0 ? 0 : Number(how.slice(i + 1)) || 0;
  return sub === 0 ? lock.lockClass : `${lock.lockClass}/${sub}`;
}

/** Pair keys: outer * 2^26 + inner stays an exact integer for any class count a run can have. */
const PAIR = 2 ** 26;

/** One run's observer: the hooks are its methods. */
class CoverageObserver implements KernelHooks {
  /** Small per-run class ids; each class's name, hash and how often it was taken. */
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private readonly hashes: number[] = [];
  private readonly takes: number[] = [];
  /** Subclass-0 class id per lock (most takes): no string work on the hot path. */
  private readonly lockIds = new Map<Lock, number>();
  private readonly pairs = new Set<number>();

  constructor(private readonly sim: Engine) {}

  private idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.ids.set(name, id);
      this.names.push(name);
      this.hashes.push(fnv1a(name)); // run-independent, unlike the id
      this.takes.push(0);
    }
    return id;
  }

  private classOf(lock: Lock, how: string): number {
    if (how.indexOf('/') >= 0) return this.idOf(className(lock, how));
    let id = this.lockIds.get(lock);
    if (id === undefined || this.names[id] !== lock.lockClass) {
      id = this.idOf(lock.lockClass); // lockdep_set_class may have renamed it
      this.lockIds.set(lock, id);
    }
    return id;
  }

  /** Record outer -> inner for every lock `cur` holds in its running context (before `upto`). */
  private nest(cur: Task, inner: number, upto: number): void {
    const held = cur.held;
    const depth = cur.depth;
    for (let i = 0; i < upto; i++) {
      const h = held[i];
      if (h.depth !== depth) continue;
      const outer = this.classOf(h.lock, h.how);
      const key = outer * PAIR + inner;
      if (this.pairs.has(key)) continue;
      this.pairs.add(key);
      this.sim.cover(`lockorder:${this.names[outer]}->${this.names[inner]}`);
    }
  }

  lockAcquired(cur: Task, lock: Lock, how: string): void {
    const id = this.classOf(lock, how);
    // the interleaving class: (class, n-th take, taking context)
    const n = this.takes[id]++;
    const who = cur.pid !== 0 ? cur.pid : -1 - cur.cpu.id; // idle tasks all have pid 0
    this.sim.mixClass(mix(mix(mix(this.hashes[id], n), who), cur.depth));
    if (how.includes('trylock')) return;
    // recordAcquired pushed this hold last: the holds before it are the outer locks
    if (cur.held.length > 1) this.nest(cur, id, cur.held.length - 1);
  }

  lockAcquire(cur: Task, lock: Lock, how: string): void {
    // lockdep maps (fs_reclaim, work and workqueue maps) are annotated, never "acquired"
    if (how.startsWith('lock_map_acquire') && cur.held.length > 0) this.nest(cur, this.classOf(lock, how), cur.held.length);
  }

  hardirqEnter(cur: Task, irq: string): void {
    const held = cur.held;
    if (held.length === 0) {
      this.sim.cover(`irqheld:${irq}@-`);
      return;
    }
    const cls = [...new Set(held.map((h) => this.names[this.classOf(h.lock, h.how)]))].sort();
    this.sim.cover(`irqheld:${irq}@${cls.join('+')}`);
  }
}

export function installCoverage(m: Machine): void {
  m.addHooks(new CoverageObserver(m.sim));
}
