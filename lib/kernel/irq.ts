/**
 * Interrupt lines: request_irq binds a handler to a CPU. The line is an engine interrupt source
 * that always targets whatever context runs on that CPU; a pending interrupt is taken only where
 * that context has IRQs on. The handler runs nested in hardirq context: irq_enter adds
 * HARDIRQ_OFFSET to preempt_count (IRQs are off, as hardware leaves them), irq_exit takes it
 * away, runs pending softirqs, and restores the interrupted state.
 *
 * request_threaded_irq adds a handler thread (irq/<nr>-<name>) that runs in process context when
 * the hardirq handler returns IRQ_WAKE_THREAD; with IRQF_ONESHOT the line stays masked until the
 * thread function has finished. disable_irq / enable_irq mask a line (a raise while masked is
 * remembered and delivered at enable, as IRQS_PENDING is); disable_irq and synchronize_irq wait
 * for a running handler and its thread.
 *
 * Simplification: irq threads are ordinary tasks here (no SCHED_FIFO priority over others).
 */
import type { InterruptSource, Thread } from '../../scheduler';
import type { Cpu } from './cpu';
import type { KernelBody, Machine } from './machine';
import { HARDIRQ_OFFSET } from './preempt';
import { might_sleep, sleep, wake_up_process } from './sched';
import { irqExitSoftirqs } from './softirq';
import type { Task } from './task';

export const IRQ_NONE = 0;
export const IRQ_HANDLED = 1;
export const IRQ_WAKE_THREAD = 2;
export type irqreturn_t = number;

export const IRQF_SHARED = 0x80;
export const IRQF_ONESHOT = 0x2000;

/** A hardirq handler; returning nothing counts as IRQ_HANDLED. */
export type IrqHandler = (cur: Task) => KernelBody<irqreturn_t | void>;

export interface IrqLine {
  name: string;
  /** The Linux irq number (allocated from 16 up). */
  irq: number;
  cpu: number;
  src: InterruptSource;
  flags: number;
  /** disable_irq nesting depth (plus one while a ONESHOT thread runs). */
  depth: number;
  /** Raised while masked: delivered when the line is enabled again (IRQS_PENDING). */
  pendingWhileMasked: boolean;
  /** The CPU running the hardirq handler now, or null. */
  inProgress: Cpu | null;
  /** The handler thread (threaded IRQs), its wake flag (IRQTF_RUNTHREAD) and whether it runs. */
  thread: Task | null;
  threadWake: boolean;
  threadActive: boolean;
  /** Tasks in synchronize_irq waiting for the thread to go idle (desc->wait_for_threads). */
  threadWaiters: Task[];
}

/** The engine-side handler: irq_enter, the handler in hardirq context, irq_exit. */
export function hardirqEntry(name: string, handler: (cur: Task) => KernelBody<unknown>): (t: Thread) => KernelBody {
  return function* (t: Thread) {
    const cur = t.local as Task;
    const d = t.nesting;
    const onIdle = cur === cur.cpu.idle;
    if (onIdle) cur.cpu.idleIrq++;
    cur.contexts[d] = `hardirq ${name}`;
    cur.stacks[d] = [name];
    cur.waits[d] = null;
    cur.preempt_count += HARDIRQ_OFFSET;
    cur.cpu.machine.emit('hardirqEnter', cur, name);
    yield* handler(cur);
    cur.cpu.machine.emit('hardirqExit', cur, name);
    cur.preempt_count -= HARDIRQ_OFFSET;
    yield* irqExitSoftirqs(cur); // irq_exit: softirqs raised by the handler run here
    if (onIdle) cur.cpu.idleIrq--;
    cur.contexts.length = d;
    cur.stacks.length = d;
    cur.waits.length = d;
  };
}

function makeLine(m: Machine, cpu: number, name: string, flags: number): IrqLine {
  m.cpu(cpu); // validates the CPU number
  const line: IrqLine = {
    name,
    irq: 16 + m.irqLines.length,
    cpu,
    src: null as unknown as InterruptSource,
    flags,
    depth: 0,
    pendingWhileMasked: false,
    inProgress: null,
    thread: null,
    threadWake: false,
    threadActive: false,
    threadWaiters: [],
  };
  m.irqLines.push(line);
  return line;
}

function bind(m: Machine, line: IrqLine, handler: IrqHandler): void {
  const c = m.cpu(line.cpu);
  line.src = m.sim.interruptSource({
    name: line.name,
    target: c.running.thread,
    handler: hardirqEntry(line.name, function* (cur: Task) {
      line.inProgress = cur.cpu;
      const r = (yield* handler(cur)) ?? IRQ_HANDLED;
      line.inProgress = null;
      if (r === IRQ_WAKE_THREAD && line.thread !== null) {
        if (line.flags & IRQF_ONESHOT) line.depth++; // mask_irq until irq_finalize_oneshot
        line.threadWake = true;
        wake_up_process(line.thread);
      }
    }),
  });
  c.irqs.push(line.src);
}

/** request_irq(): a device interrupt line on `cpu` (its affinity). */
export function request_irq(m: Machine, cpu: number, name: string, handler: IrqHandler, flags = 0): IrqLine {
  const line = makeLine(m, cpu, name, flags);
  bind(m, line, handler);
  return line;
}

/** irq_default_primary_handler: just wake the thread. */
function* defaultPrimary(): KernelBody<irqreturn_t> {
  return IRQ_WAKE_THREAD;
}

/**
 * request_threaded_irq(irq, handler, thread_fn, flags, name): `handler` (null: the default
 * primary handler) runs in hardirq context; `thread_fn` in the line's irq thread.
 */
export function request_threaded_irq(m: Machine, cpu: number, name: string, handler: IrqHandler | null, thread_fn: (cur: Task) => KernelBody<irqreturn_t | void>, flags = 0): IrqLine {
  const line = makeLine(m, cpu, name, flags);
  bind(m, line, handler ?? defaultPrimary);
  line.thread = m.kthread(
    `irq/${line.irq}-${name}`,
    cpu,
    function* (cur) {
      for (;;) {
        // irq_wait_for_interrupt: set_current_state, test IRQTF_RUNTHREAD, schedule.
        cur.woken = false;
        if (!line.threadWake) {
          yield* sleep(cur, { kind: 'wait_queue', what: `irq ${line.irq}`, idle: true }, 'irq_thread');
          continue;
        }
        line.threadWake = false;
        line.threadActive = true;
        cur.stack.push('irq_thread_fn', name);
        yield* thread_fn(cur);
        cur.stack.length -= 2;
        line.threadActive = false;
        if (line.flags & IRQF_ONESHOT) unmask(m, line); // irq_finalize_oneshot
        if (!line.threadWake) for (const w of line.threadWaiters.splice(0)) wake_up_process(w);
      }
    },
    { service: true },
  );
  return line;
}

function unmask(m: Machine, line: IrqLine): void {
  if (line.depth > 0) line.depth--;
  if (line.depth === 0 && line.pendingWhileMasked) {
    line.pendingWhileMasked = false;
    m.sim.raise(line.src);
  }
}

/** The device raises its interrupt (from a thread, a timer or setup). */
export function raise_irq(m: Machine, line: IrqLine): void {
  if (line.depth > 0) {
    line.pendingWhileMasked = true;
    return;
  }
  m.sim.raise(line.src);
}

/** disable_irq_nosync: mask the line, do not wait. */
export function* disable_irq_nosync(cur: Task, line: IrqLine): KernelBody<void> {
  line.depth++;
  yield cur.thread.point();
}

/**
 * synchronize_irq: wait until the hardirq handler is not running on any CPU (spinning), then
 * until the handler thread is idle (sleeping). Called from a handler of the same line it never
 * returns, as upstream.
 */
export function* synchronize_irq(cur: Task, line: IrqLine): KernelBody<void> {
  yield* might_sleep(cur, 'synchronize_irq');
  if (line.inProgress !== null) {
    cur.waitingFor = { kind: 'flag', what: `irq ${line.irq} (${line.name}) handler`, pendingOn: () => (line.inProgress ? [line.inProgress] : []) };
    yield cur.thread.spinUntil(() => line.inProgress === null);
    cur.waitingFor = null;
  }
  // wait_event(desc->wait_for_threads, !threads_active)
  for (;;) {
    cur.woken = false;
    yield cur.thread.point();
    if (!(line.threadActive || line.threadWake)) break;
    line.threadWaiters.push(cur);
    yield* sleep(cur, { kind: 'wait_queue', what: `irq ${line.irq} thread` }, 'synchronize_irq');
  }
}

/** disable_irq: mask the line and wait for running handlers (synchronize_irq). */
export function* disable_irq(cur: Task, line: IrqLine): KernelBody<void> {
  line.depth++;
  yield* synchronize_irq(cur, line);
}

/** enable_irq: undo one disable; a raise that came while masked is delivered now. */
export function* enable_irq(cur: Task, line: IrqLine): KernelBody<void> {
  unmask(cur.cpu.machine, line);
  yield cur.thread.point();
}

// ---- free_irq (appended) ----
// (Imports at the end keep the code above untouched; ES imports are hoisted.)
import { WARN } from './bug';
import { in_interrupt } from './preempt';

/** The handler left in place of a freed line's: a raise already in flight finds no action. */
function* noAction(): KernelBody<irqreturn_t> {
  return IRQ_NONE;
}

/**
 * free_irq(irq, dev_id) (kernel/irq/manage.c __free_irq, v6.12): WARN when called from interrupt
 * context ("Trying to free IRQ %d from IRQ context!"), take desc->request_mutex (might_sleep),
 * remove the action and shut the line down under desc->lock, then wait for a handler still
 * running on another CPU and for the irq thread (__synchronize_irq). After it returns the
 * handler never runs again, so the driver may free what the handler uses.
 *
 * Simplifications: one action per line (no IRQF_SHARED list); the irq thread is left asleep
 * instead of kthread_stop'ed; desc->lock's section is one step on no particular object (IrqLine
 * has no shared object yet).
 */
export function* free_irq(cur: Task, line: IrqLine): KernelBody<void> {
  cur.stack.push('free_irq');
  cur.stack.push('__free_irq');
  WARN(cur, in_interrupt(cur.preempt_count), `Trying to free IRQ ${line.irq} from IRQ context!`);
  cur.stack.pop();
  yield* might_sleep(cur, 'mutex_lock'); // mutex_lock(&desc->request_mutex)
  yield cur.thread.point(); // raw_spin_lock_irqsave(&desc->lock): remove the action, irq_shutdown
  line.depth++; // irq_shutdown masks the line: later raises are not delivered
  // The action is gone: an interrupt already pending at the CPU finds none (handle_bad_irq).
  (line.src as { handler: InterruptSource['handler'] }).handler = hardirqEntry(line.name, noAction);
  yield* synchronize_irq(cur, line);
  cur.stack.pop();
}
