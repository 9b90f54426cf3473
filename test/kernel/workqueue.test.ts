import { expect } from 'chai';
import { Engine, hunt, makeStrategy, type Program, type RunResult } from '../../scheduler';
import { kernelProgram as prog, everySchedule as every } from '../support/kernel';
import { DECLARE_COMPLETION, complete, wait_for_completion } from '../../lib/kernel/completion';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { Machine } from '../../lib/kernel/machine';
import { in_task } from '../../lib/kernel/preempt';
import { msleep, sleep_until } from '../../lib/kernel/sched';
import type { Task } from '../../lib/kernel/task';
import {
  CREATE_COOLDOWN,
  DECLARE_DELAYED_WORK,
  DECLARE_WORK,
  PF_WQ_WORKER,
  WQ_HIGHPRI,
  WQ_MEM_RECLAIM,
  alloc_ordered_workqueue,
  alloc_workqueue,
  cancel_delayed_work_sync,
  cancel_work_sync,
  current_work,
  destroy_workqueue,
  flush_work,
  flush_workqueue,
  mod_delayed_work,
  queue_delayed_work,
  queue_work,
  queue_work_on,
  schedule_work,
  system_highpri_wq,
  system_unbound_wq,
  system_wq,
  work_pending,
  workqueueConfig,
  type work_struct,
} from '../../lib/kernel/workqueue';

const MS = 1_000_000;

interface World {
  m: Machine;
  log: string[];
}

/** The default schedule only. */
function once(p: Program): { log: string[]; r: RunResult } {
  const e = new Engine();
  const r = e.run(p, makeStrategy({ strategy: 'dfs' }), 0, 100);
  return { log: (e.world as World).log, r };
}

const kinds = (r: RunResult) => r.findings.map((f) => f.kind);

/** Every DFS schedule within the preemption bound (2 by default here). */
const everySchedule = (p: Program, check: (log: string[], r: RunResult) => void, preemptionBound = 2, limit = 3000): number =>
  every(p, check, { preemptionBound, limit, expectedSteps: 100 });

describe('workqueues', () => {
  it('runs a work item in process context on a kworker of the queueing CPU', () => {
    const p = prog('wq-context', 2, (m, log) => {
      const w = DECLARE_WORK(m, 'w', function* my_work_fn(cur: Task, work: work_struct) {
        log.push(
          `${cur.comm} cpu${cur.cpu.id} task=${in_task(cur.preempt_count)} pc=${cur.preempt_count} irqs_off=${cur.irqs_disabled} ` +
            `wq_worker=${(cur.flags & PF_WQ_WORKER) !== 0} current=${current_work(cur) === work} pending=${work_pending(work)} ` +
            `stack=${cur.stack.join('>')}`,
        );
        yield cur.thread.point();
      });
      m.kthread('submitter', 1, function* (cur) {
        log.push(`queued=${yield* schedule_work(cur, w)}`);
      });
    });
    const n = everySchedule(p, (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      expect(log[0]).to.equal('queued=true');
      expect(log[1]).to.match(
        /^kworker\/1:\d cpu1 task=true pc=0 irqs_off=false wq_worker=true current=true pending=false stack=worker_thread>process_one_work>my_work_fn$/,
      );
      expect(log.length).to.equal(2);
    });
    expect(n).to.be.greaterThan(1);
  });

  it('names workers as the kernel does and keeps an idle worker per pool', () => {
    const p = prog('wq-names', 2, (m, log) => {
      const mk = (name: string) =>
        DECLARE_WORK(m, name, function* (cur: Task) {
          log.push(`${name}:${cur.comm}`);
          yield cur.thread.point();
        });
      const a = mk('a');
      const b = mk('b');
      const c = mk('c');
      m.kthread('submitter', 0, function* (cur) {
        yield* queue_work(cur, system_wq(m), a);
        yield* queue_work(cur, system_highpri_wq(m), b);
        yield* queue_work(cur, system_unbound_wq(m), c);
      });
    });
    const e = new Engine();
    const r = e.run(p, makeStrategy({ strategy: 'dfs' }), 0, 100);
    const { m, log } = e.world as World;
    expect(kinds(r)).to.deep.equal([]);
    expect([...log].sort()).to.deep.equal(['a:kworker/0:0', 'b:kworker/0:0H', 'c:kworker/u4:0']);
    // each pool's first worker made a second one (the manager keeps one idle)
    const comms = m.tasks.map((t) => t.comm).filter((c) => c.startsWith('kworker/')).sort();
    expect(comms).to.deep.equal(['kworker/0:0', 'kworker/0:0H', 'kworker/0:1', 'kworker/0:1H', 'kworker/u4:0', 'kworker/u4:1']);
  });

  it('queue_work on a pending item returns false and the item runs once', () => {
    const p = prog('wq-pending', 2, (m, log) => {
      const w = DECLARE_WORK(m, 'w', function* (cur: Task) {
        log.push('run');
        yield cur.thread.point();
      });
      m.kthread('submitter', 0, function* (cur) {
        const a = yield* queue_work(cur, system_wq(m), w);
        const b = yield* queue_work(cur, system_wq(m), w);
        log.push(`${a} ${b}`);
      });
    });
    everySchedule(p, (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      expect(log.filter((l) => l === 'run').length).to.equal(1);
      expect(log).to.include('true false');
    });
  });

  it('flush_work waits for a queued or running item and returns after it', () => {
    const p = prog('wq-flush', 2, (m, log) => {
      const w = DECLARE_WORK(m, 'w', function* slow_fn(cur: Task) {
        log.push('start');
        yield* msleep(cur, 1);
        log.push('end');
      });
      const idle = DECLARE_WORK(m, 'idle', function* (cur: Task) {
        yield cur.thread.point();
      });
      m.kthread('flusher', 1, function* (cur) {
        yield* queue_work_on(cur, 0, system_wq(m), w);
        log.push(`idle:${yield* flush_work(cur, idle)}`);
        const waited = yield* flush_work(cur, w);
        log.push(`flushed:${waited}`);
      });
    });
    const starts = new Set<number>();
    everySchedule(p, (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      expect(log).to.include('idle:false');
      expect(log.indexOf('flushed:true'), log.join(',')).to.be.greaterThan(log.indexOf('end'));
      starts.add(log.indexOf('start'));
    });
    // it flushed both an item still queued and one already running
    expect(starts.size).to.be.greaterThan(1);
  });

  it('shows a task waiting in flush_work as waiting for the work function', () => {
    const p = prog('wq-flush-wait', 1, (m) => {
      const w = DECLARE_WORK(m, 'w', function* stuck_fn(cur: Task) {
        yield* sleep_until(cur, () => false, { kind: 'flag', what: 'never' }, 'schedule'); // nobody wakes it
      });
      m.kthread('flusher', 0, function* (cur) {
        yield* schedule_work(cur, w);
        yield* flush_work(cur, w);
      });
    });
    const e = new Engine();
    const r = e.run(p, makeStrategy({ strategy: 'dfs' }), 0, 100);
    expect(kinds(r)).to.deep.equal(['no_progress']);
    const m = (e.world as World).m;
    const flusher = m.tasks.find((t) => t.comm === 'flusher')!;
    expect(flusher.waitingFor).to.deep.include({ kind: 'work', what: 'stuck_fn' });
    expect(flusher.stack).to.deep.equal(['flush_work']);
    // the worker running the stuck item counts as stuck too (it is not idle)
    expect(r.findings[0].text).to.match(/kworker\/0:\d/);
  });

  it('lets another item of the same pool run while one sleeps (concurrency management)', () => {
    const mk = (sleeps: boolean) =>
      prog(`wq-cm-${sleeps}`, 1, (m, log) => {
        const a = DECLARE_WORK(m, 'a', function* (cur: Task) {
          log.push(`A1 ${cur.comm}`);
          if (sleeps) yield* msleep(cur, 1);
          else yield cur.thread.work(MS); // busy: keeps its CPU
          log.push('A2');
        });
        const b = DECLARE_WORK(m, 'b', function* (cur: Task) {
          log.push(`B ${cur.comm}`);
          yield cur.thread.point();
        });
        m.kthread('submitter', 0, function* (cur) {
          yield* schedule_work(cur, a);
          yield* schedule_work(cur, b);
        });
      });
    everySchedule(mk(true), (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      expect(log.map((l) => l.split(' ')[0])).to.deep.equal(['A1', 'B', 'A2']);
      expect(log[0].split(' ')[1]).to.not.equal(log[1].split(' ')[1]);
    });
    everySchedule(mk(false), (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      expect(log.map((l) => l.split(' ')[0])).to.deep.equal(['A1', 'A2', 'B']);
    });
  });

  it('runs items queued from a hardirq handler later in process context', () => {
    const p = prog('wq-irq', 1, (m, log) => {
      const w = DECLARE_WORK(m, 'w', function* bottom_half(cur: Task) {
        log.push(`work ${cur.comm} ${cur.context} task=${in_task(cur.preempt_count)} pc=${cur.preempt_count} off=${cur.irqs_disabled}`);
        yield cur.thread.point();
      });
      const line = request_irq(m, 0, 'dev_irq', function* (cur) {
        const q = yield* schedule_work(cur, w);
        log.push(`irq ${cur.context} queued=${q}`);
      });
      m.kthread('device', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.point();
        yield cur.thread.point();
      });
    });
    everySchedule(p, (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      expect(log.length).to.equal(2);
      expect(log[0]).to.equal('irq hardirq dev_irq queued=true');
      expect(log[1]).to.match(/^work kworker\/0:\d task task=true pc=0 off=false$/);
    });
  });

  it('an ordered workqueue runs items one at a time in queueing order', () => {
    const mk = (ordered: boolean) => prog(`wq-ordered-${ordered}`, 2, (m, log) => {
      const wq = ordered ? alloc_ordered_workqueue(m, 'ordered') : system_unbound_wq(m);
      const items = [1, 2, 3].map((i) =>
        DECLARE_WORK(m, `w${i}`, function* (cur: Task) {
          log.push(`s${i}`);
          yield* msleep(cur, 1); // sleeping would let another worker take the next item
          log.push(`e${i}`);
        }),
      );
      m.kthread('q0', 0, function* (cur) {
        yield* queue_work(cur, wq, items[0]);
        yield* queue_work(cur, wq, items[1]);
      });
      m.kthread('q1', 1, function* (cur) {
        yield* queue_work(cur, wq, items[2]);
      });
    });
    const orders = new Set<string>();
    const n = everySchedule(mk(true), (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      expect(log.length).to.equal(6);
      for (let k = 0; k < 6; k += 2) expect(log[k + 1], log.join(',')).to.equal(`e${log[k].slice(1)}`);
      const starts = log.filter((l) => l[0] === 's');
      expect(starts.indexOf('s1')).to.be.lessThan(starts.indexOf('s2'));
      orders.add(starts.join(''));
    }, 0);
    expect(n).to.be.greaterThan(10);
    expect([...orders].sort()).to.deep.equal(['s1s2s3', 's3s1s2']);
    // the control: an unbound workqueue with max_active > 1 overlaps them
    expect(once(mk(false)).log.slice(0, 3)).to.deep.equal(['s1', 's2', 's3']);
  });

  it('places unbound work on any CPU (a choice), by default the queueing one', () => {
    const p = prog('wq-unbound', 2, (m, log) => {
      const w = DECLARE_WORK(m, 'w', function* (cur: Task) {
        log.push(`cpu${cur.cpu.id} ${cur.comm}`);
        yield cur.thread.point();
      });
      m.kthread('q', 1, function* (cur) {
        yield* queue_work(cur, system_unbound_wq(m), w);
      });
    });
    expect(once(p).log).to.deep.equal(['cpu1 kworker/u4:0']);
    const seen = new Set<string>();
    everySchedule(p, (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      seen.add(log[0].split(' ')[0]);
    }, 0);
    expect([...seen].sort()).to.deep.equal(['cpu0', 'cpu1']);
  });

  describe('WQ_MEM_RECLAIM: work A waits for work B of the same pool while worker creation is stuck', () => {
    const mk = (flags: number, wait: 'flush' | 'completion', fromStart = false) =>
      prog(`wq-reclaim-${flags}-${wait}-${fromStart}`, 1, (m, log) => {
        const wq = alloc_workqueue(m, 'X', flags, 0);
        let pressure = fromStart;
        workqueueConfig(m).createWorker = function* (cur: Task) {
          if (!pressure) {
            yield cur.thread.work(10_000);
            return true;
          }
          // GFP_KERNEL allocation stuck in reclaim for good.
          yield* sleep_until(cur, () => false, { kind: 'flag', what: 'memory' }, 'schedule');
          return true;
        };
        const done = DECLARE_COMPLETION(m, 'b_done');
        const b = DECLARE_WORK(m, 'b', function* work_b(cur: Task) {
          log.push(`B on ${cur.comm}`);
          if (wait === 'completion') yield* complete(cur, done);
          else yield cur.thread.point();
        });
        const a = DECLARE_WORK(m, 'a', function* work_a(cur: Task) {
          pressure = true;
          yield* queue_work(cur, wq, b);
          if (wait === 'flush') yield* flush_work(cur, b);
          else yield* wait_for_completion(cur, done);
          log.push('A done');
        });
        m.kthread('submitter', 0, function* (cur) {
          yield* queue_work(cur, wq, a);
        });
      });

    for (const wait of ['flush', 'completion'] as const) {
      it(`without WQ_MEM_RECLAIM the run hangs (${wait})`, () => {
        const { log, r } = once(mk(0, wait));
        expect(kinds(r)).to.deep.equal(['no_progress']);
        expect(r.findings[0].text).to.match(/kworker\/0:0/);
        expect(log).to.deep.equal([]);
        const h = hunt(mk(0, wait), { strategy: 'random', iterations: 30, seed: 3, stopAtFirst: false });
        expect(h.findings.map((f) => f.kind)).to.deep.equal(['no_progress']);
        expect(h.findings[0].runs).to.equal(30);
      });

      it(`with WQ_MEM_RECLAIM the rescuer runs B and the run completes (${wait})`, () => {
        const { log, r } = once(mk(WQ_MEM_RECLAIM, wait));
        expect(kinds(r)).to.deep.equal([]);
        expect(log).to.deep.equal(['B on X', 'A done']);
        // the rescuer was called after MAYDAY_INITIAL_TIMEOUT (10 ms) of failed creation
        expect(r.metrics.endTime).to.be.at.least(10 * MS);
        const h = hunt(mk(WQ_MEM_RECLAIM, wait), { strategy: 'random', iterations: 30, seed: 3, stopAtFirst: false });
        expect(h.findings).to.deep.equal([]);
      });
    }

    it('the rescuer runs one item at a time: stuck from the start, A runs on the rescuer and still hangs', () => {
      const { log, r } = once(mk(WQ_MEM_RECLAIM, 'flush', true));
      expect(kinds(r)).to.deep.equal(['no_progress']);
      // the rescuer (X) is stuck in A, the manager (kworker/0:0) in create_worker with B pending
      expect(r.findings[0].text).to.match(/\bX: blocked/);
      expect(r.findings[0].text).to.match(/kworker\/0:0: blocked/);
      expect(log).to.deep.equal([]);
    });

    it('an item left pending while worker creation is stuck is a hang, not a clean end', () => {
      const { r } = once(mk(0, 'flush', true));
      expect(kinds(r)).to.deep.equal(['no_progress']);
      expect(r.findings[0].text).to.match(/kworker\/0:0: blocked/);
    });
  });

  it('retries a failed worker creation after CREATE_COOLDOWN', () => {
    const p = prog('wq-create-fail', 1, (m, log) => {
      let fails = 1;
      workqueueConfig(m).createWorker = function* (cur: Task) {
        yield cur.thread.work(1000);
        return fails-- <= 0;
      };
      const w = DECLARE_WORK(m, 'w', function* (cur: Task) {
        log.push(`ran at ${cur.thread.clock}`);
        yield cur.thread.point();
      });
      m.kthread('q', 0, function* (cur) {
        yield* schedule_work(cur, w);
      });
    });
    const { log, r } = once(p);
    expect(kinds(r)).to.deep.equal([]);
    expect(log.length).to.equal(1);
    expect(Number(log[0].split(' ')[2])).to.be.at.least(CREATE_COOLDOWN);
    expect((r as RunResult).metrics.endTime).to.be.lessThan(2 * CREATE_COOLDOWN);
  });

  it('runs delayed work after its delay; mod_delayed_work re-arms; cancel_delayed_work_sync stops it', () => {
    const p = prog('wq-delayed', 1, (m, log) => {
      const mk = (name: string) =>
        DECLARE_DELAYED_WORK(m, name, function* (cur: Task) {
          log.push(`${name} at ${cur.thread.clock / MS}ms on ${cur.comm}`);
          yield cur.thread.point();
        });
      const d1 = mk('d1');
      const d2 = mk('d2');
      const d3 = mk('d3');
      m.kthread('q', 0, function* (cur) {
        const wq = system_wq(m);
        log.push(`q1=${yield* queue_delayed_work(cur, wq, d1, 5 * MS)}`);
        log.push(`q1again=${yield* queue_delayed_work(cur, wq, d1, 1 * MS)}`);
        yield* queue_delayed_work(cur, wq, d2, 2 * MS);
        log.push(`mod=${yield* mod_delayed_work(cur, wq, d2, 8 * MS)}`);
        yield* queue_delayed_work(cur, wq, d3, 3 * MS);
        log.push(`cancel=${yield* cancel_delayed_work_sync(cur, d3)}`);
      });
    });
    const { log, r } = once(p);
    expect(kinds(r)).to.deep.equal([]);
    expect(log.slice(0, 4)).to.deep.equal(['q1=true', 'q1again=false', 'mod=true', 'cancel=true']);
    expect(log.slice(4)).to.have.length(2);
    expect(log[4]).to.match(/^d1 at 5(\.\d+)?ms on kworker\/0:\d$/);
    expect(log[5]).to.match(/^d2 at 8(\.\d+)?ms on kworker\/0:\d$/);
  });

  it('cancel_work_sync of a pending item keeps it from running', () => {
    const p = prog('wq-cancel', 2, (m, log) => {
      const w = DECLARE_WORK(m, 'w', function* (cur: Task) {
        log.push('run');
        yield* msleep(cur, 1);
        log.push('run end');
      });
      m.kthread('q', 0, function* (cur) {
        yield* schedule_work(cur, w);
        const was = yield* cancel_work_sync(cur, w);
        log.push(`cancel=${was} pending=${work_pending(w)}`);
        log.push(`requeue=${yield* schedule_work(cur, w)}`);
        yield* cancel_work_sync(cur, w);
        log.push('end');
      });
    });
    expect(once(p).log).to.deep.equal(['cancel=true pending=false', 'requeue=true', 'end']);
    let ranFirst = 0;
    everySchedule(p, (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      const c = log.findIndex((l) => l.startsWith('cancel='));
      if (log[c] === 'cancel=true pending=false') {
        expect(log.slice(0, c)).to.not.include('run');
      } else {
        // it had started already: cancel_work_sync waited for it to finish
        expect(log[c]).to.equal('cancel=false pending=false');
        expect(log.slice(0, c)).to.include('run end');
        ranFirst++;
      }
      // whatever ran finished before the last cancel returned
      expect(log.indexOf('end')).to.equal(log.length - 1);
      expect(log.filter((l) => l === 'run').length).to.equal(log.filter((l) => l === 'run end').length);
    }, 1);
    expect(ranFirst).to.be.greaterThan(0);
  });

  it('flush_workqueue waits for everything queued before it; destroy_workqueue drains', () => {
    const p = prog('wq-flush-all', 2, (m, log) => {
      const wq = alloc_workqueue(m, 'mywq', WQ_HIGHPRI | WQ_MEM_RECLAIM, 2);
      const items = [1, 2, 3].map((i) =>
        DECLARE_WORK(m, `w${i}`, function* (cur: Task) {
          yield* msleep(cur, i);
          log.push(`w${i} ${cur.comm}`);
        }),
      );
      m.kthread('q', 0, function* (cur) {
        for (const w of items) yield* queue_work(cur, wq, w);
        yield* flush_workqueue(cur, wq);
        log.push('flushed');
        yield* queue_work_on(cur, 1, wq, items[0]);
        yield* destroy_workqueue(cur, wq);
        log.push('destroyed');
      });
    });
    everySchedule(p, (log, r) => {
      expect(kinds(r)).to.deep.equal([]);
      expect(log.indexOf('flushed')).to.equal(3);
      expect(log.slice(0, 3).every((l) => /^w\d kworker\/0:\dH$/.test(l))).to.equal(true);
      expect(log[4]).to.match(/^w1 kworker\/1:\dH$/);
      expect(log[5]).to.equal('destroyed');
    }, 0);
  });

  it('replays the same path from the same seed (determinism self-check)', () => {
    const p = prog('wq-determinism', 2, (m, log) => {
      const wq = alloc_workqueue(m, 'R', WQ_MEM_RECLAIM, 0);
      const items = [0, 1, 2, 3].map((i) =>
        DECLARE_WORK(m, `w${i}`, function* (cur: Task) {
          if (i % 2) yield* msleep(cur, 1);
          log.push(`w${i}`);
        }),
      );
      for (const c of [0, 1]) {
        m.kthread(`q${c}`, c, function* (cur) {
          yield* queue_work(cur, wq, items[c * 2]);
          yield* queue_work(cur, system_unbound_wq(m), items[c * 2 + 1]);
          yield* flush_work(cur, items[c * 2]);
        });
      }
    });
    const h = hunt(p, { strategy: 'pct', depth: 3, iterations: 15, seed: 7, checkDeterminism: true, stopAtFirst: false });
    expect(h.findings).to.deep.equal([]);
  });
});
