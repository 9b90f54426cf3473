/**
 * The rwlock_t program of a hardirq handler taking a lock its CPU's task holds for reading while
 * a writer on the other CPU queues: shared by test/kernel/rwlock.test.ts (bounded DFS) and
 * test/long/rwlock.long.test.ts (every schedule).
 */
import type { Program } from '../../scheduler';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { DEFINE_RWLOCK, read_lock, read_lock_irqsave, read_unlock, read_unlock_irqrestore, write_lock, write_lock_irqsave, write_unlock, write_unlock_irqrestore } from '../../lib/kernel/rwlock';
import type { Task } from '../../lib/kernel/task';
import { kernelProgram as prog } from './kernel';

/** Wait (spinning, no busy steps) until `pred` holds: orders a test's tasks. */
export function* until(cur: Task, pred: () => boolean): Generator<unknown, void, unknown> {
  yield cur.thread.spinUntil(pred);
}

/**
 * r0 holds tbl_lock for reading (plain read_lock, IRQs on) on CPU0; w1 queues for writing on
 * CPU1; then the device interrupts CPU0 and its handler takes tbl_lock for `irqWrite`.
 */
export const irqProg = (irqWrite: boolean, irqsave: boolean): Program =>
  prog(`rw-irq-${irqWrite ? 'w' : 'r'}-${irqsave ? 'save' : 'plain'}`, { cpus: 2 }, (m, log) => {
    const l = DEFINE_RWLOCK(m, 'tbl_lock');
    const line = request_irq(m, 0, 'dev_irq', function* (cur) {
      if (irqWrite) {
        yield* write_lock(cur, l);
        yield* write_unlock(cur, l);
      } else {
        yield* read_lock(cur, l);
        log.push(`irq in, writer ${l.queue.length > 0 ? 'queued' : 'not queued'}, readers ${l.readers.length}`);
        yield* read_unlock(cur, l);
      }
    });
    m.kthread('r0', 0, function* (cur) {
      const flags = irqsave ? yield* read_lock_irqsave(cur, l) : (yield* read_lock(cur, l), 0);
      log.push(`r0 in, irqs ${cur.irqs_disabled ? 'off' : 'on'}`);
      yield* until(cur, () => l.queue.length === 1);
      yield* raise_irq(cur, line);
      yield cur.thread.point();
      log.push('r0 out');
      if (irqsave) yield* read_unlock_irqrestore(cur, l, flags);
      else yield* read_unlock(cur, l);
    });
    // A writer of a lock readers take in hardirq context disables IRQs (else lockdep rightly
    // reports {IN-HARDIRQ-R} -> {HARDIRQ-ON-W}: an IRQ on its own CPU would spin on it).
    m.kthread('w1', 1, function* (cur) {
      yield* until(cur, () => l.readers.length === 1);
      const f = yield* write_lock_irqsave(cur, l);
      yield* write_unlock_irqrestore(cur, l, f);
    });
  });
