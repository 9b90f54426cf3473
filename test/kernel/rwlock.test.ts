import { expect } from 'chai';
import { hunt, type Finding, type Program } from '../../scheduler';
import { kernelProgram as prog, everySchedule as every } from '../support/kernel';
import { irqProg, until } from '../support/rwlock-irq';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock } from '../../lib/kernel/mutex';
import { PREEMPT_OFFSET, SOFTIRQ_DISABLE_OFFSET, SOFTIRQ_LOCK_OFFSET } from '../../lib/kernel/preempt';
import {
  DEFINE_RWLOCK,
  read_lock,
  read_lock_bh,
  read_lock_irq,
  read_lock_irqsave,
  read_trylock,
  read_unlock,
  read_unlock_bh,
  read_unlock_irq,
  read_unlock_irqrestore,
  write_lock,
  write_lock_bh,
  write_lock_irq,
  write_lock_irqsave,
  write_trylock,
  write_unlock,
  write_unlock_bh,
  write_unlock_irq,
  write_unlock_irqrestore,
} from '../../lib/kernel/rwlock';
import {
  DECLARE_RWSEM,
  down_read,
  down_read_trylock,
  down_write,
  down_write_trylock,
  downgrade_write,
  up_read,
  up_write,
} from '../../lib/kernel/rwsem';
import { DEFINE_SPINLOCK, spin_lock, spin_unlock } from '../../lib/kernel/spinlock';

/**
 * Run every schedule (exhaustive DFS); returns how many ran. Programs of two tasks (plus
 * interrupt handlers) are explored without bounds; with three or more, `preemptionBound` caps
 * task switches (CHESS) so the tree stays small, while interrupt delivery stays unbounded.
 */
const everySchedule = (p: Program, check: (log: string[], findings: Finding[]) => void, preemptionBound?: number, limit = 50_000): number =>
  every(p, (log, r) => check(log, r.findings), { preemptionBound, limit });

const kinds = (fs: Finding[]): string[] => fs.map((f) => f.kind);

/** Counts who is inside a critical section and logs any broken exclusion. */
class Inside {
  readers = 0;
  writers = 0;
  constructor(private readonly log: string[]) {}
  enter(write: boolean): void {
    if (write) this.writers++;
    else this.readers++;
    if (this.writers > 1 || (this.writers > 0 && this.readers > 0)) this.log.push(`VIOLATION r=${this.readers} w=${this.writers}`);
  }
  leave(write: boolean): void {
    if (write) this.writers--;
    else this.readers--;
  }
}

describe('rwlock_t (queued rwlock)', () => {
  it('lets two readers hold it at once', () => {
    const p = prog('rw-share', { cpus: 2 }, (m, log) => {
      const l = DEFINE_RWLOCK(m, 'tbl_lock');
      for (const c of [0, 1]) {
        m.kthread(`r${c}`, c, function* (cur) {
          yield* read_lock(cur, l);
          log.push(`holders=${l.holders().length}`);
          yield cur.thread.point();
          yield* read_unlock(cur, l);
        });
      }
    });
    const seen = new Set<string>();
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      for (const x of log) seen.add(x);
    });
    expect(seen).to.include('holders=2');
  });

  it('a writer excludes readers and other writers in every schedule', () => {
    const p = prog('rw-exclusive', { cpus: 3 }, (m, log) => {
      const l = DEFINE_RWLOCK(m, 'tbl_lock');
      const ins = new Inside(log);
      const roles: [string, boolean][] = [['w0', true], ['r1', false], ['w2', true]];
      roles.forEach(([name, write], c) => {
        m.kthread(name, c, function* (cur) {
          if (write) yield* write_lock(cur, l);
          else yield* read_lock(cur, l);
          ins.enter(write);
          yield cur.thread.point();
          ins.leave(write);
          if (write) yield* write_unlock(cur, l);
          else yield* read_unlock(cur, l);
          log.push(`${name} done held=${cur.held.length} pc=${cur.preempt_count}`);
        });
      });
    });
    const n = everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log.filter((x) => x.startsWith('VIOLATION'))).to.deep.equal([]);
      expect(log.filter((x) => x.endsWith('held=0 pc=0'))).to.have.length(3);
    }, 2);
    expect(n).to.be.greaterThan(10);
  });

  it('serves waiters in arrival order: a process-context reader waits behind a queued writer', () => {
    const p = prog('rw-fifo', { cpus: 3 }, (m, log) => {
      const l = DEFINE_RWLOCK(m, 'tbl_lock');
      m.kthread('r0', 0, function* (cur) {
        yield* read_lock(cur, l);
        log.push('r0 in');
        yield* until(cur, () => l.queue.length === 2); // the writer and the late reader queue
        yield* read_unlock(cur, l);
      });
      m.kthread('w1', 1, function* (cur) {
        yield* until(cur, () => l.readers.length === 1);
        yield* write_lock(cur, l);
        log.push('w1 in');
        yield cur.thread.point();
        yield* write_unlock(cur, l);
      });
      m.kthread('r2', 2, function* (cur) {
        yield* until(cur, () => l.queue.length === 1); // the writer is queued
        yield* read_lock(cur, l);
        log.push('r2 in');
        yield* read_unlock(cur, l);
      });
    });
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log).to.deep.equal(['r0 in', 'w1 in', 'r2 in']);
    }, 2);
  });

  it('a process-context reader re-taking the lock behind a queued writer deadlocks (queued rwlocks are not read-recursive)', () => {
    const p = prog('rw-recursive', { cpus: 2 }, (m) => {
      const l = DEFINE_RWLOCK(m, 'tbl_lock');
      m.kthread('r0', 0, function* (cur) {
        yield* read_lock(cur, l);
        yield* until(cur, () => l.queue.length === 1);
        yield* read_lock(cur, l);
        yield* read_unlock(cur, l);
        yield* read_unlock(cur, l);
      });
      m.kthread('w1', 1, function* (cur) {
        yield* until(cur, () => l.readers.length === 1);
        yield* write_lock(cur, l);
        yield* write_unlock(cur, l);
      });
    });
    everySchedule(p, (_log, fs) => {
      // lockdep predicts it too: a non-recursive (queued) read inside a read of the same class
      expect(kinds(fs)).to.deep.equal(['lockdep', 'deadlock']);
      expect(fs[0].subkind).to.equal('recursive');
      expect(fs[1].text).to.match(/spinning on rwlock tbl_lock held by CPU0 r0/);
    });
  });

  // Every schedule of this program (47,500, ~10 s) is test/long/rwlock.long.test.ts; at most two
  // task switches (377 schedules) still deadlock when in-interrupt readers queue like the rest.
  it('a hardirq reader gets in while a writer is queued behind a process-context reader (at most 2 task switches)', () => {
    const seen = new Set<string>();
    const n = everySchedule(irqProg(false, false), (log, fs) => {
      expect(fs).to.deep.equal([]);
      for (const x of log) seen.add(x);
    }, 2);
    expect(n).to.be.greaterThan(1);
    expect(seen).to.include('r0 in, irqs on');
    // the handler interrupted r0's read section and went past the queued writer
    expect(seen).to.include('irq in, writer queued, readers 2');
  });

  it('write_lock in the hardirq handler against read_lock without irqsave on its CPU deadlocks', () => {
    // DFS reaches the deadlock at schedule 516 (212 before issue 9 made raise_irq and the
    // handler's IRQD_IRQ_INPROGRESS updates steps of their own: more interleavings come first)
    const h = hunt(irqProg(true, false), { strategy: 'dfs', iterations: 1000, stopWhenSeen: ['lockdep', 'deadlock'] });
    // lockdep: {HARDIRQ-ON-R} -> {IN-HARDIRQ-W}, predicted in every schedule; the deadlock in some
    expect(kinds(h.findings)).to.deep.equal(['lockdep', 'deadlock']);
    expect(h.findings[0].subkind).to.equal('inconsistent');
    const f = h.findings[1];
    expect(f.text).to.match(/wait-for cycle of 1 context/);
    expect(f.text).to.match(/hardirq dev_irq.*spinning on rwlock tbl_lock held by CPU0 r0/);
  });

  it('read_lock_irqsave disables IRQs, so the handler only runs after the read section', () => {
    for (const irqWrite of [false, true]) {
      everySchedule(irqProg(irqWrite, true), (log, fs) => {
        expect(fs).to.deep.equal([]);
        expect(log[0]).to.equal('r0 in, irqs off');
        expect(log[1]).to.equal('r0 out');
      }, 2); // IRQ delivery stays unbounded; only task switches are capped
    }
  });

  it('moves preempt_count and the IRQ state as the spinlock forms do', () => {
    const p = prog('rw-forms', { cpus: 1 }, (m, log) => {
      const l = DEFINE_RWLOCK(m, 'l');
      m.kthread('t', 0, function* (cur) {
        const seen = (what: string) => log.push(`${what} pc=${cur.preempt_count.toString(16)} off=${cur.irqs_disabled}`);
        yield* read_lock(cur, l);
        seen('read_lock');
        yield* read_unlock(cur, l);
        yield* write_lock_irq(cur, l);
        seen('write_lock_irq');
        yield* write_unlock_irq(cur, l);
        yield* read_lock_irq(cur, l);
        yield* read_unlock_irq(cur, l);
        const f = yield* write_lock_irqsave(cur, l);
        seen('write_lock_irqsave');
        yield* write_unlock_irqrestore(cur, l, f);
        yield* read_lock_bh(cur, l);
        seen('read_lock_bh');
        yield* read_unlock_bh(cur, l);
        yield* write_lock_bh(cur, l);
        seen('write_lock_bh');
        yield* write_unlock_bh(cur, l);
        seen('end');
      });
    });
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log).to.deep.equal([
        `read_lock pc=${PREEMPT_OFFSET.toString(16)} off=false`,
        'write_lock_irq pc=1 off=true',
        'write_lock_irqsave pc=1 off=true',
        `read_lock_bh pc=${SOFTIRQ_LOCK_OFFSET.toString(16)} off=false`,
        'write_lock_bh pc=201 off=false',
        'end pc=0 off=false',
      ]);
    });
  });

  it('emits the lock hooks with the read/write form and the trylock flag', () => {
    const p = prog('rw-hooks', { cpus: 1 }, (m, log) => {
      const l = DEFINE_RWLOCK(m, 'l');
      m.addHooks({
        lockAcquire: (_c, lock, how, trylock) => log.push(`acquire ${lock.kind} ${how}${trylock ? ' try' : ''}`),
        lockAcquired: (_c, _l, how) => log.push(`acquired ${how}`),
        lockRelease: (_c, _l, how) => log.push(`release ${how}`),
      });
      m.kthread('t', 0, function* (cur) {
        const f = yield* read_lock_irqsave(cur, l);
        log.push(`held ${cur.held.map((h) => h.how).join(',')}`);
        yield* read_unlock_irqrestore(cur, l, f);
        if (yield* write_trylock(cur, l)) yield* write_unlock(cur, l);
      });
    });
    everySchedule(p, (log) => {
      expect(log).to.deep.equal([
        'acquire rwlock read_lock_irqsave',
        'acquired read_lock_irqsave',
        'held read_lock_irqsave',
        'release read_unlock_irqrestore',
        'acquire rwlock write_trylock try',
        'acquired write_trylock',
        'release write_unlock',
      ]);
    });
  });

  it('trylocks never wait: they fail while the other side holds the lock', () => {
    const p = prog('rw-try', { cpus: 2 }, (m, log) => {
      const l = DEFINE_RWLOCK(m, 'l');
      m.kthread('w', 0, function* (cur) {
        yield* write_lock(cur, l);
        yield* until(cur, () => log.length === 2);
        yield* write_unlock(cur, l);
      });
      m.kthread('t', 1, function* (cur) {
        yield* until(cur, () => l.owner !== null);
        log.push(`read_trylock ${yield* read_trylock(cur, l)} pc=${cur.preempt_count}`);
        log.push(`write_trylock ${yield* write_trylock(cur, l)} pc=${cur.preempt_count}`);
        yield* until(cur, () => l.owner === null);
        const ok = yield* read_trylock(cur, l);
        log.push(`read_trylock ${ok}`);
        if (ok) yield* read_unlock(cur, l);
      });
    });
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log).to.deep.equal(['read_trylock false pc=0', 'write_trylock false pc=0', 'read_trylock true']);
    });
  });

  it('an unbalanced unlock changes nothing and does not throw', () => {
    // lockdep off: this checks the lock's own state; lockdep's verdict is checked below
    const p = prog('rw-bad-unlock', { cpus: 1, lockdep: false }, (m, log) => {
      const l = DEFINE_RWLOCK(m, 'l');
      m.kthread('t', 0, function* (cur) {
        yield* read_lock(cur, l); // balance preempt_count for the unlocks below
        yield* read_lock(cur, l);
        yield* write_unlock(cur, l); // not the writer
        log.push(`readers=${l.readers.length} held=${cur.held.length}`);
        yield* read_unlock(cur, l);
        yield* read_unlock(cur, l);
        yield* read_lock(cur, l);
        yield* read_unlock(cur, l);
        yield* read_lock(cur, l);
        yield* read_unlock(cur, l);
        yield* read_unlock(cur, l); // one too many
        log.push(`readers=${l.readers.length} held=${cur.held.length}`);
        yield* write_lock(cur, l);
        log.push('write_lock ok');
        yield* write_unlock(cur, l);
      });
    });
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log).to.deep.equal(['readers=2 held=2', 'readers=0 held=0', 'write_lock ok']);
    });
  });
});

describe('rw_semaphore', () => {
  it('lets two readers hold it at once', () => {
    const p = prog('rwsem-share', { cpus: 2 }, (m, log) => {
      const s = DECLARE_RWSEM(m, 'mmap_lock');
      for (const c of [0, 1]) {
        m.kthread(`r${c}`, c, function* (cur) {
          yield* down_read(cur, s);
          log.push(`holders=${s.holders().length}`);
          yield cur.thread.point();
          yield* up_read(cur, s);
        });
      }
    });
    const seen = new Set<string>();
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      for (const x of log) seen.add(x);
    });
    expect(seen).to.include('holders=2');
  });

  it('a writer excludes readers and other writers, waiters sleep and get it handed over', () => {
    // Two tasks share CPU0, so a waiter has to give its CPU away for the holder to go on.
    let sleeps = 0;
    const p = prog('rwsem-exclusive', { cpus: 2 }, (m, log) => {
      const s = DECLARE_RWSEM(m, 'mmap_lock');
      const ins = new Inside(log);
      m.addHooks({ sleep: () => sleeps++ });
      const roles: [string, number, boolean][] = [['w0', 0, true], ['r0', 0, false], ['w1', 1, true]];
      for (const [name, cpu, write] of roles) {
        m.kthread(name, cpu, function* (cur) {
          if (write) yield* down_write(cur, s);
          else yield* down_read(cur, s);
          ins.enter(write);
          yield cur.thread.point();
          ins.leave(write);
          if (write) yield* up_write(cur, s);
          else yield* up_read(cur, s);
          log.push(`${name} done held=${cur.held.length}`);
        });
      }
    });
    const n = everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log.filter((x) => x.startsWith('VIOLATION'))).to.deep.equal([]);
      expect(log.filter((x) => x.endsWith('held=0'))).to.have.length(3);
    }, 2);
    expect(n).to.be.greaterThan(10);
    expect(sleeps).to.be.greaterThan(0);
  });

  it('a reader arriving while a writer waits queues behind it', () => {
    const p = prog('rwsem-fifo', { cpus: 3 }, (m, log) => {
      const s = DECLARE_RWSEM(m, 'mmap_lock');
      m.kthread('r0', 0, function* (cur) {
        yield* down_read(cur, s);
        yield* until(cur, () => s.waiters.length === 2);
        log.push('r0 out');
        yield* up_read(cur, s);
      });
      m.kthread('w1', 1, function* (cur) {
        yield* until(cur, () => s.readers.length === 1);
        yield* down_write(cur, s);
        log.push('w1 in');
        yield* up_write(cur, s);
      });
      m.kthread('r2', 2, function* (cur) {
        yield* until(cur, () => s.waiters.length === 1);
        yield* down_read(cur, s);
        log.push('r2 in');
        yield* up_read(cur, s);
      });
    });
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log).to.deep.equal(['r0 out', 'w1 in', 'r2 in']);
    }, 2);
  });

  it('down_read and down_write under spin_lock are might_sleep findings', () => {
    for (const write of [false, true]) {
      const p = prog(`rwsem-atomic-${write}`, { cpus: 1 }, (m) => {
        const sl = DEFINE_SPINLOCK(m, 'dev_lock');
        const s = DECLARE_RWSEM(m, 'mmap_lock');
        m.kthread('t', 0, function* (cur) {
          yield* spin_lock(cur, sl);
          if (write) yield* down_write(cur, s);
          else yield* down_read(cur, s);
          if (write) yield* up_write(cur, s);
          else yield* up_read(cur, s);
          yield* spin_unlock(cur, sl);
        });
      });
      const h = hunt(p, { strategy: 'dfs', iterations: 20, stopAtFirst: false });
      expect(kinds(h.findings)).to.deep.equal(['might_sleep']);
      expect(h.findings[0].text).to.match(/at kernel\/locking\/rwsem.c/);
      expect(h.findings[0].fingerprint).to.contain(write ? 'down_write' : 'down_read');
    }
  });

  it('downgrade_write lets the readers queued at the head in, not the writer behind them', () => {
    const p = prog('rwsem-downgrade', { cpus: 4 }, (m, log) => {
      const s = DECLARE_RWSEM(m, 'mmap_lock');
      m.kthread('w0', 0, function* (cur) {
        yield* down_write(cur, s);
        yield* until(cur, () => s.waiters.length === 3);
        yield* downgrade_write(cur, s);
        log.push(`downgraded: readers=${s.readers.length} waiters=${s.waiters.length} how=${cur.held[0].how}`);
        yield* until(cur, () => log.length === 3); // both readers got in beside us
        yield* up_read(cur, s);
      });
      const order: [string, number, boolean][] = [['r1', 1, false], ['r2', 2, false], ['w3', 3, true]];
      order.forEach(([name, cpu, write], k) => {
        m.kthread(name, cpu, function* (cur) {
          yield* until(cur, () => s.owner !== null && s.waiters.length === k);
          if (write) yield* down_write(cur, s);
          else yield* down_read(cur, s);
          log.push(`${name} in`);
          yield cur.thread.point();
          if (write) yield* up_write(cur, s);
          else yield* up_read(cur, s);
        });
      });
    });
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log[0]).to.equal('downgraded: readers=3 waiters=1 how=downgrade_write');
      expect(log.slice(1, 3).sort()).to.deep.equal(['r1 in', 'r2 in']);
      expect(log[3]).to.equal('w3 in');
    }, 1);
  });

  it('trylocks never sleep and never call might_sleep', () => {
    const p = prog('rwsem-try', { cpus: 2 }, (m, log) => {
      const s = DECLARE_RWSEM(m, 'mmap_lock');
      const sl = DEFINE_SPINLOCK(m, 'dev_lock');
      m.addHooks({
        schedule: (cur, where) => log.push(`schedule ${cur.comm} ${where}`),
        mightSleep: (cur, where) => log.push(`might_sleep ${cur.comm} ${where}`),
      });
      m.kthread('w', 0, function* (cur) {
        yield* down_write(cur, s);
        yield* until(cur, () => log.includes('tried'));
        yield* up_write(cur, s);
      });
      m.kthread('t', 1, function* (cur) {
        yield* until(cur, () => s.owner !== null);
        yield* spin_lock(cur, sl); // atomic context: a sleeping call would be a finding
        log.push(`read ${yield* down_read_trylock(cur, s)}`);
        log.push(`write ${yield* down_write_trylock(cur, s)}`);
        yield* spin_unlock(cur, sl);
        log.push('tried');
        yield* until(cur, () => s.owner === null);
        const ok = yield* down_write_trylock(cur, s);
        log.push(`write ${ok}`);
        if (ok) yield* up_write(cur, s);
      });
    });
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log).to.deep.equal(['might_sleep w down_write', 'read false', 'write false', 'tried', 'write true']);
    });
  });

  it('an unbalanced up_read or up_write changes nothing and does not throw', () => {
    const p = prog('rwsem-bad-unlock', { cpus: 2, lockdep: false }, (m, log) => {
      const s = DECLARE_RWSEM(m, 'mmap_lock');
      m.kthread('t', 0, function* (cur) {
        yield* up_read(cur, s);
        yield* up_write(cur, s);
        yield* down_read(cur, s);
        yield* up_write(cur, s); // a reader, not the writer
        log.push(`readers=${s.readers.length} held=${cur.held.length}`);
        yield* up_read(cur, s);
        yield* up_read(cur, s);
        log.push(`readers=${s.readers.length} held=${cur.held.length}`);
        yield* down_write(cur, s);
        log.push('down_write ok');
        yield* up_write(cur, s);
      });
    });
    everySchedule(p, (log, fs) => {
      expect(fs).to.deep.equal([]);
      expect(log).to.deep.equal(['readers=1 held=1', 'readers=0 held=0', 'down_write ok']);
    });
  });

  it('with lockdep on, an unbalanced unlock is "bad unlock balance detected!"', () => {
    const p = prog('rwsem-bad-unlock-lockdep', { cpus: 1 }, (m) => {
      const s = DECLARE_RWSEM(m, 'mmap_lock');
      m.kthread('t', 0, function* (cur) {
        yield* up_read(cur, s);
      });
    });
    everySchedule(p, (_log, fs) => {
      expect(fs.map((f) => `${f.kind}/${f.subkind}`)).to.deep.equal(['lockdep/bad_unlock']);
      expect(fs[0].text).to.contain('WARNING: bad unlock balance detected!');
      expect(fs[0].text).to.contain('t/1 is trying to release lock (mmap_lock) at:');
    });
  });

  it('a wait-for cycle through an rwsem is a deadlock naming both tasks', () => {
    // A holds mmap_lock for reading and wants cfg; B holds cfg and waits in down_write.
    const p = prog('rwsem-cycle', { cpus: 2 }, (m) => {
      const s = DECLARE_RWSEM(m, 'mmap_lock');
      const mu = DEFINE_MUTEX(m, 'cfg_mutex');
      m.kthread('A', 0, function* (cur) {
        yield* down_read(cur, s);
        yield* mutex_lock(cur, mu);
        yield* mutex_unlock(cur, mu);
        yield* up_read(cur, s);
      });
      m.kthread('B', 1, function* (cur) {
        yield* mutex_lock(cur, mu);
        yield* down_write(cur, s);
        yield* up_write(cur, s);
        yield* mutex_unlock(cur, mu);
      });
    });
    let deadlocks = 0;
    everySchedule(p, (_log, all) => {
      // lockdep predicts the cycle from whichever order ran (circular dependency)
      expect(all[0].kind).to.equal('lockdep');
      expect(all[0].subkind).to.equal('circular');
      const fs = all.filter((f) => f.kind === 'deadlock');
      if (fs.length === 0) return;
      deadlocks++;
      const f = fs[0];
      expect(f.text).to.match(/wait-for cycle of 2 contexts/);
      expect(f.text).to.match(/A\/\d+ in task.*sleeping on mutex cfg_mutex held by CPU1 B/);
      expect(f.text).to.match(/B\/\d+ in task.*sleeping on rw_semaphore mmap_lock held by CPU0 A/);
      expect(f.fingerprint).to.contain('mmap_lock').and.to.contain('cfg_mutex');
    });
    expect(deadlocks).to.be.greaterThan(0);
  });
});
