import { expect } from 'chai';
import { hunt, type Program } from '../../scheduler';
import {
  DEFINE_MUTEX,
  DEFINE_SPINLOCK,
  HARDIRQ_OFFSET,
  Machine,
  PREEMPT_OFFSET,
  SOFTIRQ_DISABLE_OFFSET,
  SOFTIRQ_LOCK_OFFSET,
  in_irq,
  local_bh_disable,
  local_bh_enable,
  local_irq_disable,
  local_irq_enable,
  local_irq_restore,
  local_irq_save,
  msleep,
  mutex_lock,
  mutex_unlock,
  preempt_disable,
  preempt_enable,
  raise_irq,
  request_irq,
  smp_call_function_single,
  spin_lock,
  spin_lock_bh,
  spin_lock_irqsave,
  spin_trylock,
  spin_unlock,
  spin_unlock_bh,
  spin_unlock_irqrestore,
  type Task,
} from '../../lib/kernel';
import { kernelProgram as prog, everySchedule } from '../support/kernel';

describe('kernel execution model', () => {
  it('never delivers an IRQ where IRQs are off, and delivers it once they are on', () => {
    const p = prog('irqs-off', 1, (m, log) => {
      const line = request_irq(m, 0, 'dev', function* (cur) {
        log.push(`irq in ${cur.context} off=${cur.irqs_disabled} pc=${cur.preempt_count.toString(16)}`);
      });
      m.kthread('t', 0, function* (cur) {
        yield* local_irq_disable(cur);
        yield* raise_irq(cur, line);
        log.push('off-start');
        for (let i = 0; i < 3; i++) yield cur.thread.point();
        log.push('off-end');
        yield* local_irq_enable(cur);
        log.push('on');
      });
    });
    const n = everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      const irq = log.findIndex((l) => l.startsWith('irq'));
      expect(irq, log.join(' | ')).to.be.greaterThan(log.indexOf('off-end'));
      expect(log[irq]).to.equal('irq in hardirq dev off=true pc=10000');
    });
    expect(n).to.be.at.least(1);
  });

  it('nested contexts restore the interrupted state', () => {
    const p = prog('nesting', 1, (m, log) => {
      const line = request_irq(m, 0, 'dev', function* (cur) {
        log.push(`in irq: pc=${cur.preempt_count.toString(16)} depth=${cur.depth} ${in_irq(cur.preempt_count)}`);
        yield cur.thread.work(5);
      });
      m.kthread('t', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield* preempt_disable(cur);
        yield cur.thread.point();
        yield cur.thread.point();
        log.push(`after: pc=${cur.preempt_count} irqs_off=${cur.irqs_disabled} depth=${cur.depth} ctx=${cur.context}`);
        yield* preempt_enable(cur);
      });
    });
    const landed = new Set<string>();
    everySchedule(p, (log) => {
      const irq = log.find((l) => l.startsWith('in irq'))!;
      expect(irq).to.match(/^in irq: pc=1000[01] depth=1 true$/);
      landed.add(irq);
      expect(log).to.include('after: pc=1 irqs_off=false depth=0 ctx=task');
    });
    // it lands both outside and inside the preempt-disabled section
    expect(landed.size).to.equal(2);
  });

  it('preempt_count fields move as the kernel moves them', () => {
    const p = prog('counts', 1, (m, log) => {
      const l = DEFINE_SPINLOCK(m, 'l');
      m.kthread('t', 0, function* (cur: Task) {
        const seen = (what: string) => log.push(`${what}=${cur.preempt_count.toString(16)}`);
        yield* spin_lock(cur, l);
        seen('spin_lock');
        yield* spin_unlock(cur, l);
        yield* spin_lock_bh(cur, l);
        seen('spin_lock_bh');
        yield* spin_unlock_bh(cur, l);
        const f = yield* spin_lock_irqsave(cur, l);
        seen(`spin_lock_irqsave(off=${cur.irqs_disabled})`);
        yield* spin_unlock_irqrestore(cur, l, f);
        yield* local_bh_disable(cur);
        yield* preempt_disable(cur);
        seen('bh+preempt');
        yield* preempt_enable(cur);
        yield* local_bh_enable(cur);
        const f2 = yield* local_irq_save(cur);
        yield* local_irq_restore(cur, f2);
        seen(`end(off=${cur.irqs_disabled})`);
      });
    });
    everySchedule(p, (log) => {
      expect(log).to.deep.equal([
        `spin_lock=${PREEMPT_OFFSET.toString(16)}`,
        `spin_lock_bh=${SOFTIRQ_LOCK_OFFSET.toString(16)}`,
        'spin_lock_irqsave(off=true)=1',
        `bh+preempt=${(SOFTIRQ_DISABLE_OFFSET + PREEMPT_OFFSET).toString(16)}`,
        'end(off=false)=0',
      ]);
    });
    expect(HARDIRQ_OFFSET).to.equal(0x10000);
  });

  it('a sleeping task frees its CPU for another task', () => {
    const p = prog('sleep-frees-cpu', 1, (m, log) => {
      const mu = DEFINE_MUTEX(m, 'mu');
      m.kthread('holder', 0, function* (cur) {
        yield* mutex_lock(cur, mu);
        log.push('holder sleeps');
        yield* msleep(cur, 1);
        log.push('holder wakes');
        yield* mutex_unlock(cur, mu);
      });
      m.kthread('other', 0, function* (cur) {
        log.push('other runs');
        yield cur.thread.point();
      });
    });
    const orders = new Set<string>();
    everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      orders.add(log.join(','));
    });
    // the other task runs on the only CPU while the holder sleeps
    expect(orders).to.include('holder sleeps,other runs,holder wakes');
  });

  it('a task waiting for a contended mutex sleeps and gets it handed over', () => {
    const p = prog('mutex-handover', 2, (m, log) => {
      const mu = DEFINE_MUTEX(m, 'mu');
      for (const c of [0, 1]) {
        m.kthread(`t${c}`, c, function* (cur) {
          yield* mutex_lock(cur, mu);
          log.push(`in ${c}`);
          yield cur.thread.point();
          log.push(`out ${c}`);
          yield* mutex_unlock(cur, mu);
        });
      }
    });
    let n = 0;
    everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      // mutual exclusion: in/out pairs never interleave
      expect(log[0].slice(3)).to.equal(log[1].slice(4));
      expect(log[2].slice(3)).to.equal(log[3].slice(4));
      n++;
    });
    expect(n).to.be.greaterThan(2);
  });

  it('IPIs run on the target CPU in hardirq context', () => {
    const p = prog('ipi', 2, (m, log) => {
      m.kthread('caller', 0, function* (cur) {
        yield* smp_call_function_single(cur, 1, function* (x) {
          log.push(`on CPU${x.cpu.id} ${x.context} by ${x.comm} pc=${x.preempt_count.toString(16)}`);
          yield x.thread.work(1);
        }, true);
        log.push('returned');
      });
      m.kthread('busy', 1, function* (cur) {
        for (let i = 0; i < 3; i++) yield cur.thread.point();
      });
    });
    everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      expect(log[0]).to.match(/^on CPU1 hardirq call_function_ipi by (busy|swapper\/1) pc=10000$/);
      expect(log[1]).to.equal('returned');
    });
  });

  it('spin_trylock never waits', () => {
    const p = prog('trylock', 2, (m, log) => {
      const l = DEFINE_SPINLOCK(m, 'l');
      for (const c of [0, 1]) {
        m.kthread(`t${c}`, c, function* (cur) {
          if (yield* spin_trylock(cur, l)) {
            log.push(`got ${c}`);
            yield cur.thread.point();
            yield* spin_unlock(cur, l);
          } else log.push(`busy ${c}`);
        });
      }
    });
    const outcomes = new Set<string>();
    everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      outcomes.add([...log].sort().join(','));
    });
    expect(outcomes).to.include('busy 1,got 0');
    expect(outcomes).to.include('got 0,got 1');
  });

  it('full preemption lets another task take the CPU at a preemption point; none does not', () => {
    const mk = (preemption: 'none' | 'full'): Program => ({
      name: `preempt-${preemption}`,
      params: { preemption },
      setup(sim) {
        const m = new Machine(sim, { cpus: 1, preemption });
        const log: string[] = [];
        sim.world = { m, log };
        m.kthread('a', 0, function* (cur) {
          yield* preempt_disable(cur);
          log.push('a1');
          yield* preempt_enable(cur);
          log.push('a2');
        });
        m.kthread('b', 0, function* (cur) {
          log.push('b');
          yield cur.thread.point();
        });
      },
    });
    const orders = (p: Program) => {
      const s = new Set<string>();
      everySchedule(p, (log) => s.add(log.join('')));
      return s;
    };
    expect(orders(mk('full'))).to.include('a1ba2');
    expect(orders(mk('none'))).to.not.include('a1ba2');
    const h = hunt(mk('full'), { strategy: 'dfs', iterations: 100, stopAtFirst: false });
    expect(h.findings).to.deep.equal([]);
  });
});
