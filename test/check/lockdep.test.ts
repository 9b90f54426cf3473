/**
 * lockdep against the locking selftest matrix (lib/locking-selftest.c, docs/kernel-facts.md §5.4): each
 * family as a scripted lock sequence on one task, run once, over every lock type of the matrix,
 * with the upstream verdict (F = lockdep reports, S = silence); plus correct twins that must stay
 * silent, and the false-positive traps.
 */
import { expect } from 'chai';
import { Engine, ReplayStrategy, type Program } from '../../scheduler';
import { installLockdep } from '../../lib/check/lockdep';
import { Machine } from '../../lib/kernel/machine';
import { lock_reinit, type Lock } from '../../lib/kernel/lock';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock, type mutex } from '../../lib/kernel/mutex';
import { HARDIRQ_OFFSET, SOFTIRQ_OFFSET } from '../../lib/kernel/preempt';
import { DEFINE_SPINLOCK, spin_lock, spin_trylock, spin_unlock, type spinlock_t } from '../../lib/kernel/spinlock';
import { DEFINE_RWLOCK, read_lock, read_unlock, write_lock, write_unlock, type rwlock_t } from '../../lib/kernel/rwlock';
import { DECLARE_RWSEM, down_read, down_write, up_read, up_write, type rw_semaphore } from '../../lib/kernel/rwsem';
import type { Task } from '../../lib/kernel/task';
import { GFP_KERNEL, GFP_NOFS, memalloc_nofs_restore, memalloc_nofs_save } from '../../lib/kernel/gfp';
import { fs_reclaim_acquire, fs_reclaim_release, might_alloc } from '../../lib/kernel/fs-reclaim';

type Col = 'spin' | 'wlock' | 'rlock' | 'mutex' | 'wsem' | 'rsem';
const COLS: Col[] = ['spin', 'wlock', 'rlock', 'mutex', 'wsem', 'rsem'];
type Gen = Generator<unknown, void, unknown>;

/** How the column's plain L/U, and the rw-specific R/W ops, act on a lock. */
function ops(col: Col) {
  const rw = col === 'wlock' || col === 'rlock' ? 'rwlock' : col === 'wsem' || col === 'rsem' ? 'rwsem' : null;
  const plainSleeps = col === 'mutex' || col === 'wsem' || col === 'rsem';
  return {
    make(m: Machine, cls: string, plain: boolean): Lock {
      if (!plain && rw === 'rwlock') return DEFINE_RWLOCK(m, cls);
      if (!plain && rw === 'rwsem') return DECLARE_RWSEM(m, cls);
      if (col === 'spin' || (plain && !plainSleeps)) return DEFINE_SPINLOCK(m, cls);
      return DEFINE_MUTEX(m, cls);
    },
    *lock(cur: Task, l: Lock): Gen {
      if (l.kind === 'rwlock') yield* col === 'rlock' ? read_lock(cur, l as rwlock_t) : write_lock(cur, l as rwlock_t);
      else if (l.kind === 'rw_semaphore') yield* col === 'rsem' ? down_read(cur, l as rw_semaphore) : down_write(cur, l as rw_semaphore);
      else if (l.kind === 'mutex') yield* mutex_lock(cur, l as mutex);
      else yield* spin_lock(cur, l as spinlock_t);
    },
    *unlock(cur: Task, l: Lock): Gen {
      if (l.kind === 'rwlock') yield* col === 'rlock' ? read_unlock(cur, l as rwlock_t) : write_unlock(cur, l as rwlock_t);
      else if (l.kind === 'rw_semaphore') yield* col === 'rsem' ? up_read(cur, l as rw_semaphore) : up_write(cur, l as rw_semaphore);
      else if (l.kind === 'mutex') yield* mutex_unlock(cur, l as mutex);
      else yield* spin_unlock(cur, l as spinlock_t);
    },
    *read(cur: Task, l: Lock, unlock: boolean): Gen {
      if (l.kind === 'rwlock') yield* unlock ? read_unlock(cur, l as rwlock_t) : read_lock(cur, l as rwlock_t);
      else yield* unlock ? up_read(cur, l as rw_semaphore) : down_read(cur, l as rw_semaphore);
    },
    *write(cur: Task, l: Lock, unlock: boolean): Gen {
      if (l.kind === 'rwlock') yield* unlock ? write_unlock(cur, l as rwlock_t) : write_lock(cur, l as rwlock_t);
      else yield* unlock ? up_write(cur, l as rw_semaphore) : down_write(cur, l as rw_semaphore);
    },
  };
}

/**
 * Run a script: tokens L(x) U(x) R(x) RU(x) W(x) WU(x) T(x) (spin_trylock), I(x) (re-init), IRQ{ } SIRQ{ } (fake
 * hardirq / softirq entry, as the selftests' HARDIRQ_ENTER does), OFF ON (local_irq_disable/
 * enable). Lock names: A B C D are distinct classes; X1 X2 two instances of class X. Plain locks
 * (for rows mixing rw locks with ordinary ones) are written lower-case: b c.
 */
function run(col: Col, script: string, opts: { recursive?: boolean } = {}): string[] {
  const o = ops(col);
  const kinds: string[] = [];
  const p: Program = {
    name: `selftest:${col}:${script}`,
    setup(sim) {
      const m = new Machine(sim, { cpus: 1 });
      installLockdep(m, { forceReadLockRecursive: opts.recursive ?? true });
      const locks = new Map<string, Lock>();
      const get = (n: string): Lock => {
        let l = locks.get(n);
        if (l === undefined) {
          const plain = n === n.toLowerCase();
          l = o.make(m, /^X\d$/.test(n) ? 'X' : n.toUpperCase(), plain);
          locks.set(n, l);
        }
        return l;
      };
      const toks = script.trim().split(/\s+/);
      m.kthread('selftest', 0, function* (cur) {
        const saved: boolean[] = [];
        for (const tok of toks) {
          const mm = /^(L|U|R|RU|W|WU|T|I)\((\w+)\)$/.exec(tok);
          if (mm) {
            const l = get(mm[2]);
            if (mm[1] === 'L') yield* o.lock(cur, l);
            else if (mm[1] === 'U') yield* o.unlock(cur, l);
            else if (mm[1] === 'R') yield* o.read(cur, l, false);
            else if (mm[1] === 'RU') yield* o.read(cur, l, true);
            else if (mm[1] === 'W') yield* o.write(cur, l, false);
            else if (mm[1] === 'WU') yield* o.write(cur, l, true);
            else if (mm[1] === 'I') lock_reinit(cur, l);
            else yield* spin_trylock(cur, l as spinlock_t);
          } else if (tok === 'IRQ{') {
            saved.push(cur.thread.interruptible);
            cur.thread.interruptible = false;
            cur.preempt_count += HARDIRQ_OFFSET;
          } else if (tok === 'SIRQ{') {
            saved.push(cur.thread.interruptible);
            cur.preempt_count += SOFTIRQ_OFFSET;
            cur.thread.interruptible = true;
          } else if (tok === '}') {
            cur.preempt_count -= (cur.preempt_count & 0xf0000) !== 0 ? HARDIRQ_OFFSET : SOFTIRQ_OFFSET;
            cur.thread.interruptible = saved.pop()!;
          } else if (tok === 'OFF') cur.thread.interruptible = false;
          else if (tok === 'ON') cur.thread.interruptible = true;
          else throw new Error(`bad token ${tok}`);
        }
      });
    },
  };
  const r = new Engine({ stepBudget: 10_000 }).run(p, new ReplayStrategy([], 'lenient'), 0, 50);
  for (const f of r.findings) if (f.kind === 'lockdep') kinds.push(f.subkind ?? '');
  return kinds;
}

const verdict = (k: string[]): string => (k.length > 0 ? 'F' : 'S');

/** The 6 orders the selftests' "6" macros run three events in. */
const PERMS = ['123', '132', '213', '231', '312', '321'];

describe('lockdep: the locking selftest matrix', () => {
  const families: [string, string, string][] = [
    // name, script, expected per column spin wlock rlock mutex wsem rsem
    ['A-A deadlock (AA)', 'L(X1) L(X2) U(X2) U(X1)', 'FFSFFF'],
    ['A-B-B-A deadlock', 'L(A) L(B) U(B) U(A) L(B) L(A) U(A) U(B)', 'FFSFFF'],
    ['A-B-B-C-C-A', 'L(A) L(B) U(B) U(A) L(B) L(C) U(C) U(B) L(C) L(A) U(A) U(C)', 'FFSFFF'],
    ['A-B-C-A-B-C', 'L(A) L(B) U(B) U(A) L(C) L(A) U(A) U(C) L(B) L(C) U(C) U(B)', 'FFSFFF'],
    ['A-B-B-C-C-D-D-A', 'L(A) L(B) U(B) U(A) L(B) L(C) U(C) U(B) L(C) L(D) U(D) U(C) L(D) L(A) U(A) U(D)', 'FFSFFF'],
    ['A-B-C-D-B-D-D-A', 'L(A) L(B) U(B) U(A) L(C) L(D) U(D) U(C) L(B) L(D) U(D) U(B) L(D) L(A) U(A) U(D)', 'FFSFFF'],
    ['A-B-C-D-B-C-D-A', 'L(A) L(B) U(B) U(A) L(C) L(D) U(D) U(C) L(B) L(C) U(C) U(B) L(D) L(A) U(A) U(D)', 'FFSFFF'],
    ['double unlock', 'L(A) U(A) U(A)', 'FFFFFF'],
    ['initialize held', 'L(A) I(A)', 'FFFFFF'],
    ['bad unlock order (not an error)', 'L(A) L(B) U(A) U(B)', 'SSSSSS'],
  ];
  for (const [name, script, expected] of families) {
    it(`${name}: ${expected.split('').map((e, i) => `${COLS[i]} ${e}`).join(', ')}`, () => {
      const got = COLS.map((c) => verdict(run(c, script))).join('');
      expect(got).to.equal(expected);
    });
  }

  it('correct twins stay silent on every lock type (one order, nested and sequential use)', () => {
    for (const c of COLS) {
      expect(run(c, 'L(A) L(B) U(B) U(A) L(A) L(B) U(B) U(A) L(B) U(B)'), c).to.deep.equal([]);
      expect(run(c, 'L(A) L(B) L(C) U(C) U(B) U(A) L(B) L(C) U(C) U(B) L(A) L(C) U(C) U(A)'), c).to.deep.equal([]);
    }
  });

  it('reports the kernel headlines and subkinds', () => {
    expect(run('spin', 'L(X1) L(X2)')).to.deep.equal(['recursive']);
    expect(run('spin', 'L(A) L(B) U(B) U(A) L(B) L(A)')).to.deep.equal(['circular']);
    expect(run('spin', 'L(A) U(A) U(A)')).to.deep.equal(['bad_unlock']);
    expect(run('spin', 'L(A) I(A)')).to.deep.equal(['held_lock_freed']);
    expect(run('spin', 'L(A) U(A) I(A)')).to.deep.equal([]);
    expect(run('spin', 'L(A) U(A) IRQ{ L(A) U(A) }')).to.deep.equal(['inconsistent']);
    expect(run('spin', 'IRQ{ L(A) U(A) } L(B) U(B) OFF L(A) L(B) U(B) U(A) ON')).to.deep.equal(['irq_safe_unsafe']);
    expect(run('spin', 'OFF L(A) L(B) U(B) U(A) ON IRQ{ L(A) U(A) } L(B) U(B)')).to.deep.equal(['irq_inversion']);
  });

  it('reports once per run: the validator turns itself off after the first report', () => {
    expect(run('spin', 'L(X1) L(X2) U(X2) U(X1) L(A) U(A) U(A) L(B) L(C) U(C) U(B) L(C) L(B)')).to.deep.equal(['recursive']);
  });

  describe('read/write rows (rwlock_t vs rw_semaphore)', () => {
    const rows: [string, string, string][] = [
      ['recursive read-lock', 'R(X1) R(X1) RU(X1) RU(X1)', 'SF'],
      ['recursive read-lock #2', 'R(X1) R(X2) RU(X2) RU(X1)', 'SF'],
      ['mixed read-write-lock', 'R(X1) W(X2)', 'FF'],
      ['mixed write-read-lock', 'W(X1) R(X2)', 'FF'],
      ['mixed read-lock/lock-write ABBA', 'R(A) L(b) U(b) RU(A) L(b) W(A) WU(A) U(b)', 'FF'],
      ['mixed read-lock/lock-read ABBA', 'R(A) L(b) U(b) RU(A) L(b) R(A) RU(A) U(b)', 'SF'],
      ['mixed write-lock/lock-write ABBA', 'W(A) L(b) U(b) WU(A) L(b) W(A) WU(A) U(b)', 'FF'],
    ];
    for (const [name, script, expected] of rows) {
      it(`${name}: rwlock ${expected[0]}, rwsem ${expected[1]}`, () => {
        expect(verdict(run('wlock', script)) + verdict(run('wsem', script))).to.equal(expected);
      });
    }
    it('chain cached mixed R-L/L-W ABBA: rwlock F (read-ness is part of the chain key)', () => {
      expect(verdict(run('wlock', 'R(A) L(b) U(b) RU(A) L(b) R(A) RU(A) U(b) L(b) W(A) WU(A) U(b)'))).to.equal('F');
    });
    it('three-lock cycles through recursive readers', () => {
      const cases: [string, string][] = [
        ['W(A) R(B) RU(B) WU(A) W(B) R(C) RU(C) WU(B) W(C) R(A) RU(A) WU(C)', 'F'], // W1R2/W2R3/W3R1
        ['W(A) W(B) WU(B) WU(A) R(B) R(C) RU(C) RU(B) W(C) R(A) RU(A) WU(C)', 'F'], // W1W2/R2R3/W3R1
        ['W(A) W(B) WU(B) WU(A) R(B) R(C) RU(C) RU(B) R(C) W(A) WU(A) RU(C)', 'S'], // W1W2/R2R3/R3W1
        ['W(A) R(B) RU(B) WU(A) R(B) R(C) RU(C) RU(B) W(C) W(A) WU(A) WU(C)', 'S'], // W1R2/R2R3/W3W1
      ];
      for (const [s, e] of cases) expect(verdict(run('wlock', s)), s).to.equal(e);
    });
    it('queued rwlocks (no forced recursion): task-context readers are not recursive, IRQ readers are', () => {
      // hardirq read-lock / lock-read: F; lock-read / read-lock: S (queued_read_lock selftests)
      expect(verdict(run('wlock', 'IRQ{ R(A) RU(A) } L(b) U(b) OFF R(A) L(b) U(b) RU(A) ON', { recursive: false }))).to.equal('S');
      expect(verdict(run('wlock', 'R(A) RU(A) R(A) L(b) U(b) RU(A) L(b) R(A) RU(A) U(b)', { recursive: false }))).to.equal('F');
    });
  });

  describe('IRQ-context families (hard and soft, every order; spin F, wlock F, rlock S)', () => {
    const enter = (soft: boolean) => (soft ? 'SIRQ{' : 'IRQ{');
    /** Wrap the irq-off parts: for softirq variants, bottom halves; here IRQs off covers both. */
    const fams: [string, (soft: boolean) => string[]][] = [
      ['irqs-on + irq-safe-A', (s) => ['L(A) U(A)', `${enter(s)} L(A) U(A) }`]],
      ['safe-A + irqs-on', (s) => [`${enter(s)} L(A) U(A) }`, 'L(A) U(A)']],
      ['safe-A + unsafe-B #1', (s) => [`${enter(s)} L(A) U(A) }`, 'L(B) U(B)', 'OFF L(A) L(B) U(B) U(A) ON']],
      ['safe-A + unsafe-B #2', (s) => ['OFF L(A) L(B) U(B) U(A) ON', `${enter(s)} L(A) U(A) }`, 'L(B) U(B)']],
      ['irq lock-inversion', (s) => ['OFF L(A) L(B) U(B) U(A) ON', 'L(B) U(B)', `${enter(s)} L(A) U(A) }`]],
    ];
    for (const [name, fam] of fams) {
      it(name, () => {
        for (const soft of [false, true]) {
          const events = fam(soft);
          const orders = events.length === 3 ? PERMS : ['12', '21'];
          for (const ord of orders) {
            const script = ord
              .split('')
              .map((d) => events[Number(d) - 1])
              .join(' ');
            // softirq variants disable bottom halves where the hard ones disable IRQs: OFF covers
            // both here (IRQs off also keeps softirqs from running), so the verdicts match.
            const got = (['spin', 'wlock', 'rlock'] as Col[]).map((c) => verdict(run(c, script))).join('');
            expect(got, `${soft ? 'soft' : 'hard'} ${ord}: ${script}`).to.equal('FFS');
          }
        }
      });
    }
    it('irq read-recursion: an IRQ reader of a lock held for read elsewhere is fine, a writer is not', () => {
      for (const ord of PERMS) {
        const ev = (x: string) => ['OFF R(A) L(b) U(b) RU(A) ON', 'L(b) U(b)', `IRQ{ ${x}(A) ${x}U(A) }`];
        const script = (x: string) =>
          ord
            .split('')
            .map((d) => ev(x)[Number(d) - 1])
            .join(' ');
        expect(verdict(run('wlock', script('W'))), `W ${ord}`).to.equal('F');
        expect(verdict(run('wlock', script('R'))), `R ${ord}`).to.equal('S');
      }
    });
  });

  describe('false-positive traps', () => {
    it('a lock used in hardirq and process context, always with IRQs off in process context', () => {
      expect(run('spin', 'OFF L(A) U(A) ON IRQ{ L(A) U(A) } OFF L(A) L(B) U(B) U(A) ON IRQ{ L(A) U(A) }')).to.deep.equal([]);
    });
    it('a trylock in an IRQ of a lock the interrupted task holds', () => {
      expect(run('spin', 'L(A) IRQ{ T(A) } U(A)')).to.deep.equal([]);
    });
    it("handler locks are not chained after the interrupted task's locks", () => {
      // task: B then (irq) A; elsewhere A then B with IRQs off: no A/B cycle through contexts
      expect(run('spin', 'L(B) IRQ{ L(A) U(A) } U(B) OFF L(A) L(B) U(B) U(A) ON').filter((k) => k === 'circular')).to.deep.equal([]);
    });
    it('trylock adds no dependency into the trylocked lock, but does from it', () => {
      expect(run('spin', 'L(A) T(B) U(B) U(A) L(B) L(A) U(A) U(B)')).to.deep.equal([]);
      expect(run('spin', 'T(A) L(B) U(B) U(A) L(B) L(A) U(A) U(B)')).to.deep.equal(['circular']);
    });
  });
});

describe('lockdep: fs_reclaim (the memory model hook)', () => {
  const nest = (body: (cur: Task) => Generator<unknown, void, unknown>): string[] => {
    const p: Program = {
      name: 'fs_reclaim',
      setup(sim) {
        const m = new Machine(sim, { cpus: 1 });
        installLockdep(m);
        m.kthread('t', 0, body);
      },
    };
    return new Engine().run(p, new ReplayStrategy([], 'lenient'), 0, 50).findings.filter((f) => f.kind === 'lockdep').map((f) => f.subkind ?? '');
  };
  it('correct nesting S, wrong nesting F, protected nesting S (the selftests)', () => {
    expect(
      nest(function* (cur) {
        fs_reclaim_acquire(cur, GFP_KERNEL);
        yield* might_alloc(cur, GFP_NOFS);
        fs_reclaim_release(cur, GFP_KERNEL);
      }),
    ).to.deep.equal([]);
    expect(
      nest(function* (cur) {
        fs_reclaim_acquire(cur, GFP_KERNEL);
        yield* might_alloc(cur, GFP_KERNEL);
        fs_reclaim_release(cur, GFP_KERNEL);
      }),
    ).to.deep.equal(['recursive']);
    expect(
      nest(function* (cur) {
        fs_reclaim_acquire(cur, GFP_KERNEL);
        const f = memalloc_nofs_save(cur);
        yield* might_alloc(cur, GFP_KERNEL);
        memalloc_nofs_restore(cur, f);
        fs_reclaim_release(cur, GFP_KERNEL);
      }),
    ).to.deep.equal([]);
  });
  it('a GFP_KERNEL allocation under a lock reclaim also takes: circular through fs_reclaim', () => {
    const k = nest(function* (cur) {
      const m = cur.cpu.machine;
      const l = DEFINE_MUTEX(m, 'shrinker_mutex');
      fs_reclaim_acquire(cur, GFP_KERNEL); // reclaim runs the shrinker, which takes the mutex
      yield* mutex_lock(cur, l);
      yield* mutex_unlock(cur, l);
      fs_reclaim_release(cur, GFP_KERNEL);
      yield* mutex_lock(cur, l);
      yield* might_alloc(cur, GFP_KERNEL); // and allocates under it elsewhere
      yield* mutex_unlock(cur, l);
    });
    expect(k).to.deep.equal(['circular']);
  });
});
