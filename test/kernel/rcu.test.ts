import { expect } from 'chai';
import { Engine, hunt, makeStrategy, type Program, type RunResult } from '../../scheduler';
import { Machine, fn, in_serving_softirq, type MachineOptions, type Task } from '../../lib/kernel';
import {
  DEFINE_RCU_POINTER,
  call_rcu,
  kfree_rcu,
  rcu_assign_pointer,
  rcu_barrier,
  rcu_dereference,
  rcu_dereference_protected,
  rcu_dereference_sched,
  rcu_pointer_handoff,
  rcu_read_lock,
  rcu_read_lock_bh,
  rcu_read_lock_sched,
  rcu_read_unlock,
  rcu_read_unlock_bh,
  rcu_read_unlock_sched,
  rcuStateIfUsed,
  synchronize_rcu,
} from '../../lib/kernel/rcu';
import { READ_ONCE, WRITE_ONCE, kfree, kobject_alloc, kzalloc_obj } from '../../lib/kernel/object';
import { kernelProgram, everySchedule as every } from '../support/kernel';

type Log = string[];

/** Programs here also log grace-period starts and ends. */
const prog = (name: string, opts: MachineOptions, body: (m: Machine, log: Log) => void): Program =>
  kernelProgram(name, opts, (m, log) => {
    m.addHooks({ rcuGracePeriod: (e, id) => log.push(`gp-${e} ${id}`) });
    body(m, log);
  });

const everySchedule = (p: Program, check: (log: Log, r: RunResult) => void, bounds: { preemptionBound?: number; irqBound?: number } = {}, limit = 20_000): number =>
  every(p, check, { ...bounds, limit });

const at = (log: Log, entry: string): number => log.indexOf(entry);

/** A reader that takes one visible step inside its section, logging its boundaries. */
function* reader(cur: Task, log: Log, name: string): Generator<unknown, void, unknown> {
  yield* rcu_read_lock(cur);
  log.push(`lock ${name}`);
  yield cur.thread.point();
  log.push(`unlock ${name}`);
  yield* rcu_read_unlock(cur);
}

describe('RCU grace periods', () => {
  it('synchronize_rcu waits for every reader that was active at the call and for no later one (exhaustive DFS)', () => {
    let laterNotWaited = 0;
    let earlierWaited = 0;
    const p = prog('sync', { cpus: 3 }, (m, log) => {
      m.kthread('r0', 0, (cur) => reader(cur, log, 'r0'));
      m.kthread('r2', 2, (cur) => reader(cur, log, 'r2'));
      m.kthread('upd', 1, function* (cur) {
        yield* synchronize_rcu(cur);
        log.push('sync returned');
      });
    });
    const n = everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      const start = at(log, 'gp-start 1');
      const end = at(log, 'gp-end 1');
      expect(start).to.be.at.least(0);
      expect(end).to.be.greaterThan(start);
      expect(at(log, 'sync returned')).to.be.greaterThan(end);
      for (const x of ['r0', 'r2']) {
        const lock = at(log, `lock ${x}`);
        const unlock = at(log, `unlock ${x}`);
        if (lock < start) {
          expect(unlock, `${x} began before the grace period: ${log.join(', ')}`).to.be.lessThan(end);
          if (unlock > start) earlierWaited++;
        } else if (unlock > end) laterNotWaited++;
      }
    });
    expect(n).to.be.greaterThan(10);
    expect(earlierWaited, 'some schedule makes the grace period wait for a reader').to.be.greaterThan(0);
    expect(laterNotWaited, 'some schedule has a reader begin and outlive the grace period').to.be.greaterThan(0);
  });

  it('a request made while a grace period runs waits for the next one', () => {
    const p = prog('two', { cpus: 3 }, (m, log) => {
      m.kthread('r0', 0, (cur) => reader(cur, log, 'r0'));
      m.kthread('u1', 1, function* (cur) {
        yield* synchronize_rcu(cur);
        log.push('u1 returned');
      });
      m.kthread('u2', 2, function* (cur) {
        yield* synchronize_rcu(cur);
        log.push('u2 returned');
      });
    });
    let twoGps = 0;
    everySchedule(p, (log) => {
      if (at(log, 'gp-start 2') >= 0) {
        twoGps++;
        expect(at(log, 'gp-start 2')).to.be.greaterThan(at(log, 'gp-end 1'));
      }
      expect(log.filter((l) => l.endsWith('returned'))).to.have.length(2);
    }, { preemptionBound: 2 });
    expect(twoGps).to.be.greaterThan(0);
  });

  it('nested rcu_read_lock keeps one section until the outermost unlock; bh and sched flavours count as readers', () => {
    const p = prog('nested', { cpus: 2 }, (m, log) => {
      m.kthread('r', 0, function* (cur) {
        yield* rcu_read_lock(cur);
        yield* rcu_read_lock(cur);
        log.push(`depth ${cur.rcu_read_depth}`);
        yield cur.thread.point();
        yield* rcu_read_unlock(cur);
        log.push(`inner unlock, depth ${cur.rcu_read_depth}`);
        yield cur.thread.point();
        yield* rcu_read_unlock(cur);
        log.push(`outer unlock, depth ${cur.rcu_read_depth}`);
        yield* rcu_read_lock_bh(cur);
        log.push(`bh pc ${cur.preempt_count.toString(16)}`);
        yield cur.thread.point();
        log.push('bh unlock');
        yield* rcu_read_unlock_bh(cur);
        yield* rcu_read_lock_sched(cur);
        log.push(`sched pc ${cur.preempt_count.toString(16)}`);
        yield cur.thread.point();
        log.push('sched unlock');
        yield* rcu_read_unlock_sched(cur);
        log.push(`end pc ${cur.preempt_count}`);
      });
      m.kthread('u', 1, function* (cur) {
        for (let i = 0; i < 3; i++) {
          yield* synchronize_rcu(cur);
          log.push(`sync ${i} returned`);
        }
      });
    });
    everySchedule(p, (log) => {
      expect(log).to.include.members(['depth 2', 'inner unlock, depth 1', 'outer unlock, depth 0', 'bh pc 200', 'sched pc 1', 'end pc 0']);
      // Whatever section a grace period started in, it ends after that section's (outermost) unlock.
      for (let id = 1; at(log, `gp-start ${id}`) >= 0; id++) {
        const s = at(log, `gp-start ${id}`);
        const e = at(log, `gp-end ${id}`);
        const inSection = (open: string, close: string) => at(log, open) >= 0 && at(log, open) < s && s < at(log, close);
        if (inSection('depth 2', 'outer unlock, depth 0')) expect(e).to.be.greaterThan(at(log, 'inner unlock, depth 1'));
        if (inSection('bh pc 200', 'bh unlock')) expect(e).to.be.greaterThan(at(log, 'bh unlock'));
        if (inSection('sched pc 1', 'sched unlock')) expect(e).to.be.greaterThan(at(log, 'sched unlock'));
      }
    });
  });

  it('synchronize_rcu inside rcu_read_lock: might_sleep reports the RCU nest depth (PREEMPT_RCU), and the caller deadlocks on itself', () => {
    const p = prog('self', { cpus: 1, preemption: 'full' }, (m) => {
      m.kthread('t', 0, function* (cur) {
        yield* fn(cur, 'foo_update', (function* () {
          yield* rcu_read_lock(cur);
          yield* synchronize_rcu(cur);
          yield* rcu_read_unlock(cur);
        })());
      });
    });
    const h = hunt(p, { iterations: 5, strategy: 'dfs', stopAtFirst: false });
    expect(h.findings.map((f) => f.kind).sort()).to.deep.equal(['deadlock', 'might_sleep']);
    expect(h.findings.find((x) => x.kind === 'deadlock')!.text).to.match(/wait-for cycle of 1 context/);
    const f = h.findings.find((x) => x.kind === 'might_sleep')!;
    expect(f.text).to.match(/^BUG: sleeping function called from invalid context at kernel\/rcu\/tree.c/);
    expect(f.text).to.match(/RCU nest depth: 1, expected: 0/);
    expect(f.text).to.match(/__might_resched\n synchronize_rcu\n foo_update/);
  });
});

describe('RCU callbacks', () => {
  it('call_rcu runs the callback in RCU_SOFTIRQ on the queuing CPU, after every reader active at the call (exhaustive DFS)', () => {
    const p = prog('call_rcu', { cpus: 2 }, (m, log) => {
      m.kthread('r', 0, (cur) => reader(cur, log, 'r'));
      m.kthread('u', 1, function* (cur) {
        yield* call_rcu(cur, { name: 'head' }, function* foo_free_rcu(c: Task, head: { name: string }) {
          log.push(`cb ${head.name} cpu${c.cpu.id} softirq=${in_serving_softirq(c.preempt_count)} ${c.context} ${[...c.stack].reverse().slice(0, 3).join('<')}`);
        });
        log.push('queued');
      });
    });
    let delayed = 0;
    const n = everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      const cb = log.findIndex((l) => l.startsWith('cb '));
      expect(cb, log.join(', ')).to.be.at.least(0);
      expect(log[cb]).to.equal('cb head cpu1 softirq=true softirq RCU foo_free_rcu<rcu_do_batch<rcu_core');
      if (at(log, 'lock r') < at(log, 'queued')) {
        expect(cb).to.be.greaterThan(at(log, 'unlock r'));
        delayed++;
      }
    });
    expect(n).to.be.greaterThan(3);
    expect(delayed).to.be.greaterThan(0);
  });

  it('rcu_barrier returns only after every callback queued before it has run', () => {
    const p = prog('barrier', { cpus: 3 }, (m, log) => {
      m.kthread('r', 0, (cur) => reader(cur, log, 'r'));
      for (const cpu of [1, 2]) {
        m.kthread(`u${cpu}`, cpu, function* (cur) {
          yield* call_rcu(cur, cpu, function* cb(c: Task, h: number) {
            log.push(`cb ${h} on cpu${c.cpu.id}`);
          });
          if (cpu === 1) {
            yield* rcu_barrier(cur);
            log.push('barrier done');
          }
        });
      }
    });
    everySchedule(p, (log) => {
      const done = at(log, 'barrier done');
      expect(done).to.be.greaterThan(at(log, 'cb 1 on cpu1'));
      expect(at(log, 'cb 1 on cpu1')).to.be.at.least(0);
      expect(at(log, 'cb 2 on cpu2')).to.be.at.least(0);
    }, { preemptionBound: 1, irqBound: 1 });
  });

  it('a machine that never calls call_rcu gets no extra threads, interrupt lines or softirq actions', () => {
    const counts = (use: 'none' | 'read' | 'call') => {
      const e = new Engine();
      const p = prog(`use-${use}`, { cpus: 2 }, (m) => {
        m.kthread('t', 0, function* (cur) {
          if (use !== 'none') {
            yield* rcu_read_lock(cur);
            yield* rcu_read_unlock(cur);
          }
          if (use === 'call') yield* kfree_rcu(cur, kobject_alloc(m, 'foo', { a: 1 }));
        });
      });
      const r = e.run(p, makeStrategy({}), 1, 50);
      const m = (e.world as { m: Machine }).m;
      return { threads: e.threads.length, sources: e.sources.length, rcuSoftirq: m.softirq.actions[9] !== null, tickHooks: m.tick.tickHooks.length, timers: r.metrics.timers };
    };
    const none = counts('none');
    expect(counts('read')).to.deep.equal(none);
    const call = counts('call');
    expect(call.threads).to.equal(none.threads);
    expect(call.sources).to.equal(none.sources);
    expect(none.rcuSoftirq).to.equal(false);
    expect(call.rcuSoftirq).to.equal(true);
    expect(call.tickHooks).to.equal(none.tickHooks + 1);
  });
});

/** A reader and an updater of one RCU pointer; `update` frees the old object its own way. */
function pair(name: string, update: (cur: Task, old: ReturnType<typeof kobject_alloc>) => Generator<unknown, void, unknown>, readerBody?: (cur: Task, gp: ReturnType<typeof DEFINE_RCU_POINTER>) => Generator<unknown, void, unknown>): Program {
  return prog(name, { cpus: 2 }, (m) => {
    const gp = DEFINE_RCU_POINTER(m, 'gp', kobject_alloc(m, 'foo', { a: 1 }, { size: 64 }));
    m.kthread('reader', 0, function* (cur) {
      yield* fn(cur, 'foo_read', readerBody
        ? readerBody(cur, gp)
        : (function* () {
            yield* rcu_read_lock(cur);
            const p = yield* rcu_dereference(cur, gp);
            if (p !== null) yield* READ_ONCE(cur, p, 'a');
            yield* rcu_read_unlock(cur);
          })());
    });
    m.kthread('updater', 1, function* (cur) {
      yield* fn(cur, 'foo_remove', (function* () {
        const old = yield* rcu_dereference_protected(cur, gp);
        yield* rcu_assign_pointer(cur, gp, null);
        yield* update(cur, old!);
      })());
    });
  });
}

const fingerprints = (p: Program, opts = {}) => hunt(p, { strategy: 'dfs', iterations: 5000, stopAtFirst: false, ...opts }).findings.map((f) => f.fingerprint).sort();

describe('rcu detector', () => {
  it('reports a free while a reader that dereferenced the object is still in its section, and the KASAN access after it', () => {
    const h = hunt(pair('kfree', (cur, old) => kfree(cur, old)), { strategy: 'dfs', iterations: 5000, stopAtFirst: false });
    expect(h.exhausted).to.equal(true);
    expect(h.findings.map((f) => f.fingerprint).sort()).to.deep.equal([
      'rcu:use_after_free:freed_under_reader:foo@foo_remove',
      'rcu:use_after_free:kasan:foo@foo_read',
    ]);
    for (const f of h.findings) {
      expect(f.kind).to.equal('rcu');
      expect(f.subkind).to.equal('use_after_free');
      expect(f.fatal).to.equal(false);
      expect((f.data as { cpuStates: unknown[] }).cpuStates).to.have.length.greaterThan(0);
    }
    const free = h.findings.find((f) => f.fingerprint.includes('freed_under_reader'))!;
    expect(free.text).to.match(/WARNING: RCU: object freed while a reader may still hold it/);
    expect(free.text).to.match(/foo_remove: kfree\(\) of foo#1 \(kmalloc-64, ffff8881[0-9a-f]{8}\) by updater\/2 on CPU1 without waiting for an RCU grace period/);
    expect(free.text).to.match(/reader\/1 in task, running on CPU0: rcu_read_lock\(\) at foo_read, section #1/);
    const uaf = h.findings.find((f) => f.fingerprint.includes('kasan'))!;
    expect(uaf.text).to.match(/^={66}\nBUG: KASAN: slab-use-after-free in foo_read\nRead of size 8 at addr ffff8881[0-9a-f]{8} by task reader\/1\n/);
    expect(uaf.text).to.match(/Freed by task 2 on cpu 1 at [0-9.]+s:\n kfree\n foo_remove/);
    expect(uaf.text).to.match(/which belongs to the cache kmalloc-64 of size 64/);
    expect(uaf.text).to.match(/irqsim: RCU: this reader obtained foo#1 with rcu_dereference\(\) in its read-side section #1/);
  });

  it('stays silent for synchronize_rcu before kfree, kfree_rcu and call_rcu (exhaustive DFS)', () => {
    expect(fingerprints(pair('sync', function* (cur, old) {
      yield* synchronize_rcu(cur);
      yield* kfree(cur, old);
    }))).to.deep.equal([]);
    expect(fingerprints(pair('kfree_rcu', (cur, old) => kfree_rcu(cur, old)))).to.deep.equal([]);
    expect(fingerprints(pair('call_rcu', (cur, old) => call_rcu(cur, old, function* foo_free(c: Task, o: typeof old) {
      yield* kfree(c, o);
    })))).to.deep.equal([]);
  });

  it('reports an object freed by kfree_rcu while still reachable: the grace period cannot cover readers that come later', () => {
    // The updater queues the free without unpublishing: a reader that starts after the grace
    // period began can still find the object when the callback frees it.
    const p = prog('reachable', { cpus: 2 }, (m) => {
      const gp = DEFINE_RCU_POINTER(m, 'gp', kobject_alloc(m, 'foo', { a: 1 }));
      m.kthread('reader', 0, function* (cur) {
        yield* fn(cur, 'foo_read', (function* () {
          yield* rcu_read_lock(cur);
          const p = yield* rcu_dereference(cur, gp);
          yield cur.thread.point();
          yield* READ_ONCE(cur, p!, 'a');
          yield* rcu_read_unlock(cur);
        })());
      });
      m.kthread('updater', 1, function* (cur) {
        yield* fn(cur, 'foo_retire', (function* () {
          const old = yield* rcu_dereference_protected(cur, gp);
          yield* kfree_rcu(cur, old);
        })());
      });
    });
    const h = hunt(p, { strategy: 'dfs', iterations: 5000, stopAtFirst: false });
    const free = h.findings.find((f) => f.fingerprint === 'rcu:use_after_free:freed_under_reader:foo@kfree_rcu_cb')!;
    expect(free.text).to.match(/kfree_rcu\(\) of foo#1 .* by an RCU callback \(queued by updater\/2 in foo_retire\) after grace period #1, which did not cover the reader's section/);
    expect(free.text).to.match(/Call Trace:\n <IRQ>\n kfree\n kfree_rcu_cb\n rcu_do_batch\n rcu_core\n __do_softirq/);
    const uaf = h.findings.find((f) => f.fingerprint === 'rcu:use_after_free:kasan:foo@foo_read')!;
    expect(uaf.text).to.match(/Freed by task \d+ on cpu 1 at [0-9.]+s:\n kfree\n kfree_rcu_cb\n rcu_do_batch/);
    expect(uaf.text).to.match(/Last potentially related work creation:\n kasan_record_aux_stack\n call_rcu\n foo_retire/);
  });

  it('reports a freed object read or written, and a double free, in KASAN words: kind use_after_free when no RCU is involved', () => {
    const p = prog('plain', { cpus: 1 }, (m) => {
      m.kthread('t', 0, function* (cur) {
        const o = yield* fn(cur, 'bar_create', kzalloc_obj(cur, 'bar', { x: 0, y: 0 }, 100));
        yield* fn(cur, 'bar_destroy', kfree(cur, o));
        yield* fn(cur, 'bar_poke', WRITE_ONCE(cur, o, 'y', 2));
        yield* fn(cur, 'bar_destroy_again', kfree(cur, o));
      });
    });
    const r = new Engine().run(p, makeStrategy({}), 1, 20);
    expect(r.findings.map((f) => f.fingerprint)).to.deep.equal(['use_after_free:kasan:bar@bar_poke', 'use_after_free:double_free:bar@bar_destroy_again']);
    expect(r.findings.map((f) => f.kind)).to.deep.equal(['use_after_free', 'use_after_free']);
    expect(r.findings[0].text).to.match(/Write of size 8 at addr ffff8881[0-9a-f]{5}008 by task t\/1/);
    expect(r.findings[0].text).to.match(/cache kmalloc-128 of size 100\nThe buggy address is located 8 bytes inside of/);
    // no RCU in sight: KASAN's text only, no irqsim RCU note
    expect(r.findings[0].text).to.not.match(/RCU/);
    expect(r.findings[0].text).to.match(/Allocated by task 1 on cpu 0 at [0-9.]+s:\n kzalloc\n bar_create\n/);
    expect(r.findings[1].text).to.match(/BUG: KASAN: double-free in bar_destroy_again\nFree of addr/);
    // KASAN prints its first report only (no kasan_multi_shot); both are findings.
    expect(r.findings.map((f) => f.logged)).to.deep.equal([true, false]);
  });

  it('reports a pointer from rcu_dereference used after rcu_read_unlock, unless handed off', () => {
    const stale = (handoff: boolean) =>
      prog(`stale-${handoff}`, { cpus: 1 }, (m) => {
        const gp = DEFINE_RCU_POINTER(m, 'gp', kobject_alloc(m, 'foo', { a: 1 }));
        m.kthread('t', 0, function* (cur) {
          yield* fn(cur, 'foo_lookup', (function* () {
            yield* rcu_read_lock(cur);
            let p = yield* rcu_dereference(cur, gp);
            if (handoff) p = rcu_pointer_handoff(cur, p); // e.g. after kref_get_unless_zero()
            yield* rcu_read_unlock(cur);
            yield* READ_ONCE(cur, p!, 'a');
          })());
        });
      });
    const h = hunt(stale(false), { iterations: 1 });
    expect(h.findings.map((f) => f.fingerprint)).to.deep.equal(['rcu:use_after_free:stale_pointer:foo@foo_lookup']);
    expect(h.findings[0].text).to.match(/^=+\nWARNING: suspicious RCU usage\n-+\nfoo_lookup: foo->a read through a pointer from rcu_dereference\(\) outside the read-side critical section that obtained it!/);
    expect(h.findings[0].text).to.match(/lockdep_rcu_suspicious\n foo_lookup/);
    expect(hunt(stale(true), { iterations: 1 }).findings).to.deep.equal([]);
  });

  it('reports rcu_dereference outside a read-side section with lockdep on; _sched is fine with preemption off', () => {
    const outside = (lockdep: boolean, sched: boolean) =>
      prog(`outside-${lockdep}-${sched}`, { cpus: 1, lockdep }, (m) => {
        const gp = DEFINE_RCU_POINTER(m, 'gp', null);
        m.kthread('t', 0, function* (cur) {
          yield* fn(cur, 'foo_peek', (function* () {
            if (!sched) yield* rcu_dereference(cur, gp);
            else {
              cur.preempt_count++;
              yield* rcu_dereference_sched(cur, gp);
              cur.preempt_count--;
            }
          })());
        });
      });
    const f = hunt(outside(true, false), { iterations: 1 }).findings;
    expect(f.map((x) => x.fingerprint)).to.deep.equal(['rcu:use_after_free:unprotected:rcu_pointer@foo_peek']);
    expect(f[0].text).to.match(/foo_peek: suspicious rcu_dereference_check\(\) usage!/);
    expect(hunt(outside(false, false), { iterations: 1 }).findings).to.deep.equal([]);
    expect(hunt(outside(true, true), { iterations: 1 }).findings).to.deep.equal([]);
  });
});

describe('RCU CPU stall warnings', () => {
  /**
   * A reader that stays in its section for `seconds` while an updater waits in synchronize_rcu.
   * Full preemption: the reader is preemptible (PREEMPT_RCU), so the watchdog sees no soft
   * lockup, only the RCU stall (with voluntary preemption the kernel would report both).
   */
  const longReader = (seconds: number) =>
    prog(`stall-${seconds}`, { cpus: 2, preemption: 'full' }, (m) => {
      m.kthread('scanner', 0, function* (cur) {
        yield* fn(cur, 'foo_scan', (function* () {
          yield* rcu_read_lock(cur);
          for (let i = 0; i < seconds; i++) {
            yield cur.thread.work(1_000_000_000);
            yield cur.thread.point();
          }
          yield* rcu_read_unlock(cur);
        })());
      });
      m.kthread('upd', 1, function* (cur) {
        yield cur.thread.work(1000);
        yield* synchronize_rcu(cur);
      });
    });

  it('timed mode: a grace period waiting 21 s for a reader is an rcu stall, and the run goes on', () => {
    const e = new Engine({ window: 0 });
    const r = e.run(longReader(30), makeStrategy({}), 1, 100);
    expect(r.endReason).to.equal('done');
    expect(r.findings.map((f) => `${f.kind}/${f.subkind} ${f.fingerprint}`)).to.deep.equal(['rcu/stall rcu:stall:rcu_read_lock@foo_scan']);
    const f = r.findings[0];
    expect(f.time).to.equal(21_000_000_000 + 1000);
    expect(f.text).to.match(/^rcu: INFO: rcu_preempt detected stalls on CPUs\/tasks:\nrcu: \t0-\.\.\.\.: \(5250 ticks this GP\)\nrcu: \t\(detected by 1, t=5250 jiffies, g=5, q=0 ncpus=2\)/);
    expect(f.text).to.match(/NMI backtrace for cpu 0\nCPU: 0 PID: 1 Comm: scanner \(task\)\nCall Trace:\n <TASK>\n foo_scan\n <\/TASK>/);
    expect(rcuStateIfUsed((e.world as { m: Machine }).m)!.completed).to.equal(1);
  });

  it('no stall under 21 s, and none in interleave mode however long the reader runs', () => {
    expect(new Engine({ window: 0 }).run(longReader(20), makeStrategy({}), 1, 100).findings).to.deep.equal([]);
    const h = hunt(longReader(30), { iterations: 20, stopAtFirst: false });
    expect(h.findings).to.deep.equal([]);
  });
});
