/**
 * The race programs of the primitive tests (test/kernel/<primitive>.test.ts), each in its buggy
 * and correct form. Kept apart from the suites so the conformance harness
 * (test/kernel/conformance.test.ts) and the primitive table generator (scripts/primitive-table.ts)
 * run the very same programs.
 */
import { expect } from 'chai';
import {
  ATOMIC_INIT, DECLARE_BITMAP, DECLARE_RWSEM, DEFINE_MUTEX, DEFINE_RCU_POINTER, DEFINE_SPINLOCK, INIT_LIST_HEAD, INIT_RCU_WORK, INIT_WORK, LIST_HEAD,
  NET_RX_SOFTIRQ, READ_ONCE, REFCOUNT_INIT, SINGLE_DEPTH_NESTING, WARN_ON, WRITE_ONCE, atomic_dec, atomic_dec_and_test, atomic_inc_not_zero, atomic_read,
  atomic_set, disable_irq_nosync, down_read, down_read_nested, down_write, down_write_nested, free_irq, in_serving_softirq, kfree, kobject_alloc,
  list_add_tail, list_del, list_empty, mutex_lock, mutex_lock_nested, mutex_unlock, open_softirq, queue_rcu_work, queue_work, raise_irq, raise_softirq,
  rcu_assign_pointer, rcu_dereference, rcu_read_lock, rcu_read_unlock, rcu_work, refcount_dec_and_test, refcount_inc, refcount_inc_not_zero, request_irq,
  set_bit, smp_load_acquire, smp_store_release, spin_lock, spin_unlock, system_wq, tasklet_disable, tasklet_disable_nosync, tasklet_enable, tasklet_kill,
  tasklet_schedule, tasklet_setup, test_and_set_bit, test_bit, up_read, up_write, work_struct,
  atomic_add, atomic_sub, atomic_add_return, atomic_sub_return, atomic_inc_return, atomic_dec_return, atomic_fetch_add, atomic_fetch_sub, atomic_xchg,
  atomic_cmpxchg, atomic_add_unless, atomic_sub_and_test, atomic_inc_and_test, change_bit, test_and_change_bit, test_and_clear_bit, clear_bit,
  refcount_set, refcount_read, refcount_add, refcount_add_not_zero, refcount_dec, refcount_sub_and_test, list_add, list_is_singular, list_first_entry,
  list_last_entry, list_first_entry_or_null, list_for_each_entry, list_move, list_move_tail, list_del_init, atomic_inc,
  type KObject, type KernelBody, type Machine, type Task, type atomic_t, type refcount_t,
} from '../../lib/kernel';
import type { Program } from '../../scheduler';
import { kernelProgram } from './kernel';

// ---- atomic ----
export type Dev = KObject<{ x: number }>;

/** Drop a reference: `buggy` decrements, then reads the counter in a second step. */
export function* put(cur: Task, ref: atomic_t, dev: Dev, buggy: boolean): KernelBody<void> {
  if (buggy) {
    yield* atomic_dec(cur, ref);
    if ((yield* atomic_read(cur, ref)) === 0) yield* kfree(cur, dev);
  } else if (yield* atomic_dec_and_test(cur, ref)) yield* kfree(cur, dev);
}

/** Two holders drop the last two references at once. */
export const lastTwoPuts = (buggy: boolean) =>
  kernelProgram(`atomic-put-${buggy ? 'dec-read' : 'dec-and-test'}`, 2, (m) => {
    const ref = ATOMIC_INIT(m, 'dev.refcnt', 2);
    const dev = kobject_alloc(m, 'dev', { x: 1 });
    for (const cpu of [0, 1]) m.kthread(`put${cpu}`, cpu, (cur) => put(cur, ref, dev, buggy));
  });

/** A lookup takes a reference while the owner drops the last one; `buggy`: read + set. */
export const getRacingPut = (buggy: boolean) =>
  kernelProgram(`atomic-get-${buggy ? 'read-set' : 'inc-not-zero'}`, 2, (m) => {
    const ref = ATOMIC_INIT(m, 'dev.refcnt', 1);
    const dev = kobject_alloc(m, 'dev', { x: 1 });
    m.kthread('lookup', 0, function* (cur) {
      if (buggy) {
        const v = yield* atomic_read(cur, ref);
        if (v === 0) return;
        yield* atomic_set(cur, ref, v + 1); // lost update: the put's store can land in between
      } else if (!(yield* atomic_inc_not_zero(cur, ref))) return;
      yield* READ_ONCE(cur, dev, 'x');
      if (buggy) {
        const v = yield* atomic_read(cur, ref);
        yield* atomic_set(cur, ref, v - 1);
        if (v - 1 === 0) yield* kfree(cur, dev);
      } else yield* put(cur, ref, dev, false);
    });
    m.kthread('release', 1, function* (cur) {
      if (buggy) {
        const v = yield* atomic_read(cur, ref);
        yield* atomic_set(cur, ref, v - 1);
        if (v - 1 === 0) yield* kfree(cur, dev);
      } else yield* put(cur, ref, dev, false);
    });
  });

// ---- bitops ----
export const DEV_DEAD = 3;

/** Two teardown paths (remove and an error path) each free the device once, guarded by a bit. */
export const teardown = (buggy: boolean) =>
  kernelProgram(`bitops-${buggy ? 'test-then-set' : 'test-and-set'}`, 2, (m) => {
    const flags = DECLARE_BITMAP(m, 'dev.flags');
    const dev = kobject_alloc(m, 'dev', { x: 1 });
    for (const cpu of [0, 1])
      m.kthread(`teardown${cpu}`, cpu, function* (cur) {
        if (buggy) {
          if (yield* test_bit(cur, DEV_DEAD, flags)) return;
          yield* set_bit(cur, DEV_DEAD, flags); // the other path can test between the two
        } else if (yield* test_and_set_bit(cur, DEV_DEAD, flags)) return;
        yield* kfree(cur, dev);
      });
  });

// ---- refcount ----

export function* dev_put(cur: Task, r: refcount_t, dev: Dev): KernelBody<void> {
  if (yield* refcount_dec_and_test(cur, r)) yield* kfree(cur, dev);
}

/** A lookup takes a reference while the owner drops the last one. */
export const lookupRacingPut = (buggy: boolean) =>
  kernelProgram(`refcount-${buggy ? 'inc' : 'inc-not-zero'}`, 2, (m) => {
    const r = REFCOUNT_INIT(m, 'dev.kref', 1);
    const dev = kobject_alloc(m, 'dev', { x: 1 });
    m.kthread('lookup', 0, function* (cur) {
      if (buggy) yield* refcount_inc(cur, r);
      else if (!(yield* refcount_inc_not_zero(cur, r))) return;
      yield* READ_ONCE(cur, dev, 'x');
      yield* dev_put(cur, r, dev);
    });
    m.kthread('release', 1, (cur) => dev_put(cur, r, dev));
  });

// ---- list ----
/**
 * A request on a pending list, completed by the interrupt path and cancelled by a timeout
 * path at once: each takes it off the list if the list is not empty. `buggy`: no lock.
 */
export const completeRacingCancel = (buggy: boolean) =>
  kernelProgram(`list-del-${buggy ? 'unlocked' : 'locked'}`, 2, (m) => {
    const pending = LIST_HEAD(m, 'pending');
    const lock = DEFINE_SPINLOCK(m, 'pending_lock');
    const req = kobject_alloc(m, 'req', { tag: 7 });
    const node = INIT_LIST_HEAD(m, req);
    m.kthread('submit', 0, function* (cur) {
      yield* list_add_tail(cur, node, pending);
      for (const [comm, cpu] of [['complete', 0], ['cancel', 1]] as const)
        m.kthread(comm, cpu, function* (cur) {
          if (!buggy) yield* spin_lock(cur, lock);
          if (!(yield* list_empty(cur, pending))) yield* list_del(cur, node);
          if (!buggy) yield* spin_unlock(cur, lock);
        });
    });
  });

// ---- barrier ----
/**
 * Message passing: the writer fills `data` and publishes `ready` with smp_store_release; the
 * reader checks `ready` with smp_load_acquire and then reads `data`. `buggy` publishes first.
 * Sequentially consistent model: only the program-order bug is found, never a reordering.
 */
export const publish = (buggy: boolean) =>
  kernelProgram(`barrier-${buggy ? 'publish-first' : 'publish-last'}`, 2, (m) => {
    const msg = kobject_alloc(m, 'msg', { data: 0, ready: 0 });
    m.kthread('writer', 0, function* (cur) {
      if (buggy) yield* smp_store_release(cur, msg, 'ready', 1);
      yield* WRITE_ONCE(cur, msg, 'data', 42);
      if (!buggy) yield* smp_store_release(cur, msg, 'ready', 1);
    });
    m.kthread('reader', 1, function* (cur) {
      if ((yield* smp_load_acquire(cur, msg, 'ready')) === 1) WARN_ON(cur, (yield* READ_ONCE(cur, msg, 'data')) !== 42, 'stale data');
    });
  });

// ---- nested ----
/** A rename-like path: lock the parent directory, then the child (both of class i_mutex_key). */
export const parentChildMutex = (annotated: boolean) =>
  kernelProgram(`mutex-${annotated ? 'nested' : 'plain'}`, 1, (m) => {
    const parent = DEFINE_MUTEX(m, '&type->i_mutex_key');
    const child = DEFINE_MUTEX(m, '&type->i_mutex_key');
    m.process('mv', 0, function* (cur) {
      yield* mutex_lock(cur, parent);
      if (annotated) yield* mutex_lock_nested(cur, child, SINGLE_DEPTH_NESTING);
      else yield* mutex_lock(cur, child);
      yield* mutex_unlock(cur, child);
      yield* mutex_unlock(cur, parent);
    });
  });

export const parentChildRwsem = (annotated: boolean, read: boolean) =>
  kernelProgram(`rwsem-${read ? 'read' : 'write'}-${annotated ? 'nested' : 'plain'}`, 1, (m) => {
    const parent = DECLARE_RWSEM(m, '&type->i_rwsem_key');
    const child = DECLARE_RWSEM(m, '&type->i_rwsem_key');
    m.process('mv', 0, function* (cur) {
      yield* down_write(cur, parent);
      if (read) {
        if (annotated) yield* down_read_nested(cur, child, SINGLE_DEPTH_NESTING);
        else yield* down_read(cur, child);
        yield* up_read(cur, child);
      } else {
        if (annotated) yield* down_write_nested(cur, child, SINGLE_DEPTH_NESTING);
        else yield* down_write(cur, child);
        yield* up_write(cur, child);
      }
      yield* up_write(cur, parent);
    });
  });

// ---- tasklet ----
/** A callback body with two visible steps inside, checking its context and that it runs alone. */
export function probe(m: Machine, log: string[]) {
  const seen = ATOMIC_INIT(m, 'rx.stats', 0);
  let running = 0;
  return function* rx_action(cur: Task) {
    WARN_ON(cur, !in_serving_softirq(cur.preempt_count), 'not in softirq context');
    running++;
    log.push(`rx on CPU${cur.cpu.id} ${cur.context}`);
    yield* atomic_read(cur, seen);
    yield* atomic_read(cur, seen);
    WARN_ON(cur, running > 1, 'rx_action running on two CPUs at once');
    running--;
  };
}

/** Both CPUs schedule the deferred rx work: as a tasklet, or (buggy design) as a plain softirq. */
export const rxFromBothCpus = (tasklet: boolean) =>
  kernelProgram(`rx-${tasklet ? 'tasklet' : 'softirq'}`, 2, (m, log) => {
    const body = probe(m, log);
    const t = tasklet ? tasklet_setup(m, 'rx_tasklet', function* rx_tasklet(cur) { yield* body(cur); }) : null;
    if (!tasklet) open_softirq(m, NET_RX_SOFTIRQ, body);
    for (const cpu of [0, 1])
      m.kthread(`rx${cpu}`, cpu, function* (cur) {
        for (let i = 0; i < 2; i++) {
          if (t !== null) yield* tasklet_schedule(cur, t);
          else yield* raise_softirq(cur, NET_RX_SOFTIRQ);
          yield cur.thread.point();
        }
      });
  });

/** A tasklet scheduled on CPU0 while CPU1 disables it and checks it is not running. */
export const disableWhileRunning = (wait: boolean) =>
  kernelProgram(`tasklet-disable-${wait ? 'sync' : 'nosync'}`, 2, (m) => {
    let running = false;
    const stats = ATOMIC_INIT(m, 'stats', 0);
    const t = tasklet_setup(m, 'tx_tasklet', function* tx_tasklet(cur) {
      running = true;
      yield* atomic_read(cur, stats);
      yield* atomic_read(cur, stats);
      running = false;
    });
    m.kthread('tx', 0, (cur) => tasklet_schedule(cur, t));
    m.process('ethtool', 1, function* (cur) {
      for (let i = 0; i < 8; i++) yield cur.thread.point(); // the ioctl's work before it stops the queue
      if (wait) yield* tasklet_disable(cur, t);
      else yield* tasklet_disable_nosync(cur, t);
      WARN_ON(cur, running, 'tx_tasklet running after tasklet_disable');
      yield cur.thread.point();
      yield* tasklet_enable(cur, t);
    });
  });

/** Driver remove: the IRQ handler schedules a tasklet that reads `dev`; remove frees `dev`. */
export const removeWithTasklet = (kill: boolean) =>
  kernelProgram(`tasklet-remove-${kill ? 'kill' : 'no-kill'}`, 2, (m, log) => {
    const dev = kobject_alloc(m, 'nic', { status: 1 });
    const t = tasklet_setup(m, 'nic_tasklet', function* nic_tasklet(cur) {
      log.push('tasklet');
      yield* READ_ONCE(cur, dev, 'status');
    });
    const line = request_irq(m, 0, 'nic', (cur) => tasklet_schedule(cur, t));
    m.kthread('nic-hw', 0, function* (cur) {
      raise_irq(m, line);
      yield cur.thread.point();
    });
    m.process('rmmod', 1, function* (cur) {
      yield* free_irq(cur, line);
      if (kill) yield* tasklet_kill(cur, t);
      yield* kfree(cur, dev);
    });
  });

// ---- free_irq ----
/** The handler reads the device's registers twice; remove takes the line away, then frees the device. */
export const removeWhileHandling = (free: boolean) =>
  kernelProgram(`free_irq-${free ? 'free_irq' : 'disable_irq_nosync'}`, 2, (m) => {
    const dev = kobject_alloc(m, 'nic', { isr: 1, ring: 0 });
    const line = request_irq(m, 0, 'nic', function* (cur) {
      yield* READ_ONCE(cur, dev, 'isr');
      yield* READ_ONCE(cur, dev, 'ring');
    });
    m.kthread('nic-hw', 0, function* (cur) {
      raise_irq(m, line);
      yield cur.thread.point();
    });
    m.process('rmmod', 1, function* (cur) {
      if (free) yield* free_irq(cur, line);
      else yield* disable_irq_nosync(cur, line); // masks the line but does not wait
      yield* kfree(cur, dev);
    });
  });

// ---- rcu_work ----
/** Replace the published config and free the old one from a work item (it may sleep there). */
export const replaceConfig = (rcu: boolean) =>
  kernelProgram(`rcu_work-${rcu ? 'queue_rcu_work' : 'queue_work'}`, 2, (m, log) => {
    const old = kobject_alloc(m, 'cfg', { mtu: 1500 });
    const ptr = DEFINE_RCU_POINTER(m, 'priv->cfg', old);
    const free_old_cfg = function* free_old_cfg(cur: Parameters<Parameters<typeof INIT_WORK>[1]>[0]) {
      yield* kfree(cur, old);
      log.push('freed');
    };
    const rwork = INIT_RCU_WORK(new rcu_work(m, 'free_cfg'), free_old_cfg);
    const work = INIT_WORK(new work_struct(m, 'free_cfg_now'), free_old_cfg);
    m.kthread('reader', 0, function* (cur) {
      yield* rcu_read_lock(cur);
      const c = yield* rcu_dereference(cur, ptr);
      for (let i = 0; i < 10; i++) yield cur.thread.point(); // the lookup's other work
      if (c !== null) yield* READ_ONCE(cur, c, 'mtu');
      yield* rcu_read_unlock(cur);
    });
    m.kthread('updater', 1, function* (cur) {
      yield* rcu_assign_pointer(cur, ptr, null);
      if (rcu) expect(yield* queue_rcu_work(cur, system_wq(m), rwork)).to.equal(true);
      else yield* queue_work(cur, system_wq(m), work);
    });
  });

// ---- the list the conformance harness and the table generator run ----

export interface PrimitiveProgram {
  /** The primitive (file under lib/kernel) the program exists for. */
  primitive: string;
  /** True for the correct form (expected clean), false for the buggy one. */
  correct: boolean;
  program: Program;
}

export function primitivePrograms(): PrimitiveProgram[] {
  const both = (primitive: string, f: (correct: boolean) => Program): PrimitiveProgram[] => [
    { primitive, correct: false, program: f(false) },
    { primitive, correct: true, program: f(true) },
  ];
  return [
    ...both('atomic', (ok) => lastTwoPuts(!ok)),
    ...both('atomic', (ok) => getRacingPut(!ok)),
    ...both('bitops', (ok) => teardown(!ok)),
    ...both('refcount', (ok) => lookupRacingPut(!ok)),
    ...both('list', (ok) => completeRacingCancel(!ok)),
    ...both('barrier', (ok) => publish(!ok)),
    ...both('nested', (ok) => parentChildMutex(ok)),
    ...both('nested', (ok) => parentChildRwsem(ok, true)),
    ...both('nested', (ok) => parentChildRwsem(ok, false)),
    ...both('tasklet', (ok) => rxFromBothCpus(ok)),
    ...both('tasklet', (ok) => disableWhileRunning(ok)),
    ...both('tasklet', (ok) => removeWithTasklet(ok)),
    ...both('irq', (ok) => removeWhileHandling(ok)),
    ...both('workqueue', (ok) => replaceConfig(ok)),
    ...both('atomic', (ok) => irqCounter(!ok)),
    { primitive: 'all', correct: true, program: tour() },
  ];
}

// ---- a tour: every op of the new primitives once, on one CPU (for conformance and the table) ----

export const tour = (): Program =>
  kernelProgram('primitives-tour', 2, (m) => {
    const v = ATOMIC_INIT(m, 'tour.count', 1);
    const b = DECLARE_BITMAP(m, 'tour.flags');
    const r = REFCOUNT_INIT(m, 'tour.ref', 1);
    const head = LIST_HEAD<string>(m, 'tour.list');
    const other = LIST_HEAD<string>(m, 'tour.other');
    const [x, y] = ['x', 'y'].map((s) => INIT_LIST_HEAD(m, s));
    const obj = kobject_alloc(m, 'tour.obj', { f: 0 });
    const t = tasklet_setup(m, 'tour_tasklet', function* tour_tasklet() {});
    m.kthread('tour', 0, function* (cur) {
      yield* atomic_set(cur, v, 2);
      yield* atomic_read(cur, v);
      yield* atomic_inc(cur, v);
      yield* atomic_dec(cur, v);
      yield* atomic_add(cur, 2, v);
      yield* atomic_sub(cur, 2, v);
      yield* atomic_add_return(cur, 1, v);
      yield* atomic_sub_return(cur, 1, v);
      yield* atomic_inc_return(cur, v);
      yield* atomic_dec_return(cur, v);
      yield* atomic_fetch_add(cur, 1, v);
      yield* atomic_fetch_sub(cur, 1, v);
      yield* atomic_xchg(cur, v, 3);
      yield* atomic_cmpxchg(cur, v, 3, 4);
      yield* atomic_add_unless(cur, v, 1, 0);
      yield* atomic_inc_not_zero(cur, v);
      yield* atomic_sub_and_test(cur, 1, v);
      yield* atomic_inc_and_test(cur, v);
      yield* atomic_dec_and_test(cur, v);
      yield* set_bit(cur, 1, b);
      yield* test_bit(cur, 1, b);
      yield* change_bit(cur, 2, b);
      yield* test_and_change_bit(cur, 2, b);
      yield* test_and_set_bit(cur, 3, b);
      yield* test_and_clear_bit(cur, 3, b);
      yield* clear_bit(cur, 1, b);
      yield* refcount_set(cur, r, 2);
      yield* refcount_read(cur, r);
      yield* refcount_inc(cur, r);
      yield* refcount_add(cur, 1, r);
      yield* refcount_inc_not_zero(cur, r);
      yield* refcount_add_not_zero(cur, 1, r);
      yield* refcount_dec(cur, r);
      yield* refcount_sub_and_test(cur, 2, r);
      yield* refcount_dec_and_test(cur, r);
      yield* list_add(cur, x, head);
      yield* list_add_tail(cur, y, head);
      yield* list_is_singular(cur, head);
      yield* list_first_entry(cur, head);
      yield* list_last_entry(cur, head);
      yield* list_first_entry_or_null(cur, head);
      yield* list_for_each_entry(cur, head);
      yield* list_move(cur, x, other);
      yield* list_move_tail(cur, y, other);
      yield* list_del_init(cur, x);
      yield* list_del(cur, y);
      yield* list_empty(cur, other);
      yield* smp_store_release(cur, obj, 'f', 1);
      yield* smp_load_acquire(cur, obj, 'f');
      // Disabled while scheduled on this very CPU, the tasklet would keep ksoftirqd/0 busy and
      // this task off the CPU (the model's ksoftirqd has no cond_resched): disable first.
      yield* tasklet_disable(cur, t);
      yield* tasklet_enable(cur, t);
      yield* tasklet_schedule(cur, t);
      yield* tasklet_kill(cur, t);
    });
  });

// ---- an interrupt between two steps, never inside one ----

/**
 * A statistics counter bumped by the task and by its own CPU's interrupt handler. `buggy`: the
 * task's bump is atomic_read + atomic_set (the IRQ can land between them: lost update); correct:
 * atomic_inc (one step: the IRQ lands before or after it, never inside).
 */
export const irqCounter = (buggy: boolean) =>
  kernelProgram(`atomic-irq-${buggy ? 'read-set' : 'inc'}`, 1, (m) => {
    const cnt = ATOMIC_INIT(m, 'stats.packets', 0);
    let finished = 0;
    // Whoever bumps last checks the total (no waiting loop: every schedule ends).
    function* last(cur: Task) {
      if (++finished === 2) WARN_ON(cur, (yield* atomic_read(cur, cnt)) !== 2, 'stats.packets lost an update');
    }
    const line = request_irq(m, 0, 'eth0', function* (cur) {
      yield* atomic_inc(cur, cnt);
      yield* last(cur);
    });
    m.kthread('xmit', 0, function* (cur) {
      raise_irq(m, line);
      if (buggy) {
        const v = yield* atomic_read(cur, cnt);
        yield* atomic_set(cur, cnt, v + 1);
      } else yield* atomic_inc(cur, cnt);
      yield* last(cur);
      yield cur.thread.point();
    });
  });
