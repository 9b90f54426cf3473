/**
 * Interrupt lines: request_irq binds a handler to a CPU. The line is an engine interrupt source
 * that always targets whatever context runs on that CPU; a pending interrupt is taken only where
 * that context has IRQs on. The handler runs nested in hardirq context: irq_enter adds
 * HARDIRQ_OFFSET to preempt_count (IRQs are off, as hardware leaves them), irq_exit takes it
 * away, runs pending softirqs, and restores the interrupted state.
 *
 * request_threaded_irq adds a handler thread (irq/<nr>-<name>) that runs in process context when
 * the hardirq handler returns IRQ_WAKE_THREAD; with IRQF_ONESHOT the line stays masked until the
 * thread function has finished.
 *
 * Disabling follows kernel/irq (v6.12): disable_irq_nosync only marks the line disabled (lazy
 * disable); an interrupt that arrives afterwards, even one the device raised before the call,
 * reaches the flow handler (handle_edge_irq / handle_level_irq in chip.c), which sees the line
 * disabled, sets IRQS_PENDING, masks it and does not run the action. enable_irq (__enable_irq ->
 * check_irq_resend in resend.c) replays a pending edge interrupt; a level one is not resent: the
 * device still asserts it, so it fires again when unmasked (here: if the device's `asserted`
 * says so, else if one arrived while disabled). disable_irq is disable_irq_nosync followed by
 * synchronize_irq (manage.c), which waits for a running handler and its thread.
 *
 * Simplification: irq threads are ordinary tasks here (no SCHED_FIFO priority over others).
 */
import type { InterruptSource, Thread } from '../../scheduler';
import type { Cpu } from './cpu';
import type { KernelBody, Machine } from './machine';
import { HARDIRQ_OFFSET } from './preempt';
import { irqEntrySymbol, trace_hardirqs_off, trace_hardirqs_on } from './irqtrace';
import { preempt_latency_start } from './preempt-ip';
import { might_sleep, set_task_state, sleep, try_to_wake_up } from './sched';
import { irqExitSoftirqs } from './softirq';
import { Task } from './task';

export const IRQ_NONE = 0;
export const IRQ_HANDLED = 1;
export const IRQ_WAKE_THREAD = 2;
export type irqreturn_t = number;

/** include/linux/interrupt.h: trigger types (edge: RISING/FALLING, level: HIGH/LOW). */
export const IRQF_TRIGGER_RISING = 0x1;
export const IRQF_TRIGGER_FALLING = 0x2;
export const IRQF_TRIGGER_HIGH = 0x4;
export const IRQF_TRIGGER_LOW = 0x8;
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
  /** Arrived while disabled or masked (IRQS_PENDING): an edge line replays it at enable. */
  pendingWhileMasked: boolean;
  /** A level-triggered line (IRQF_TRIGGER_HIGH / _LOW): not resent, re-asserted by the device. */
  level: boolean;
  /** A level line's device: whether it still asserts the line (irq_set_level_source). */
  asserted: (() => boolean) | null;
  /** The CPU running the hardirq handler now, or null. */
  inProgress: Cpu | null;
  /** The handler thread (threaded IRQs), its wake flag (IRQTF_RUNTHREAD) and whether it runs. */
  thread: Task | null;
  threadWake: boolean;
  threadActive: boolean;
  /** Tasks in synchronize_irq waiting for the thread to go idle (desc->wait_for_threads). */
  threadWaiters: Task[];
  /** The shared object of the line's state (struct irq_desc): raising and masking are steps on it. */
  obj: number;
}

/** The engine-side handler: irq_enter, the handler in hardirq context, irq_exit. */
export function hardirqEntry(name: string, handler: (cur: Task) => KernelBody<unknown>): (t: Thread) => KernelBody {
  return function* (t: Thread) {
    const cur = t.local as Task;
    const d = t.nesting;
    const onIdle = cur === cur.cpu.idle;
    if (onIdle) {
      t.sim.also(cur.obj); // the idle task's state: acquireCpu waits on idleIrq (DPOR footprint)
      cur.cpu.idleIrq++;
    }
    cur.contexts[d] = `hardirq ${name}`;
    cur.stacks[d] = [name];
    cur.waits[d] = null;
    // irq entry: the CPU took the interrupt with hardirqs on, entry code tells lockdep they are off
    trace_hardirqs_off(cur, irqEntrySymbol(cur.cpu.machine, false));
    cur.preempt_count += HARDIRQ_OFFSET;
    preempt_latency_start(cur, HARDIRQ_OFFSET, 'irq_enter_rcu');
    cur.cpu.machine.emit('hardirqEnter', cur, name);
    yield* handler(cur);
    cur.cpu.machine.emit('hardirqExit', cur, name);
    cur.preempt_count -= HARDIRQ_OFFSET;
    yield* irqExitSoftirqs(cur); // irq_exit: softirqs raised by the handler run here
    if (onIdle) {
      t.sim.also(cur.obj);
      cur.cpu.idleIrq--;
    }
    trace_hardirqs_on(cur, irqEntrySymbol(cur.cpu.machine, true)); // irqentry_exit: back to the interrupted context
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
    level: (flags & (IRQF_TRIGGER_HIGH | IRQF_TRIGGER_LOW)) !== 0,
    asserted: null,
    inProgress: null,
    thread: null,
    threadWake: false,
    threadActive: false,
    threadWaiters: [],
    obj: m.sim.object(`irq/${16 + m.irqLines.length}-${name}`),
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
      // handle_edge_irq / handle_level_irq run under desc->lock: a visible step on the line.
      yield cur.thread.write(line.obj);
      // a disabled (or oneshot-masked) line takes the interrupt without running the action,
      // and remembers it (IRQS_PENDING).
      if (line.depth > 0) {
        line.pendingWhileMasked = true;
        return;
      }
      // a level line the device stopped asserting before the CPU took it delivers nothing
      if (line.level && line.asserted !== null && !line.asserted()) return;
      // IRQD_IRQ_INPROGRESS is set here and cleared in a step of its own after the action
      line.inProgress = cur.cpu;
      const r = (yield* handler(cur)) ?? IRQ_HANDLED;
      yield cur.thread.write(line.obj);
      line.inProgress = null;
      if (r === IRQ_WAKE_THREAD && line.thread !== null) {
        if (line.flags & IRQF_ONESHOT) line.depth++; // mask_irq until irq_finalize_oneshot
        line.threadWake = true;
        try_to_wake_up(line.thread);
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
        set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
        if (!line.threadWake) {
          yield* sleep(cur, { kind: 'wait_queue', what: `irq ${line.irq}`, idle: true }, 'irq_thread');
          continue;
        }
        set_task_state(cur, 'TASK_RUNNING');
        line.threadWake = false;
        line.threadActive = true;
        cur.stack.push('irq_thread_fn', name);
        yield* thread_fn(cur);
        cur.stack.length -= 2;
        line.threadActive = false;
        if (line.flags & IRQF_ONESHOT) unmask(m, line); // irq_finalize_oneshot
        if (!line.threadWake) for (const w of line.threadWaiters.splice(0)) try_to_wake_up(w);
      }
    },
    { service: true },
  );
  return line;
}

/**
 * For a level-triggered line: how the device reports whether it still asserts the line (its
 * status register). Without one, a level line counts as asserted when an interrupt arrived
 * while it was disabled and nothing has served it since.
 */
export function irq_set_level_source(line: IrqLine, asserted: () => boolean): void {
  if (!line.level) throw new Error(`irq ${line.irq} (${line.name}) is not level-triggered (IRQF_TRIGGER_HIGH / IRQF_TRIGGER_LOW)`);
  line.asserted = asserted;
}

function unmask(m: Machine, line: IrqLine): void {
  if (line.depth > 0) line.depth--;
  if (line.depth !== 0) return;
  const pending = line.pendingWhileMasked;
  line.pendingWhileMasked = false; // check_irq_resend clears IRQS_PENDING either way
  // edge: replay the pending one (check_irq_resend); level: fires again while still asserted
  const fire = line.level ? (line.asserted !== null ? line.asserted() : pending) : pending;
  if (fire) m.sim.raise(line.src);
}

function raiseFx(_t: unknown, m: Machine, line: IrqLine): void {
  raise_irq(m, line);
}

/**
 * The device raises its interrupt line. From a thread standing in for the device, as
 * `yield* raise_irq(cur, line)`: a visible step of its own on the line, so other contexts can
 * be ordered before and after it. From a timer or a device model already inside a step, as
 * `raise_irq(m, line)`: part of that step (the line is declared as touched by it).
 */
export function raise_irq(cur: Task, line: IrqLine): KernelBody<void>;
export function raise_irq(m: Machine, line: IrqLine): void;
export function raise_irq(who: Task | Machine, line: IrqLine): KernelBody<void> | void {
  if (who instanceof Task) {
    const cur = who;
    return (function* () {
      yield cur.thread.write(line.obj, raiseFx, cur.cpu.machine, line);
    })();
  }
  const m = who;
  m.sim.also(line.obj);
  if (line.depth > 0) {
    line.pendingWhileMasked = true;
    return;
  }
  m.sim.raise(line.src);
}

/** disable_irq_nosync: mark the line disabled (lazily masked), do not wait. */
export function* disable_irq_nosync(cur: Task, line: IrqLine): KernelBody<void> {
  // __disable_irq under desc->lock: a visible write of the line
  yield cur.thread.write(line.obj);
  line.depth++;
}

/**
 * synchronize_irq: wait until the hardirq handler is not running on any CPU (spinning), then
 * until the handler thread is idle (sleeping). Called from a handler of the same line it never
 * returns, as upstream.
 */
export function* synchronize_irq(cur: Task, line: IrqLine): KernelBody<void> {
  yield* might_sleep(cur, 'synchronize_irq');
  yield cur.thread.read(line.obj);
  if (line.inProgress !== null) {
    cur.waitingFor = { kind: 'flag', what: `irq ${line.irq} (${line.name}) handler`, pendingOn: () => (line.inProgress ? [line.inProgress] : []) };
    // inProgress changes only in steps that write line.obj (the handler's first and last step)
    yield cur.thread.spinUntil(() => line.inProgress === null, null, null, null, [line.obj]);
    cur.waitingFor = null;
  }
  // wait_event(desc->wait_for_threads, !threads_active)
  for (;;) {
    yield cur.thread.read(line.obj); // under desc->lock: queue, state and test in one step
    set_task_state(cur, 'TASK_UNINTERRUPTIBLE');
    if (!(line.threadActive || line.threadWake)) break;
    line.threadWaiters.push(cur);
    // the wait-for graph follows it to the handler thread that must go idle
    yield* sleep(cur, { kind: 'wait_queue', what: `irq ${line.irq} thread`, holders: () => (line.thread !== null && (line.threadActive || line.threadWake) ? [line.thread] : []) }, 'synchronize_irq');
  }
  set_task_state(cur, 'TASK_RUNNING');
}

/** disable_irq: disable_irq_nosync, then synchronize_irq (kernel/irq/manage.c). */
export function* disable_irq(cur: Task, line: IrqLine): KernelBody<void> {
  yield* disable_irq_nosync(cur, line);
  yield* synchronize_irq(cur, line);
}

/** enable_irq: undo one disable; a raise that came while masked is delivered now. */
export function* enable_irq(cur: Task, line: IrqLine): KernelBody<void> {
  // __enable_irq and check_irq_resend under desc->lock: a visible write of the line
  yield cur.thread.write(line.obj);
  unmask(cur.cpu.machine, line);
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
