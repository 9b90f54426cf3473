import { expect } from 'chai';
import { kernelProgram as prog, everySchedule } from '../support/kernel';
import { in_serving_softirq, in_task, in_irq } from '../../lib/kernel/preempt';
import { local_bh_disable, local_bh_enable } from '../../lib/kernel/preemption';
import { BLOCK_SOFTIRQ, NET_RX_SOFTIRQ, open_softirq, raise_softirq, raise_softirq_irqoff } from '../../lib/kernel/softirq';
import { del_timer_sync, jiffies, mod_timer, msecs_to_jiffies, timer_setup } from '../../lib/kernel/timer';
import { IRQF_ONESHOT, IRQ_WAKE_THREAD, disable_irq, enable_irq, raise_irq, request_irq, request_threaded_irq } from '../../lib/kernel/irq';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_bh, spin_unlock, spin_unlock_bh } from '../../lib/kernel/spinlock';
import type { Task } from '../../lib/kernel/task';

const ctx = (cur: Task) =>
  `${cur.context} softirq=${in_serving_softirq(cur.preempt_count)} task=${in_task(cur.preempt_count)} irq=${in_irq(cur.preempt_count)} off=${cur.irqs_disabled} cpu=${cur.cpu.id}`;

describe('softirqs, timers and threaded IRQs', () => {
  it('a softirq raised in a hardirq handler runs at irq exit, in softirq context with IRQs on', () => {
    const p = prog('irq-exit', 1, (m, log) => {
      open_softirq(m, NET_RX_SOFTIRQ, function* (cur) {
        log.push(`rx ${ctx(cur)} stack=${cur.stack.join('>')}`);
      });
      const line = request_irq(m, 0, 'eth0', function* (cur) {
        yield* raise_softirq_irqoff(cur, NET_RX_SOFTIRQ);
        log.push('hardirq');
      });
      m.kthread('t', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.point();
        log.push(`back ${ctx(cur)}`);
      });
    });
    everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      const h = log.indexOf('hardirq');
      expect(log[h + 1]).to.equal('rx softirq NET_RX softirq=true task=false irq=false off=false cpu=0 stack=eth0>__do_softirq');
      expect(log).to.include('back task softirq=false task=true irq=false off=false cpu=0');
    });
  });

  it('softirqs raised with bottom halves disabled wait for local_bh_enable', () => {
    const p = prog('bh-enable', 1, (m, log) => {
      open_softirq(m, BLOCK_SOFTIRQ, function* (cur) {
        log.push(`block ${cur.context}`);
      });
      const line = request_irq(m, 0, 'nvme', function* (cur) {
        yield* raise_softirq_irqoff(cur, BLOCK_SOFTIRQ);
      });
      m.kthread('t', 0, function* (cur) {
        yield* local_bh_disable(cur);
        yield* raise_irq(cur, line);
        yield cur.thread.point();
        yield cur.thread.point();
        log.push('bh-enable');
        yield* local_bh_enable(cur);
        log.push('done');
      });
    });
    const seen = new Set<string>();
    everySchedule(p, (log) => {
      seen.add(log.join(','));
      // the handler could land after local_bh_enable too; never before it does the softirq run
      const b = log.indexOf('block softirq BLOCK');
      expect(b).to.be.greaterThan(log.indexOf('bh-enable'));
    });
    expect(seen).to.include('bh-enable,block softirq BLOCK,done');
  });

  it('a raise from plain process context runs in ksoftirqd', () => {
    const p = prog('ksoftirqd', 1, (m, log) => {
      open_softirq(m, NET_RX_SOFTIRQ, function* (cur) {
        log.push(`rx on ${cur.comm} ${cur.context}`);
      });
      m.kthread('t', 0, function* (cur) {
        yield* raise_softirq(cur, NET_RX_SOFTIRQ);
        yield cur.thread.point();
      });
    });
    everySchedule(p, (log, r) => {
      expect(r.endReason).to.equal('done');
      expect(log).to.deep.equal(['rx on ksoftirqd/0 softirq NET_RX']);
    });
  });

  it('timers fire in softirq context on the arming CPU, not before their expiry', () => {
    const p = prog('timer', 2, (m, log) => {
      const tm = timer_setup(m, 'watchdog_fn', function* (cur) {
        log.push(`fired ${ctx(cur)} j=${jiffies(m)} stack=${cur.stack.slice(-2).join('>')}`);
      });
      m.kthread('t', 1, function* (cur) {
        yield* mod_timer(cur, tm, jiffies(m) + msecs_to_jiffies(m, 10));
        log.push('armed');
      });
    });
    everySchedule(p, (log) => {
      expect(log).to.deep.equal(['armed', 'fired softirq TIMER softirq=true task=false irq=false off=false cpu=1 j=3 stack=call_timer_fn>watchdog_fn']);
    });
  });

  it('del_timer_sync waits for a callback running on another CPU', () => {
    const p = prog('del-sync', 2, (m, log) => {
      const tm = timer_setup(m, 'poll_fn', function* (cur) {
        log.push('cb start');
        yield cur.thread.point();
        log.push('cb end');
      });
      m.kthread('arm', 0, function* (cur) {
        yield* mod_timer(cur, tm, 0);
        yield cur.thread.point();
      });
      m.kthread('del', 1, function* (cur) {
        yield cur.thread.work(1);
        yield* del_timer_sync(cur, tm);
        log.push('deleted');
      });
    });
    const seen = new Set<string>();
    everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      const s = log.indexOf('cb start');
      if (s >= 0 && s < log.indexOf('deleted')) expect(log.indexOf('cb end')).to.be.lessThan(log.indexOf('deleted'));
      seen.add(log.join(','));
    });
    expect(seen).to.include('cb start,cb end,deleted');
    expect(seen).to.include('deleted');
  });

  it('a softirq taking a lock its CPU holds with plain spin_lock deadlocks; spin_lock_bh does not', () => {
    for (const bh of [false, true]) {
      const p = prog(`softirq-lock-${bh}`, 1, (m) => {
        const l = DEFINE_SPINLOCK(m, 'rx_lock');
        open_softirq(m, NET_RX_SOFTIRQ, function* (cur) {
          yield* spin_lock(cur, l);
          yield* spin_unlock(cur, l);
        });
        const line = request_irq(m, 0, 'eth0', function* (cur) {
          yield* raise_softirq_irqoff(cur, NET_RX_SOFTIRQ);
        });
        m.kthread('t', 0, function* (cur) {
          yield* raise_irq(cur, line);
          if (bh) yield* spin_lock_bh(cur, l);
          else yield* spin_lock(cur, l);
          yield cur.thread.point();
          if (bh) yield* spin_unlock_bh(cur, l);
          else yield* spin_unlock(cur, l);
        });
      });
      const kinds = new Set<string>();
      everySchedule(p, (_log, r) => r.findings.forEach((f) => kinds.add(f.kind)));
      // lockdep: {SOFTIRQ-ON-W} -> {IN-SOFTIRQ-W} in every schedule; the deadlock in some
      expect([...kinds].sort()).to.deep.equal(bh ? [] : ['deadlock', 'lockdep']);
    }
  });

  it('threaded handlers run in process context; IRQF_ONESHOT keeps the line masked until they finish', () => {
    const p = prog('threaded', 1, (m, log) => {
      let hard = 0;
      const line = request_threaded_irq(
        m,
        0,
        'nvme0q1',
        function* () {
          hard++;
          log.push(`hard${hard}`);
          return IRQ_WAKE_THREAD;
        },
        function* (cur) {
          log.push(`thread ${cur.comm} ${ctx(cur)}`);
          yield cur.thread.point();
          log.push('thread end');
        },
        IRQF_ONESHOT,
      );
      m.kthread('dev', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.point();
        yield* raise_irq(cur, line); // while the thread runs: held back until irq_finalize_oneshot
        yield cur.thread.point();
      });
    });
    everySchedule(p, (log, r) => {
      expect(r.findings).to.deep.equal([]);
      const first = log.indexOf('thread end');
      const second = log.indexOf('hard2');
      if (second >= 0 && first >= 0 && log.indexOf('thread irq/16-nvme0q1 task softirq=false task=true irq=false off=false cpu=0') < second) {
        expect(second, log.join(',')).to.be.greaterThan(first);
      }
      expect(log[1] ?? '').to.match(/^(thread irq\/16-nvme0q1 task softirq=false task=true irq=false off=false cpu=0|hard2)?$/);
    });
  });

  it('disable_irq holds a raise back until enable_irq', () => {
    const p = prog('disable-irq', 1, (m, log) => {
      const line = request_irq(m, 0, 'dev', function* () {
        log.push('irq');
      });
      m.kthread('t', 0, function* (cur) {
        yield* disable_irq(cur, line);
        yield* raise_irq(cur, line);
        yield cur.thread.point();
        log.push('enable');
        yield* enable_irq(cur, line);
        yield cur.thread.point();
      });
    });
    everySchedule(p, (log) => expect(log).to.deep.equal(['enable', 'irq']));
  });
});
