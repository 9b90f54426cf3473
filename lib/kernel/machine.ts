/**
 * The simulated machine: N CPUs, their idle tasks and IPI lines, the tasks, the kernel log, the
 * hook points detectors subscribe to, and the machine options (preemption model, lockdep).
 * A scenario builds one inside its program's setup, on the engine of that run.
 */
import { Engine, ProgramError, type Thread } from '../../scheduler';
import { Resource } from '../../scheduler/resource';
import { Cpu } from './cpu';
import { deriveKernelConfig, type KernelConfig, type KernelSpec } from './config';
import { MACHINE_OBSERVER, type HookName, type KernelHooks, type MachineObserver } from './hooks';
import { irqsoff_tracer_init, lockstat_init } from './lockstat';
import { irqtrace_init } from './irqtrace';
import { preempt_ip_init } from './preempt-ip';
import { KernelLog } from './log';
import { acquireCpu, releaseCpu } from './sched';
import type { IrqLine } from './irq';
import { smp_init } from './smp';
import { SoftirqState } from './softirq';
import { TickState, timers_init } from './timer';
import { PF_IDLE, PF_KTHREAD, Task } from './task';
import { resolve } from 'path';
import { registerInternalRoot } from '../../scheduler/crash';

// A crash whose innermost frame is in lib/ is irqsim's own bug (internal_error), not the scenario's.
registerInternalRoot(resolve(__dirname, '..'));

export type { PreemptionModel } from './config';
import type { PreemptionModel } from './config';

export interface MachineOptions {
  cpus?: number;
  /** CONFIG_PREEMPT_NONE / _VOLUNTARY / PREEMPT (full). Default 'voluntary'. */
  preemption?: PreemptionModel;
  /** CONFIG_LOCKDEP / IRQ tracing: switches lockdep-only warnings on. Default true. */
  lockdep?: boolean;
  /**
   * The architecture, for what differs in the model: how irqs_disabled() prints in splats (x86
   * prints 1; arm64 and 32-bit ARM the raw PSR I bit, 128), and ARM's flush_tlb_kernel_range.
   */
  arch?: 'x86' | 'arm64' | 'arm';
  /**
   * The kernel modelled: version and configuration (lib/kernel/config.ts). Default: the newest
   * version, preemption from `preemption`, PROVE_RCU as lockdep.
   */
  kernel?: KernelSpec;
  /** CONFIG_HZ: jiffies per second. Default 250. */
  hz?: number;
  /** CONFIG_LOCK_STAT: per lock class acquisitions, contentions, wait and hold times as metrics. */
  lockStat?: boolean;
  /** The irqsoff tracer: IRQs-off time per CPU (total and longest span) as metrics. */
  irqsoffTracer?: boolean;
  /** A tracer (lib/report/trace.ts): sees the machine first; never hashed (a symbol key). */
  [MACHINE_OBSERVER]?: MachineObserver;
}

export type KernelBody<R = unknown> = Generator<unknown, R, unknown>;

export class Machine {
  readonly cpus: Cpu[] = [];
  readonly tasks: Task[] = [];
  readonly log: KernelLog;
  readonly preemption: PreemptionModel;
  readonly lockdep: boolean;
  /** The derived kernel configuration (version, PREEMPT_RCU, DEBUG_PREEMPT, ...). */
  readonly kernel: KernelConfig;
  /**
   * lockdep's debug_locks: cleared when lockdep reports (it turns itself off); checks that the
   * kernel makes only while lockdep is live (lockdep_assert_*) test it.
   */
  debug_locks: boolean;
  readonly arch: 'x86' | 'arm64' | 'arm';
  readonly hz: number;
  readonly softirq: SoftirqState;
  readonly tick: TickState;
  /** Interrupt lines requested so far (irq.ts numbers them from 16). */
  readonly irqLines: IrqLine[] = [];
  /** Kernel preemptions (a task giving up its CPU at a preemption point), a metric. */
  preemptions = 0;
  private readonly hookList: KernelHooks[] = [];
  private nextPid = 1;

  constructor(
    readonly sim: Engine,
    opts: MachineOptions = {},
  ) {
    const n = opts.cpus ?? 2;
    if (!Number.isSafeInteger(n) || n < 1 || n > 256) throw new ProgramError(`cpus must be an integer from 1 to 256, got ${n}`);
    this.lockdep = opts.lockdep ?? true;
    this.debug_locks = this.lockdep;
    this.kernel = deriveKernelConfig(opts.kernel, { preemption: opts.preemption, lockdep: this.lockdep });
    this.preemption = this.kernel.preemption;
    if (this.kernel.version === '3.x-arm' && opts.arch !== undefined && opts.arch !== 'arm') throw new ProgramError(`kernel 3.x-arm is a 32-bit ARM kernel: arch ${opts.arch} is impossible`);
    this.arch = opts.arch ?? (this.kernel.version === '3.x-arm' ? 'arm' : 'x86');
    this.hz = opts.hz ?? 250;
    if (!Number.isInteger(this.hz) || this.hz < 100 || this.hz > 1000) throw new ProgramError(`hz must be an integer from 100 to 1000, got ${this.hz}`);
    this.log = new KernelLog(sim);
    for (let i = 0; i < n; i++) {
      const cpu = new Cpu(i, this);
      cpu.runqueue = new Resource(sim, `rq${i}`, 1);
      const idle = new Task(0, `swapper/${i}`, cpu);
      idle.flags |= PF_IDLE | PF_KTHREAD;
      const never = sim.waitable(`idle${i}`);
      const it = sim.spawn(
        `swapper/${i}`,
        function* (t: Thread) {
          yield t.block(never); // the idle loop: waits for interrupts, never for work here
        },
        0,
        { daemon: true },
      );
      idle.thread = it;
      it.local = idle;
      idle.obj = sim.object(`swapper/${i}.state`);
      cpu.idle = idle;
      this.cpus.push(cpu);
    }
    this.softirq = new SoftirqState(this);
    this.tick = new TickState(this);
    smp_init(this);
    irqtrace_init(this);
    preempt_ip_init(this);
    timers_init(this);
    if (opts.lockStat) lockstat_init(this);
    if (opts.irqsoffTracer) irqsoff_tracer_init(this);
    opts[MACHINE_OBSERVER]?.(this);
  }

  /** Subscribe a detector. */
  addHooks(h: KernelHooks): void {
    this.hookList.push(h);
  }

  /** Call every subscriber of hook `name`. */
  emit<K extends HookName>(name: K, ...args: Parameters<NonNullable<KernelHooks[K]>>): void;
  // Hot path (every lock operation): fixed arity, no rest array, no apply.
  emit(name: HookName, a?: unknown, b?: unknown, c?: unknown, d?: unknown): void {
    const list = this.hookList;
    for (let i = 0; i < list.length; i++) {
      const h = list[i];
      const f = h[name] as ((a: unknown, b: unknown, c: unknown, d: unknown) => void) | undefined;
      if (f !== undefined) f.call(h, a, b, c, d);
    }
  }

  cpu(id: number): Cpu {
    const c = this.cpus[id];
    if (c === undefined) throw new ProgramError(`no CPU ${id} (machine has ${this.cpus.length})`);
    return c;
  }

  /**
   * kthread_create_on_cpu + wake_up_process: a kernel thread bound to `cpu`. It waits for the
   * CPU's run queue, runs `body`, and leaves the CPU when the body returns. A `service` thread
   * (kworker, irq thread, ksoftirqd, rescuer) may sleep forever waiting for work: it never
   * keeps a run alive and is not reported as stuck on its own.
   */
  kthread(comm: string, cpu: number, body: (cur: Task) => KernelBody, opts: { service?: boolean } = {}): Task {
    const c = this.cpu(cpu);
    const task = new Task(this.nextPid++, comm, c);
    task.flags |= PF_KTHREAD;
    this.tasks.push(task);
    task.sleepWq = this.sim.waitable(`${comm}:sleep`);
    task.obj = this.sim.object(`${comm}.state`);
    const th = this.sim.spawn(comm, function* () {
      yield* acquireCpu(task);
      yield* body(task);
      task.state = 'TASK_DEAD';
      yield* releaseCpu(task);
    }, undefined, { daemon: opts.service === true });
    task.thread = th;
    th.local = task;
    return task;
  }

  /**
   * A user process running a system call path on `cpu` (no PF_KTHREAD): what a write(2) or an
   * ioctl transcribed into the model runs as. Same life cycle as a kthread.
   */
  process(comm: string, cpu: number, body: (cur: Task) => KernelBody): Task {
    const t = this.kthread(comm, cpu, body);
    t.flags &= ~PF_KTHREAD;
    return t;
  }

  /** The task whose context is running on the engine thread taking the current step. */
  current(): Task {
    const t = this.sim.running;
    if (t === null || !(t.local instanceof Task)) throw new Error('no current task: not called from a kernel context');
    return t.local;
  }
}
