/**
 * Golden texts, one per report kind: each expected text is derived from the upstream function
 * that prints it (named in each test, at v6.12 unless said otherwise), described here in our own
 * words, and checked line by line in order. Fake addresses and the model's symbol names stand
 * where the kernel prints pointers and symbol+offset. Every test also flips one input (kernel
 * configuration, version, lockdep state) and checks the text changes the way upstream's does, so
 * a model that printed one fixed text would fail.
 */
import { expect } from 'chai';
import { Engine, InputError, makeStrategy, type Finding, type FoundFinding } from '../../scheduler';
import { findingJson } from '../../lib/report/json';
import { deriveKernelConfig } from '../../lib/kernel/config';
import * as K from '../../lib/kernel';
import type { MachineOptions } from '../../lib/kernel/machine';
import { parseCli } from '../../lib/cli/options';
import { applyParams } from '../../lib/scenario/params';
import { defineScenario, scenarioProgram } from '../../lib/scenario/define';
import { kernelProgram } from '../support/kernel';

function findings(opts: MachineOptions, build: (m: K.Machine) => void): Finding[] {
  return new Engine().run(kernelProgram('golden', opts, build), makeStrategy({ strategy: 'dfs' }), 0, 100).findings;
}

/** Lines of a text, for order-preserving comparison. */
const lines = (t: string): string[] => t.split('\n');

/** `want` appears in `text` as consecutive lines (each a string or a pattern). */
function expectBlock(text: string, want: (string | RegExp)[]): void {
  const got = lines(text);
  for (let i = 0; i + want.length <= got.length; i++) {
    if (want.every((w, k) => (typeof w === 'string' ? got[i + k] === w : w.test(got[i + k])))) return;
  }
  expect.fail(`block not found:\n${want.map(String).join('\n')}\n--- in ---\n${text}`);
}

/** An ABBA order in one task: lockdep's circular report, after which debug_locks is 0. */
function* lockdepOff(cur: K.Task, a: K.mutex, b: K.mutex) {
  yield* K.fn(cur, 'order_one', (function* () {
    yield* K.mutex_lock(cur, a);
    yield* K.mutex_lock(cur, b);
    yield* K.mutex_unlock(cur, b);
    yield* K.mutex_unlock(cur, a);
  })());
  yield* K.fn(cur, 'order_two', (function* () {
    yield* K.mutex_lock(cur, b);
    yield* K.mutex_lock(cur, a);
    yield* K.mutex_unlock(cur, a);
    yield* K.mutex_unlock(cur, b);
  })());
}

/** spin_lock, then a sleeping mutex_lock (foo_probe -> foo_setup). */
function spinThenMutex(m: K.Machine, irqsave = false): void {
  const l = K.DEFINE_SPINLOCK(m, 'dev_lock');
  const mu = K.DEFINE_MUTEX(m, 'cfg_mutex');
  m.kthread('t', 0, function* (cur) {
    yield* K.fn(cur, 'foo_probe', (function* () {
      if (irqsave) yield* K.spin_lock_irqsave(cur, l);
      else yield* K.spin_lock(cur, l);
      yield* K.fn(cur, 'foo_setup', K.mutex_lock(cur, mu));
    })());
  });
}

const IRQTRACE = [
  /^irq event stamp: \d+$/,
  /^hardirqs last {2}enabled at \(\d+\): \[<[0-9a-f]{16}>\] \S+$/,
  /^hardirqs last disabled at \(\d+\): \[<[0-9a-f]{16}>\] \S+$/,
  /^softirqs last {2}enabled at \(\d+\): \[<[0-9a-f]{16}>\] \S+$/,
  /^softirqs last disabled at \(\d+\): \[<[0-9a-f]{16}>\] \S+$/,
];

describe('golden report texts (upstream functions)', () => {
  describe('might_sleep: __might_resched (kernel/sched/core.c)', () => {
    it('PREEMPT_RCU kernel: header, in_atomic line, preempt_count line, RCU nest depth, held locks (real usage bits), stack', () => {
      // __might_resched prints the header with the file of the sleeping call, the in_atomic /
      // irqs_disabled / non_block / pid / name line, "preempt_count: %x, expected: %x", with
      // PREEMPT_RCU "RCU nest depth: %d, expected: %u", then debug_show_held_locks (each held
      // lock as "(name){usage}-{outer:inner}, at: ip"), and dump_stack.
      const f = findings({ cpus: 1, kernel: { config: { preempt: 'full' } } }, (m) => spinThenMutex(m)).find((x) => x.kind === 'might_sleep')!;
      expect(lines(f.text).slice(0, 7)).to.deep.equal([
        'BUG: sleeping function called from invalid context at kernel/locking/mutex.c',
        'in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 1, name: t',
        'preempt_count: 1, expected: 0',
        'RCU nest depth: 0, expected: 0',
        '1 lock held by t/1:',
        // taken in task context with IRQs and softirqs on: HARDIRQ-ON-W and SOFTIRQ-ON-W ('+')
        ' #0: (dev_lock){+.+.}-{2:2}, at: foo_probe',
        'CPU: 0 PID: 1 Comm: t (task)',
      ]);
      expectBlock(f.text, ['Call Trace:', ' <TASK>', ' dump_stack_lvl', ' __might_resched', ' mutex_lock', ' foo_setup', ' foo_probe', ' </TASK>']);
      expect(f.data!.cpus).to.deep.equal([0]);
      // JSON `cpus` is the CPU the text names, not every CPU that happens to hold a lock
      const other = { cpu: 1, task: 'x', pid: 9, context: 'task', irqsDisabled: false, preemptCount: '0x00000001', held: ['l (spin_lock, at f)'], waitingFor: null, stack: [] };
      const j = findingJson({ ...f, data: { ...f.data, cpuStates: [...(f.data!.cpuStates as object[]), other] }, iteration: 0, schedule: 's', runs: 1, totalCount: 1 } as unknown as FoundFinding, 'replay');
      expect(j.cpus).to.deep.equal([0]);
    });

    it('no PREEMPT_RCU (voluntary): no RCU nest depth line; IRQs off adds print_irqtrace_events after the held locks', () => {
      const f = findings({ cpus: 1, preemption: 'voluntary' }, (m) => spinThenMutex(m, true)).find((x) => x.kind === 'might_sleep')!;
      expect(lines(f.text).slice(0, 5)).to.deep.equal([
        'BUG: sleeping function called from invalid context at kernel/locking/mutex.c',
        'in_atomic(): 1, irqs_disabled(): 1, non_block: 0, pid: 1, name: t',
        'preempt_count: 1, expected: 0',
        '1 lock held by t/1:',
        // taken with IRQs off and never in an interrupt: no usage bit set
        ' #0: (dev_lock){....}-{2:2}, at: foo_probe',
      ]);
      expectBlock(f.text, [' #0: (dev_lock){....}-{2:2}, at: foo_probe', ...IRQTRACE, 'CPU: 0 PID: 1 Comm: t (task)']);
      expect(f.text).to.not.match(/RCU nest depth/);
    });

    it('DEBUG_PREEMPT: "Preemption disabled at:" and the ip where preempt_count left 0 (print_preempt_disable_ip)', () => {
      const f = findings({ cpus: 1, kernel: { config: { preempt: 'full', debugPreempt: true } } }, (m) => spinThenMutex(m)).find((x) => x.kind === 'might_sleep')!;
      expectBlock(f.text, [' #0: (dev_lock){+.+.}-{2:2}, at: foo_probe', 'Preemption disabled at:', /^\[<ffffffff8[0-9a-f]{7}>\] foo_probe$/, 'CPU: 0 PID: 1 Comm: t (task)']);
      const without = findings({ cpus: 1, kernel: { config: { preempt: 'full' } } }, (m) => spinThenMutex(m)).find((x) => x.kind === 'might_sleep')!;
      expect(without.text).to.not.match(/Preemption disabled at/);
    });

    it('3.x (__might_sleep): only the header and "in_atomic(): %d, irqs_disabled(): %d, pid: %d, name: %s"; no wait types', () => {
      const f = findings({ cpus: 1, kernel: { version: '3.x-arm' } }, (m) => spinThenMutex(m)).find((x) => x.kind === 'might_sleep')!;
      expect(lines(f.text).slice(0, 4)).to.deep.equal([
        'BUG: sleeping function called from invalid context at kernel/locking/mutex.c',
        'in_atomic(): 1, irqs_disabled(): 0, pid: 1, name: t',
        '1 lock held by t/1:',
        ' #0: (dev_lock){+.+.}, at: foo_probe',
      ]);
      expect(f.text).to.match(/ dump_stack_lvl\n __might_sleep\n mutex_lock/);
    });

    it('after lockdep turned itself off, debug_show_held_locks says so instead of listing', () => {
      const g = findings({ cpus: 1 }, (m) => {
        const x = K.DEFINE_SPINLOCK(m, 'x_lock');
        const mu = K.DEFINE_MUTEX(m, 'cfg_mutex');
        const a = K.DEFINE_MUTEX(m, 'a_mutex');
        const b = K.DEFINE_MUTEX(m, 'b_mutex');
        m.kthread('t', 0, function* (cur) {
          yield* lockdepOff(cur, a, b);
          yield* K.spin_lock(cur, x);
          yield* K.fn(cur, 'foo_setup', K.mutex_lock(cur, mu));
        });
      });
      const ms = g.find((x) => x.kind === 'might_sleep');
      expect(g.map((x) => x.kind), g.map((x) => x.headline).join('\n')).to.include('lockdep');
      expectBlock(ms!.text, ['preempt_count: 1, expected: 0', 'INFO: lockdep is turned off.']);
    });
  });

  describe('scheduling while atomic: __schedule_bug (kernel/sched/core.c)', () => {
    // preempt_count() is read inside __schedule, after schedule()'s own preempt_disable: one
    // more than the caller's count. Then the held locks, "Modules linked in:", the irqtrace
    // block if IRQs are off, "Preemption disabled at:" with DEBUG_PREEMPT, and the stack.
    function* schedule(cur: K.Task) {
      cur.cpu.machine.emit('schedule', cur, 'schedule_timeout'); // what schedule() tells the detectors
    }

    it('one spinlock held: 0x00000002, with its held lock and (IRQs off) the irqtrace block', () => {
      const f = findings({ cpus: 1 }, (m) => {
        const l = K.DEFINE_SPINLOCK(m, 'dev_lock');
        m.kthread('t', 0, function* (cur) {
          yield* K.fn(cur, 'foo_poll', (function* () {
            yield* K.spin_lock_irq(cur, l);
            yield* schedule(cur);
          })());
        });
      }).find((x) => x.subkind === 'scheduling_while_atomic')!;
      expect(lines(f.text).slice(0, 4)).to.deep.equal(['BUG: scheduling while atomic: t/1/0x00000002', '1 lock held by t/1:', ' #0: (dev_lock){....}-{2:2}, at: foo_poll', 'Modules linked in:']);
      expectBlock(f.text, ['Modules linked in:', ...IRQTRACE, 'CPU: 0 PID: 1 Comm: t (task)']);
      // the ip is the lock function that disabled them (upstream: _raw_spin_lock_irq+0x.../0x...)
      expect(f.text).to.match(/\nhardirqs last disabled at \(1\): \[<[0-9a-f]{16}>\] _raw_spin_lock_irq\n/);
      expectBlock(f.text, [' dump_stack_lvl', ' __schedule_bug', ' __schedule', ' schedule', ' schedule_timeout', ' foo_poll']);
    });

    it('in a hardirq handler: 0x00010001; serving a softirq: 0x00000101', () => {
      const hard = findings({ cpus: 1 }, (m) => {
        const line = K.request_irq(m, 0, 'foo', function* foo_irq(cur) {
          yield* schedule(cur);
        });
        m.kthread('t', 0, function* (cur) {
          K.raise_irq(m, line);
          yield cur.thread.point();
        });
      }).find((x) => x.subkind === 'scheduling_while_atomic')!;
      expect(lines(hard.text)[0]).to.match(/^BUG: scheduling while atomic: \S+\/\d+\/0x00010001$/);
      // irq entry turned hardirqs off: the block says where
      expect(hard.text).to.match(/\nhardirqs last disabled at \(\d+\): \[<[0-9a-f]{16}>\] common_interrupt\n/);
      const soft = findings({ cpus: 1 }, (m) => {
        K.open_softirq(m, K.TASKLET_SOFTIRQ, function* foo_action(cur) {
          yield* schedule(cur);
        });
        m.kthread('t', 0, function* (cur) {
          yield* K.local_bh_disable(cur);
          yield* K.raise_softirq(cur, K.TASKLET_SOFTIRQ);
          yield* K.local_bh_enable(cur);
        });
      }).find((x) => x.subkind === 'scheduling_while_atomic')!;
      expect(lines(soft.text)[0]).to.equal('BUG: scheduling while atomic: t/1/0x00000101');
    });
  });

  describe('lockdep (kernel/locking/lockdep.c)', () => {
    it('print_circular_bug: the held locks exclude the lock being acquired (validate_chain runs before lockdep_depth++); chain entries and the backtrace carry lockdep and lock-API frames', () => {
      const f = findings({ cpus: 1 }, (m) => {
        const a = K.DEFINE_MUTEX(m, 'a_mutex');
        const b = K.DEFINE_MUTEX(m, 'b_mutex');
        m.kthread('t', 0, function* (cur) {
          yield* K.fn(cur, 'path_one', (function* () {
            yield* K.mutex_lock(cur, a);
            yield* K.mutex_lock(cur, b);
            yield* K.mutex_unlock(cur, b);
            yield* K.mutex_unlock(cur, a);
          })());
          yield* K.fn(cur, 'path_two', (function* () {
            yield* K.mutex_lock(cur, b);
            yield* K.mutex_lock(cur, a);
          })());
        });
      }).find((x) => x.kind === 'lockdep')!;
      expect(f.subkind).to.equal('circular');
      expectBlock(f.text, [
        '-> #1 (b_mutex){+.+.}-{4:4}:',
        '       lock_acquire',
        '       __mutex_lock',
        '       mutex_lock_nested',
        '       path_one',
        '',
        '-> #0 (a_mutex){+.+.}-{4:4}:',
        '       check_prev_add',
        '       check_prevs_add',
        '       validate_chain',
        '       __lock_acquire',
        '       lock_acquire',
        '       __mutex_lock',
        '       mutex_lock_nested',
        '       path_two',
      ]);
      expectBlock(f.text, [' *** DEADLOCK ***', '', '1 lock held by t/1:', ' #0: (b_mutex){+.+.}-{4:4}, at: path_two', '', 'stack backtrace:', 'CPU: 0 PID: 1 Comm: t (task)', 'Call Trace:', ' <TASK>', ' dump_stack_lvl', ' print_circular_bug']);
      expect(f.text).to.not.match(/2 locks held/);
    });

    it('3.x titles are bracketed ("[ INFO: possible circular locking dependency detected ]"), 6.x ones start with WARNING:', () => {
      const abba = (opts: MachineOptions) =>
        findings(opts, (m) => {
          const a = K.DEFINE_MUTEX(m, 'a_mutex');
          const b = K.DEFINE_MUTEX(m, 'b_mutex');
          m.kthread('t', 0, (cur) => lockdepOff(cur, a, b));
        }).find((x) => x.kind === 'lockdep')!;
      expect(lines(abba({ cpus: 1, kernel: { version: '3.x-arm' } }).text).slice(0, 2)).to.deep.equal(['=======================================================', '[ INFO: possible circular locking dependency detected ]']);
      expect(lines(abba({ cpus: 1 }).text).slice(0, 2)).to.deep.equal(['======================================================', 'WARNING: possible circular locking dependency detected']);
    });

    it('print_deadlock_bug (recursive): the lock taken again is not counted among the held locks', () => {
      const f = findings({ cpus: 2 }, (m) => {
        const a = K.DEFINE_MUTEX(m, 'a_mutex');
        const b = K.DEFINE_MUTEX(m, 'b_mutex');
        m.kthread('t', 0, function* (cur) {
          yield* K.mutex_lock(cur, b);
          yield* K.fn(cur, 'foo_again', (function* () {
            yield* K.mutex_lock(cur, a);
            yield* K.mutex_lock(cur, a);
          })());
        });
      }).find((x) => x.kind === 'lockdep')!;
      expect(f.subkind).to.equal('recursive');
      expectBlock(f.text, [' May be due to missing lock nesting notation', '', '2 locks held by t/1:', ' #0: (b_mutex){+.+.}-{4:4}, at: task', ' #1: (a_mutex){+.+.}-{4:4}, at: foo_again', '']);
    });

    it('print_usage_bug (inconsistent): [HC..:SC..] counts, print_irqtrace_events after "state was registered at", and no extra explanation line', () => {
      const f = findings({ cpus: 1 }, (m) => {
        const l = K.DEFINE_SPINLOCK(m, 'stat_lock');
        const line = K.request_irq(m, 0, 'foo', function* foo_irq(cur) {
          yield* K.spin_lock(cur, l);
          yield* K.spin_unlock(cur, l);
        });
        m.kthread('t', 0, function* (cur) {
          yield* K.fn(cur, 'foo_update', (function* () {
            yield* K.spin_lock(cur, l);
            yield* K.spin_unlock(cur, l);
          })());
          K.raise_irq(m, line);
          yield cur.thread.point();
        });
      }).find((x) => x.kind === 'lockdep')!;
      expect(f.subkind).to.equal('inconsistent');
      expectBlock(f.text, ['inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage.', /^\S+ \[HC1\[1\]:SC0\[0\]:HE0:SE1\] takes:$/, '(stat_lock){?.+.}-{2:2}, at: foo', '{HARDIRQ-ON-W} state was registered at:', '  foo_update', ...IRQTRACE, '', 'other info that might help us debug this:']);
      expect(f.text).to.not.match(/the lock is taken in/);
      expectBlock(f.text, ['stack backtrace:', /^CPU: 0 /, 'Call Trace:', ' <IRQ>', ' dump_stack_lvl', ' print_usage_bug', ' mark_lock', ' mark_usage', ' __lock_acquire', ' lock_acquire', ' _raw_spin_lock', ' foo']);
    });

    it('print_bad_irq_dependency (irq-safe -> unsafe): the lock being acquired is not among the held locks', () => {
      const f = findings({ cpus: 1 }, (m) => {
        const safe = K.DEFINE_SPINLOCK(m, 'safe_lock');
        const unsafe = K.DEFINE_SPINLOCK(m, 'unsafe_lock');
        let handled = false;
        const line = K.request_irq(m, 0, 'foo', function* foo_irq(cur) {
          yield* K.spin_lock(cur, safe);
          yield* K.spin_unlock(cur, safe);
          handled = true;
        });
        m.kthread('t', 0, function* (cur) {
          K.raise_irq(m, line);
          yield cur.thread.spinUntil(() => handled); // safe_lock is IN-HARDIRQ-W first
          yield* K.fn(cur, 'foo_unsafe', (function* () {
            yield* K.spin_lock(cur, unsafe);
            yield* K.spin_unlock(cur, unsafe);
          })());
          yield* K.fn(cur, 'foo_nest', (function* () {
            const fl = yield* K.spin_lock_irqsave(cur, safe);
            yield* K.spin_lock(cur, unsafe);
            yield* K.spin_unlock(cur, unsafe);
            yield* K.spin_unlock_irqrestore(cur, safe, fl);
          })());
        });
      }).find((x) => x.kind === 'lockdep')!;
      expect(f.subkind).to.equal('irq_safe_unsafe');
      expectBlock(f.text, ['1 lock held by t/1:', /^ #0: \(safe_lock\)\{-\.\.\.\}-\{2:2\}, at: foo_nest$/, '', 'stack backtrace:']);
    });

    it('PROVE_RAW_LOCK_NESTING: spinlock_t prints wait type {3:3} (LD_WAIT_CONFIG), raw_spinlock_t stays {2:2}', () => {
      const f = findings({ cpus: 1, kernel: { config: { preempt: 'full', proveRawLockNesting: true } } }, (m) => spinThenMutex(m)).find((x) => x.kind === 'might_sleep')!;
      expectBlock(f.text, ['1 lock held by t/1:', ' #0: (dev_lock){+.+.}-{3:3}, at: foo_probe']);
    });
  });

  describe('cross-CPU calls with IRQs off (kernel/smp.c)', () => {
    const caller = (how: 'single' | 'each', opts: MachineOptions, lockdepFirst: boolean) =>
      findings({ cpus: 2, ...opts }, (m) => {
        const a = K.DEFINE_MUTEX(m, 'a_mutex');
        const b = K.DEFINE_MUTEX(m, 'b_mutex');
        m.kthread('t', 0, function* (cur) {
          if (lockdepFirst) yield* lockdepOff(cur, a, b); // lockdep reports: debug_locks = 0
          yield* K.local_irq_disable(cur);
          yield* K.fn(cur, 'foo_flush', how === 'single' ? K.smp_call_function_single(cur, 1, function* () {}, false) : K.on_each_cpu(cur, function* () {}, false));
          yield* K.local_irq_enable(cur);
        });
      }).filter((f) => f.kind === 'ipi_irqs_off');

    it('on_each_cpu warns through lockdep_assert_irqs_enabled only while debug_locks; smp_call_function_single\'s WARN and 3.x\'s are unconditional', () => {
      expect(caller('each', {}, false)).to.have.length(1);
      expect(caller('each', {}, true)).to.have.length(0);
      expect(caller('single', {}, true)).to.have.length(1);
      expect(caller('each', { kernel: { version: '3.x-arm' } }, true)).to.have.length(1);
      expect(caller('each', { lockdep: false }, false)).to.have.length(0);
    });
  });

  describe('kernel configuration (lib/kernel/config.ts)', () => {
    it('derives PREEMPT_RCU from PREEMPTION: full and dynamic (even booted none) have it, none and voluntary do not', () => {
      const d = (preempt: 'none' | 'voluntary' | 'full' | 'dynamic', boot?: 'none') => deriveKernelConfig({ config: { preempt, ...(boot ? { boot } : {}) } }, { lockdep: true });
      expect(d('none').PREEMPT_RCU).to.equal(false);
      expect(d('voluntary').PREEMPT_RCU).to.equal(false);
      expect(d('full').PREEMPT_RCU).to.equal(true);
      const dyn = d('dynamic', 'none');
      expect([dyn.PREEMPT_RCU, dyn.preemption]).to.deep.equal([true, 'none']);
      expect(deriveKernelConfig(undefined, { lockdep: true }).version).to.equal('6.12');
    });

    it('refuses impossible combinations with one line (InputError: exit 2)', () => {
      const bad = (spec: Parameters<typeof deriveKernelConfig>[0], lockdep = true) => () => deriveKernelConfig(spec, { lockdep });
      expect(bad({ config: { preempt: 'voluntary', debugPreempt: true } })).to.throw(InputError, /DEBUG_PREEMPT depends on PREEMPTION/);
      expect(bad({ config: { proveRcu: true } }, false)).to.throw(InputError, /PROVE_RCU is def_bool PROVE_LOCKING/);
      expect(bad({ config: { proveRawLockNesting: true } }, false)).to.throw(InputError, /PROVE_RAW_LOCK_NESTING depends on PROVE_LOCKING/);
      expect(bad({ version: '3.x-arm', config: { preempt: 'dynamic' } })).to.throw(InputError, /PREEMPT_DYNAMIC does not exist in 3.x-arm/);
      expect(bad({ config: { preempt: 'full', boot: 'none' } })).to.throw(InputError, /boot=none needs preempt: 'dynamic'/);
      expect(() => deriveKernelConfig({ config: { preempt: 'full' } }, { preemption: 'none', lockdep: true })).to.throw(InputError, /contradicts/);
      for (const f of [bad({ config: { preempt: 'voluntary', debugPreempt: true } })]) {
        try {
          f();
        } catch (e) {
          expect((e as Error).message.split('\n')).to.have.length(1);
        }
      }
    });

    it('without PREEMPT_RCU rcu_read_lock() is preempt_disable(): it shows in preempt_count and in_atomic()', () => {
      const pc = (preemption: 'voluntary' | 'full'): number[] => {
        const seen: number[] = [];
        findings({ cpus: 1, preemption }, (m) => {
          m.kthread('t', 0, function* (cur) {
            yield* K.rcu_read_lock(cur);
            seen.push(cur.preempt_count);
            yield* K.rcu_read_unlock(cur);
            seen.push(cur.preempt_count);
          });
        });
        return seen;
      };
      expect(pc('voluntary')).to.deep.equal([1, 0]);
      expect(pc('full')).to.deep.equal([0, 0]);
    });

    it('a scenario declares `kernel`; --kernel is the parameter `kernel` and overrides the version; a bad one is one line', () => {
      const def = defineScenario({
        id: 'k6',
        name: 'k',
        description: 'k',
        params: {},
        kernel: { version: '6.6', config: { preempt: 'full', debugPreempt: true } },
        variants: [{ name: 'buggy', expect: { findings: ['might_sleep'] } }],
        build(m) {
          spinThenMutex(m);
        },
      });
      const o = parseCli(['hunt', 'k6', '--kernel', '6.8']);
      expect(o.params).to.deep.equal(['kernel=6.8']);
      const params = applyParams(def, o.params);
      expect(params.kernel).to.equal('6.8');
      let version = '';
      const prog = scenarioProgram(def, 'buggy', params);
      const e = new Engine();
      e.run({ ...prog, setup: (sim) => { prog.setup(sim); version = (sim.world as K.Machine).kernel.version; } }, makeStrategy({ strategy: 'dfs' }), 0, 100);
      expect(version).to.equal('6.8');
      expect(() => parseCli(['hunt', 'k6', '--kernel', '5.4'])).to.throw(InputError, /^bad --kernel "5.4": expected 3.x-arm, 6.3, 6.6, 6.8, 6.12$/);
      // 3.x has no PREEMPT_DYNAMIC: refused before any run
      const dyn = defineScenario({ ...def, id: 'kd', kernel: { config: { preempt: 'dynamic' } } });
      expect(() => scenarioProgram(dyn, 'buggy', applyParams(dyn, ['kernel=3.x-arm']))).to.throw(InputError, /PREEMPT_DYNAMIC does not exist in 3.x-arm/);
      // and a scenario whose own declaration is impossible is refused when defined
      expect(() => defineScenario({ ...def, id: 'kx', kernel: { config: { preempt: 'none', debugPreempt: true } } })).to.throw(InputError, /DEBUG_PREEMPT/);
    });
  });
});
