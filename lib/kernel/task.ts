/**
 * A kernel task (kthread, workqueue worker, user-like task, or a CPU's idle task). Each task
 * runs on its own engine thread; interrupts taken on its CPU while it runs are nested frames of
 * that thread, so "current" inside a hardirq handler is the interrupted task, as in the kernel.
 */
import type { Thread, Waitable } from '../../scheduler';
import type { Cpu } from './cpu';
import type { Lock } from './lock';

export const PF_MEMALLOC = 0x00000800;
export const PF_MEMALLOC_NOFS = 0x00040000;
export const PF_MEMALLOC_NOIO = 0x00080000;
export const PF_KTHREAD = 0x00200000;
export const PF_IDLE = 0x00000002;

export type TaskState = 'TASK_RUNNING' | 'TASK_INTERRUPTIBLE' | 'TASK_UNINTERRUPTIBLE' | 'TASK_KILLABLE' | 'TASK_IDLE' | 'TASK_DEAD';

/** TASK_NORMAL: the states wake_up_process / wake_up wake (interruptible and uninterruptible). */
export const TASK_NORMAL = 0x1 | 0x2;

/** What a context (task body or one of its nested handlers) is waiting for, for wait-for graphs. */
export interface WaitInfo {
  kind: 'spinlock' | 'rwlock' | 'mutex' | 'rwsem' | 'cpu' | 'ipi' | 'completion' | 'wait_queue' | 'work' | 'rcu' | 'flag';
  /** The lock waited on (spinlock, mutex). */
  lock?: Lock;
  /** The CPU whose run queue is awaited (cpu). */
  cpu?: Cpu;
  /** For ipi and flag spinners: the CPUs whose running context must act before this one can go on. */
  pendingOn?: () => Cpu[];
  /**
   * For waits on a resource with known owners (a driver's tags, a reserve): the tasks whose
   * release would end the wait. The wait-for graph follows them.
   */
  holders?: () => Task[];
  what: string;
  /**
   * A service thread waiting for work (TASK_IDLE: a kworker, irq thread or ksoftirqd with
   * nothing to do). The hung-task watchdog ignores it, as the kernel's does.
   */
  idle?: boolean;
}

/** A lock held, with the context that took it (for reports and lockdep). */
export interface HeldLock {
  lock: Lock;
  /** Nesting depth of the context that took it (0 = task context). */
  depth: number;
  how: string;
  at: string;
  /** Virtual time it was acquired (lock statistics). */
  since?: number;
}

export class Task {
  state: TaskState = 'TASK_RUNNING';
  flags = 0;
  /** preempt_count of whatever context runs on this task now (task body or nested handler). */
  preempt_count = 0;
  /** rcu_read_lock() nesting. */
  rcu_read_depth = 0;
  readonly held: HeldLock[] = [];
  /** Simulated call stack (function names) per nesting depth, for splats. */
  readonly stacks: string[][] = [[]];
  /** Context names per nesting depth: 'task', 'hardirq <irq>', 'softirq <vec>'. */
  readonly contexts: string[] = ['task'];
  /** What each nesting depth is waiting for, or null. */
  readonly waits: (WaitInfo | null)[] = [null];
  thread!: Thread;
  /** Where the task sleeps in schedule(); wake_up_process() wakes it. */
  sleepWq!: Waitable;
  /**
   * The shared object of the task's state: set_current_state, the scheduler's test in
   * schedule() and a waker's try_to_wake_up are visible steps on it.
   */
  obj = -1;
  /** Pending signals, a bitmask by signal number (send_sig). */
  sigpending = 0;
  /** Virtual time of the last wakeup: a task woken before it blocked goes on no earlier. */
  wokenAt = 0;
  /** Counts sleeps, so a timeout armed for one sleep cannot wake a later one. */
  sleepSeq = 0;
  /** Virtual time the current sleep began (hung-task watchdog). */
  sleepSince = 0;

  constructor(
    readonly pid: number,
    readonly comm: string,
    public cpu: Cpu,
  ) {}

  /** Nesting depth of the running context: 0 in the task body, 1 in a hardirq on top of it. */
  get depth(): number {
    return this.thread.nesting;
  }

  get irqs_disabled(): boolean {
    return !this.thread.interruptible;
  }

  get stack(): string[] {
    return this.stacks[this.depth] ?? (this.stacks[this.depth] = []);
  }

  get context(): string {
    return this.contexts[this.depth] ?? 'task';
  }

  /** The innermost transcribed function of the running context, or the context's name. */
  get site(): string {
    const s = this.stack;
    return s.length > 0 ? s[s.length - 1] : this.context;
  }

  get waitingFor(): WaitInfo | null {
    return this.waits[this.depth] ?? null;
  }

  set waitingFor(w: WaitInfo | null) {
    this.waits[this.depth] = w;
  }

  toString(): string {
    return `${this.comm}/${this.pid}`;
  }
}
