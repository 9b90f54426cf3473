import { expect } from 'chai';
import { Engine, hunt, makeStrategy, replay, type Program } from '../../scheduler';
import {
  DEFINE_MUTEX,
  DEFINE_SPINLOCK,
  Machine,
  fn,
  local_irq_disable,
  local_irq_enable,
  might_sleep,
  mutex_lock,
  mutex_unlock,
  on_each_cpu,
  preempt_disable,
  preempt_enable,
  raise_irq,
  rcu_read_lock,
  rcu_read_unlock,
  request_irq,
  smp_call_function_many,
  smp_call_function_single,
  spin_lock,
  spin_lock_irqsave,
  spin_unlock,
  spin_unlock_irqrestore,
  type MachineOptions,
  type Task,
} from '../../lib/kernel';
import { installDetectors } from '../../lib/check';

function machineProg(name: string, opts: MachineOptions, body: (m: Machine) => void): Program {
  return {
    name,
    params: { ...opts },
    setup(sim) {
      const m = new Machine(sim, opts);
      installDetectors(m);
      sim.world = m;
      body(m);
    },
  };
}

/** One task that calls might_sleep() inside `wrap`. */
function sleeper(name: string, wrap: (cur: Task, inner: () => Generator<unknown, void, unknown>) => Generator<unknown, void, unknown>, inIrq = false, opts: MachineOptions = { cpus: 1 }): Program {
  return machineProg(name, opts, (m) => {
    const call = function* (cur: Task) {
      yield* fn(cur, 'driver_op', wrap(cur, () => might_sleep(cur)));
    };
    if (inIrq) {
      const line = request_irq(m, 0, 'dev_irq', call);
      m.kthread('t', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.point();
      });
    } else m.kthread('t', 0, call);
  });
}

const kinds = (p: Program, iterations = 1) => hunt(p, { iterations, strategy: 'dfs', stopAtFirst: false }).findings.map((f) => f.kind);

describe('might_sleep detector', () => {
  const conditions: [string, Program, RegExp][] = [
    ['under a spinlock', sleeper('spin', (cur, inner) => (function* () {
      const l = DEFINE_SPINLOCK(cur.cpu.machine, 'l');
      yield* spin_lock(cur, l);
      yield* inner();
      yield* spin_unlock(cur, l);
    })()), /in_atomic\(\): 1, irqs_disabled\(\): 0.*\npreempt_count: 1, expected: 0/],
    ['with IRQs disabled', sleeper('irqoff', (cur, inner) => (function* () {
      yield* local_irq_disable(cur);
      yield* inner();
      yield* local_irq_enable(cur);
    })()), /in_atomic\(\): 0, irqs_disabled\(\): 1/],
    ['with preemption disabled', sleeper('preempt', (cur, inner) => (function* () {
      yield* preempt_disable(cur);
      yield* inner();
      yield* preempt_enable(cur);
    })()), /preempt_count: 1, expected: 0/],
    ['in a hardirq handler', sleeper('hardirq', (_cur, inner) => inner(), true), /preempt_count: 10000, expected: 0[^]*<IRQ>/],
    // PREEMPT_RCU (a preemptible kernel): rcu_read_lock counts the RCU nest depth
    ['in an RCU read-side section (PREEMPT_RCU)', sleeper('rcu', (cur, inner) => (function* () {
      yield* rcu_read_lock(cur);
      yield* inner();
      yield* rcu_read_unlock(cur);
    })(), false, { cpus: 1, preemption: 'full' }), /in_atomic\(\): 0, irqs_disabled\(\): 0.*\npreempt_count: 0, expected: 0\nRCU nest depth: 1, expected: 0/],
  ];
  for (const [what, p, text] of conditions) {
    it(`reports sleeping ${what}, with the kernel's splat`, () => {
      const h = hunt(p, { iterations: 50, strategy: 'dfs', stopAtFirst: false });
      expect(h.findings.map((f) => f.kind)).to.deep.equal(['might_sleep']);
      const f = h.findings[0];
      expect(f.text).to.match(/^BUG: sleeping function called from invalid context at include\/linux\/kernel.h/);
      expect(f.text).to.match(text);
      expect(f.text).to.match(/Call Trace:[^]*__might_resched\n might_sleep\n driver_op/);
    });
  }

  it('without PREEMPT_RCU (voluntary build) rcu_read_lock is preempt_disable: preempt_count 1, no RCU nest depth line, and PROVE_RCU\'s rcu_sleep_check', () => {
    const p = sleeper('rcu-vol', (cur, inner) => (function* () {
      yield* rcu_read_lock(cur);
      yield* inner();
      yield* rcu_read_unlock(cur);
    })(), false, { cpus: 1, preemption: 'voluntary' });
    const h = hunt(p, { iterations: 5, strategy: 'dfs', stopAtFirst: false });
    expect(h.findings.map((f) => f.kind)).to.deep.equal(['rcu', 'might_sleep']);
    const ms = h.findings.find((f) => f.kind === 'might_sleep')!;
    expect(ms.text).to.match(/in_atomic\(\): 1, irqs_disabled\(\): 0, non_block: 0, pid: \d+, name: t\npreempt_count: 1, expected: 0\n/);
    expect(ms.text).to.not.match(/RCU nest depth/);
    // rcu_preempt_sleep_check (PROVE_RCU && !PREEMPT_RCU): lockdep-RCU's splat, first
    const rcu = h.findings.find((f) => f.kind === 'rcu')!;
    expect(rcu.subkind).to.equal('illegal_context_switch');
    expect(rcu.text).to.match(/^=+\nWARNING: suspicious RCU usage\n-+\ninclude\/linux\/rcupdate.h: Illegal context switch in RCU read-side critical section!\n\nother info that might help us debug this:\n\n\nrcu_scheduler_active = 2, debug_locks = 1\n/);
    // lockdep off: no PROVE_RCU, so no rcu_sleep_check
    const off = sleeper('rcu-nold', (cur, inner) => (function* () {
      yield* rcu_read_lock(cur);
      yield* inner();
      yield* rcu_read_unlock(cur);
    })(), false, { cpus: 1, preemption: 'voluntary', lockdep: false });
    expect(kinds(off, 5)).to.deep.equal(['might_sleep']);
  });

  it('stays silent in process context with IRQs on', () => {
    expect(kinds(sleeper('ok', (_c, inner) => inner()), 100)).to.deep.equal([]);
  });

  it('mutex_lock under spin_lock_irqsave reports once per second in the log but counts every time', () => {
    const p = machineProg('repeat', { cpus: 1 }, (m) => {
      const l = DEFINE_SPINLOCK(m, 'dev_lock');
      const mu = DEFINE_MUTEX(m, 'cfg');
      m.kthread('drv', 0, function* (cur) {
        for (let i = 0; i < 5; i++) {
          const f = yield* spin_lock_irqsave(cur, l);
          yield* mutex_lock(cur, mu);
          yield* mutex_unlock(cur, mu);
          yield* spin_unlock_irqrestore(cur, l, f);
        }
      });
    });
    const e = new Engine();
    const r = e.run(p, makeStrategy({}), 1, 50);
    const f = r.findings.find((x) => x.kind === 'might_sleep')!;
    expect(f.count).to.equal(5);
    expect(f.loggedCount).to.equal(1);
    expect(f.text).to.match(/at kernel\/locking\/mutex.c/);
    expect((e.world as Machine).log.text().match(/BUG: sleeping function/g)).to.have.length(1);
  });

  it("ratelimits as __might_resched's prev_jiffy does: one splat per HZ jiffies for every call site, the rest counted as suppressed", () => {
    // splats at t = 0 (site a), 2 ms (site b), 1.002 s (site a again, jiffy 250 < 0 + HZ? no: printed), 1.5 s (b, suppressed)
    const p = machineProg('ratelimit', { cpus: 1, arch: 'arm' }, (m) => {
      m.kthread('t', 0, function* (cur) {
        const at = function* (site: string) {
          yield* local_irq_disable(cur);
          yield* fn(cur, site, might_sleep(cur));
          yield* local_irq_enable(cur);
        };
        yield* at('site_a');
        yield cur.thread.work(2_000_000);
        yield* at('site_b');
        yield cur.thread.work(1_000_000_000);
        yield* at('site_a');
        yield cur.thread.work(498_000_000);
        yield* at('site_b');
      });
    });
    const e = new Engine();
    const r = e.run(p, makeStrategy({}), 1, 100);
    const byFp = Object.fromEntries(r.findings.map((f) => [f.fingerprint, [f.count, f.loggedCount]]));
    expect(byFp).to.deep.equal({ 'might_sleep:might_sleep@site_a': [2, 2], 'might_sleep:might_sleep@site_b': [2, 0] });
    expect(r.metrics.counters).to.include({ 'might_sleep.printed': 2, 'might_sleep.suppressed': 2 });
    const log = (e.world as Machine).log.text();
    expect(log.match(/BUG: sleeping function/g)).to.have.length(2);
    expect(log).to.match(/irqs_disabled\(\): 128/); // 32-bit ARM prints the raw PSR I bit too
  });

  it('the ratelimit works in jiffies: a splat one second of jiffies after the printed one prints, even if less than 1e9 ns later', () => {
    // HZ 250: the first splat at 3.9 ms is jiffy 0; the second at 1.0 s is jiffy 250 = prev + HZ: printed
    const p = machineProg('ratelimit-jiffies', { cpus: 1 }, (m) => {
      m.kthread('t', 0, function* (cur) {
        yield cur.thread.work(3_900_000);
        yield* local_irq_disable(cur);
        yield* might_sleep(cur);
        yield* local_irq_enable(cur);
        yield cur.thread.work(1_000_000_000 - 3_900_000);
        yield* local_irq_disable(cur);
        yield* might_sleep(cur);
        yield* local_irq_enable(cur);
      });
    });
    const r = new Engine().run(p, makeStrategy({}), 1, 100);
    expect(r.findings[0].count).to.equal(2);
    expect(r.findings[0].loggedCount).to.equal(2);
  });

  it('prints irqs_disabled() as arm64 does (128) on an arm64 machine', () => {
    const p = machineProg('arm', { cpus: 1, arch: 'arm64' }, (m) => {
      m.kthread('t', 0, function* (cur) {
        yield* local_irq_disable(cur);
        yield* might_sleep(cur);
        yield* local_irq_enable(cur);
      });
    });
    const r = new Engine().run(p, makeStrategy({}), 1, 10);
    expect(r.findings[0].text).to.match(/irqs_disabled\(\): 128/);
  });
});

describe('cross-call detector', () => {
  const caller = (how: 'single' | 'many' | 'each', irqsOff: boolean, lockdep: boolean) =>
    machineProg(`xcall-${how}`, { cpus: 2, lockdep }, (m) => {
      m.kthread('t', 0, function* (cur) {
        if (irqsOff) yield* local_irq_disable(cur);
        const f = function* (x: Task) {
          yield x.thread.work(1);
        };
        if (how === 'single') yield* smp_call_function_single(cur, 1, f, false);
        else if (how === 'many') yield* smp_call_function_many(cur, [0, 1], f, false);
        else yield* on_each_cpu(cur, f, false);
        if (irqsOff) yield* local_irq_enable(cur);
      });
    });

  it('smp_call_function_single warns with IRQs off, with or without lockdep', () => {
    expect(kinds(caller('single', true, false))).to.deep.equal(['ipi_irqs_off']);
    expect(kinds(caller('single', true, true))).to.deep.equal(['ipi_irqs_off']);
    expect(kinds(caller('single', false, true))).to.deep.equal([]);
  });

  it('the many/each forms warn only when lockdep is on', () => {
    for (const how of ['many', 'each'] as const) {
      expect(kinds(caller(how, true, false)), how).to.deep.equal([]);
      expect(kinds(caller(how, true, true)), how).to.deep.equal(['ipi_irqs_off']);
      expect(kinds(caller(how, false, true)), how).to.deep.equal([]);
    }
  });

  it('every form warns outside task context', () => {
    const p = machineProg('xcall-irq', { cpus: 2, lockdep: false }, (m) => {
      const line = request_irq(m, 0, 'dev', function* (cur) {
        yield* smp_call_function_many(cur, [1], function* (x) {
          yield x.thread.work(1);
        }, false);
      });
      m.kthread('t', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.point();
      });
    });
    const h = hunt(p, { iterations: 20, strategy: 'dfs', stopAtFirst: false });
    expect(h.findings.map((f) => f.kind)).to.deep.equal(['ipi_irqs_off']);
    expect(h.findings[0].headline).to.match(/!in_task\(\)/);
  });
});

describe('deadlock detector', () => {
  it('names every participant of a three-CPU lock cycle (ABBCCA)', () => {
    const p = machineProg('abc', { cpus: 3 }, (m) => {
      const locks = ['a', 'b', 'c'].map((n) => DEFINE_SPINLOCK(m, `lock_${n}`));
      for (let i = 0; i < 3; i++) {
        m.kthread(`t${i}`, i, function* (cur) {
          yield* spin_lock(cur, locks[i]);
          yield* spin_lock(cur, locks[(i + 1) % 3]);
          yield* spin_unlock(cur, locks[(i + 1) % 3]);
          yield* spin_unlock(cur, locks[i]);
        });
      }
    });
    const h = hunt(p, { seed: 1, iterations: 2000, stopWhenSeen: ['deadlock'] });
    // lockdep predicts the ABBCCA cycle from the first schedule; the hunt goes on to the real one
    expect(h.findings.map((f) => `${f.kind}${f.subkind ? `/${f.subkind}` : ''}`)).to.deep.equal(['lockdep/circular', 'deadlock']);
    const f = h.findings[1];
    expect(f.text).to.match(/wait-for cycle of 3 contexts/);
    for (const n of ['lock_a', 'lock_b', 'lock_c']) expect(f.fingerprint).to.contain(n);
    // the replayed schedule reproduces the same finding text
    expect(replay(p, f.schedule).findings.find((x) => x.kind === 'deadlock')!.text).to.equal(f.text);
  });

  it('a lost wakeup without a cycle stays no_progress, not deadlock', () => {
    const p = machineProg('lost', { cpus: 1 }, (m) => {
      const mu = DEFINE_MUTEX(m, 'mu');
      m.kthread('owner', 0, function* (cur) {
        yield* mutex_lock(cur, mu); // never unlocked: the waiter sleeps forever
      });
      m.kthread('waiter', 0, function* (cur) {
        yield* mutex_lock(cur, mu);
      });
    });
    const h = hunt(p, { strategy: 'dfs', iterations: 50, stopAtFirst: false });
    // whichever task takes the mutex first, the other sleeps forever: two fingerprints
    expect(new Set(h.findings.map((f) => f.kind))).to.deep.equal(new Set(['no_progress']));
    expect(h.findings.map((f) => f.fingerprint).sort()).to.deep.equal(['no_progress:owner@owner:sleep', 'no_progress:waiter@waiter:sleep']);
  });
});
