/**
 * lockdep: the kernel's predictive lock validator (kernel/locking/lockdep.c, docs/kernel-facts.md §5),
 * fed by the kernel model's lock hooks. From the one schedule a run takes it predicts deadlocks
 * other schedules could reach:
 *  - lock classes from the explicit class names (and `_nested` subclasses);
 *  - per-task held-lock stacks, each entry tagged with its context (task, softirq, hardirq at a
 *    nesting depth); dependencies A -> B are recorded only between locks of the same context;
 *  - dependency edges typed by read-ness (EN, ER, SN, SR: exclusive/shared holder, non-recursive/
 *    recursive acquirer) and cycle search over strong paths only (no -(*R)-> L -(S*)->), as the
 *    2020 recursive-read support does;
 *  - IRQ usage bits per class (IN-HARDIRQ-W, HARDIRQ-ON-W, ... and -R) with the inconsistent-state,
 *    irq-inversion and irq-safe -> irq-unsafe checks;
 *  - chain caching: a held-lock chain validated once in a run is not validated again;
 *  - one-shot: the first report turns the validator off for the rest of the run (debug_locks = 0).
 *
 * Reports follow the kernel's text: headline between rulers, acquisition sites, the dependency
 * chain, and the "Possible unsafe locking scenario" table.
 *
 * Simplifications: no wait-type ("Invalid wait context") checks, no lock_class_key limits, no
 * cross-release; stacks are the model's transcribed call stacks.
 */
import type { Lock } from '../kernel/lock';
import type { Machine } from '../kernel/machine';
import { HARDIRQ_MASK, SOFTIRQ_MASK, SOFTIRQ_OFFSET, in_interrupt } from '../kernel/preempt';
import type { Task } from '../kernel/task';
import { machineStates } from '../kernel/show-state';
import { print_irqtrace_events } from '../kernel/irqtrace';

/** The head of a one-CPU "Possible unsafe locking scenario" table (recursive, inconsistent). */
const ONE_CPU_SCENARIO = ['other info that might help us debug this:', ' Possible unsafe locking scenario:', '', '       CPU0', '       ----'];

// ---- usage bits: state (hard 0 / soft 4) | dir (used-in 0 / enabled 2) | read 1 ----
const USED_IN_HARDIRQ = 0;
const ENABLED_HARDIRQ = 2;
const USED_IN_SOFTIRQ = 4;
const ENABLED_SOFTIRQ = 6;
const READ = 1;
const USAGE_NAMES = ['IN-HARDIRQ-W', 'IN-HARDIRQ-R', 'HARDIRQ-ON-W', 'HARDIRQ-ON-R', 'IN-SOFTIRQ-W', 'IN-SOFTIRQ-R', 'SOFTIRQ-ON-W', 'SOFTIRQ-ON-R'];
const flag = (bit: number): number => 1 << bit;
/** The conflicting bit: same state, other direction, write (read stripped). */
const exclusiveBit = (bit: number): number => (bit & 4) | ((bit & 2) ^ 2);
const stateName = (bit: number): string => ((bit & 4) === 0 ? 'HARDIRQ' : 'SOFTIRQ');

// ---- dependency types: holder Exclusive/Shared x acquirer Non-recursive/Recursive ----
const EN = 1;
const ER = 2;
const SN = 4;
const SR = 8;
const FROM_E = EN | ER;
const TO_N = EN | SN;

interface LockClass {
  id: number;
  name: string;
  kind: string;
  usage: number;
  /** Where each usage bit was first set (call stack, outermost first). */
  usageAt: (string[] | null)[];
  out: Map<number, Edge>;
  in: Map<number, Edge>;
}

interface Edge {
  from: number;
  to: number;
  types: number;
  /** Stack of the acquisition of `to` when the edge was first recorded (outermost first). */
  stack: string[];
  /** How `to` was acquired then (spin_lock_irqsave, mutex_lock, ...): its lock-API frames. */
  how: string;
}

interface Held {
  lock: Lock;
  cls: number;
  /** 0 write/exclusive, 1 non-recursive read, 2 recursive read (lockdep's hlock->read). */
  read: number;
  trylock: boolean;
  /** Context the lock was taken in: nesting depth and softirq-serving bit. */
  ctx: number;
  at: string;
  how: string;
  hardirqsOff: boolean;
}

export interface LockdepOptions {
  /** lockdep's force_read_lock_recursive (the selftests' main suite sets it). */
  forceReadLockRecursive?: boolean;
}

const RULER_CHARS = '=';

// Scratch buffers shared by every search (see Lockdep.scratch).
let scratchBest = new Uint8Array(64);
let scratchQueue = new Int32Array(128);
let scratchState = new Uint8Array(128);
let scratchParent = new Int32Array(64);

/** lockdep's irq_context, made exact per nesting depth: depth, hardirq bit, softirq-serving bit. */
function contextKey(cur: Task): number {
  const pc = cur.preempt_count;
  return cur.depth * 4 + ((pc & HARDIRQ_MASK) !== 0 ? 2 : 0) + ((pc & SOFTIRQ_OFFSET) !== 0 ? 1 : 0);
}

/** The write (non -R) usage bits. */
const WRITE_BITS = 0b01010101;

function subclassOf(how: string): number {
  const i = how.lastIndexOf('/');
  return i < 0 ? 0 : Number(how.slice(i + 1)) || 0;
}

function isRead(lock: Lock, how: string): boolean {
  return how.startsWith('read_') || how.startsWith('down_read');
}

/**
 * print_lock_name's "-{outer:inner}" wait types (include/linux/lockdep_types.h): LD_WAIT_SLEEP 4
 * for sleeping locks, LD_WAIT_SPIN 2 for raw_spinlock_t, LD_WAIT_CONFIG for spinlock_t and
 * rwlock_t (3 with CONFIG_PROVE_RAW_LOCK_NESTING, else the same as LD_WAIT_SPIN), LD_WAIT_INV 0
 * for a plain lockdep_map (work and workqueue completion maps).
 */
function waitType(kind: string, rawNesting: boolean): string {
  if (kind === 'mutex' || kind === 'rw_semaphore') return '-{4:4}';
  if (kind === 'lockdep_map') return '-{0:0}';
  if (kind === 'raw_spinlock') return '-{2:2}';
  return rawNesting ? '-{3:3}' : '-{2:2}';
}

/**
 * The lock API's frames between lock_acquire and the caller, innermost first, for how the lock
 * was taken (with lockdep, mutex_lock is mutex_lock_nested; spinlocks go through _raw_*).
 */
function lockApiFrames(how: string): string[] {
  const base = how.replace(/\/\d+$/, '');
  if (base === 'mutex_lock' || base === 'mutex_lock_nested') return ['__mutex_lock', 'mutex_lock_nested'];
  if (base === 'mutex_trylock') return ['mutex_trylock'];
  if (base.startsWith('down_') || base.startsWith('up_')) return [base];
  if (base.startsWith('lock_map_')) return [];
  if (/^(spin|read|write)_(lock|trylock)/.test(base)) return [`_raw_${base}`];
  return [base];
}

const instances = new WeakMap<Machine, Lockdep>();

/** The machine's lockdep, when it has one. */
export function lockdepOf(m: Machine): Lockdep | null {
  return instances.get(m) ?? null;
}

/**
 * debug_show_held_locks(task) (kernel/locking/lockdep.c): nothing without lockdep, "INFO: lockdep
 * is turned off." once it turned itself off, else lockdep_print_held_locks: the count line and
 * one line per held lock with its real usage bits and wait types.
 */
export function debug_show_held_locks(m: Machine, t: Task): string[] {
  const ld = lockdepOf(m);
  if (ld === null) return [];
  if (!ld.on) return ['INFO: lockdep is turned off.'];
  return ld.heldLines(t);
}

export class Lockdep {
  /** debug_locks: turned off by the first report. */
  on = true;
  private readonly classes: LockClass[] = [];
  private readonly classIds = new Map<string, number>();
  private readonly held = new Map<Task, Held[]>();
  private readonly chains = new Set<number>();
  /** Metrics: dependency edges, validated chains, cached chain hits. */
  edges = 0;
  chainsValidated = 0;
  chainHits = 0;

  constructor(
    private readonly m: Machine,
    private readonly opts: LockdepOptions = {},
  ) {
    instances.set(m, this);
  }

  // ---------------------------------------------------------------------------------
  // hooks
  // ---------------------------------------------------------------------------------

  acquire(cur: Task, lock: Lock, how: string, trylock: boolean): void {
    if (!this.on) return;
    const pc = cur.preempt_count;
    let read = 0;
    if (how === 'lock_map_acquire_read') read = 2;
    else if (isRead(lock, how)) {
      // rwlock_acquire_read: recursive only when forced, or in interrupt context (queued rwlocks).
      read = lock.kind === 'rwlock' && (this.opts.forceReadLockRecursive === true || in_interrupt(pc)) ? 2 : 1;
    }
    const sub = subclassOf(how);
    const cls = this.classFor(lock, sub);
    const h: Held = { lock, cls, read, trylock, ctx: contextKey(cur), at: cur.site, how, hardirqsOff: cur.irqs_disabled };
    if (!this.markUsage(cur, h)) return;
    const stack = this.stackOf(cur);
    stack.push(h);
    if (trylock) return; // no dependency into a trylocked lock; edges from it come later
    const key = this.chainKey(stack, h.ctx);
    if (this.chains.has(key)) {
      this.chainHits++;
      return;
    }
    this.chains.add(key);
    this.chainsValidated++;
    if (!this.checkDeadlock(cur, stack, h)) return;
    this.checkPrevsAdd(cur, stack, h);
  }

  release(cur: Task, lock: Lock, how: string): void {
    if (!this.on) return;
    const stack = this.stackOf(cur);
    for (let i = stack.length - 1; i >= 0; i--) {
      if (stack[i].lock === lock) {
        stack.splice(i, 1);
        return;
      }
    }
    this.report(cur, 'bad_unlock', 'WARNING: bad unlock balance detected!', [lock.lockClass], [
      `${cur.comm}/${cur.pid} is trying to release lock (${lock.lockClass}) at:`,
      `${cur.site} (${how})`,
      'but there are no more locks to release!',
      '',
      'other info that might help us debug this:',
      this.heldText(cur),
    ]);
  }

  /** debug_check_no_locks_freed: the running task must not hold any of `locks`. */
  locksFreed(cur: Task, locks: Lock[], why: string): void {
    if (!this.on) return;
    const stack = this.stackOf(cur);
    const h = stack.find((x) => locks.includes(x.lock));
    if (h === undefined) return;
    const name = this.classes[h.cls].name;
    this.report(cur, 'held_lock_freed', 'WARNING: held lock freed!', [name], [
      `${cur.comm}/${cur.pid} is freeing memory (${why}), with a lock still held there!`,
      `${this.lockText(h)}, at: ${h.at}`,
      this.heldText(cur),
      '',
      ...this.backtrace(cur, ['dump_stack_lvl', 'debug_check_no_locks_freed']),
    ]);
  }

  /** lock_downgrade: the topmost hold of `lock` is a (non-recursive) read hold from now on. */
  downgrade(cur: Task, lock: Lock): void {
    if (!this.on) return;
    const stack = this.stackOf(cur);
    for (let i = stack.length - 1; i >= 0; i--) {
      if (stack[i].lock === lock) {
        stack[i].read = 1;
        return;
      }
    }
  }

  // ---------------------------------------------------------------------------------
  // classes, held stacks, chains
  // ---------------------------------------------------------------------------------

  private classFor(lock: Lock, sub: number): number {
    const name = sub === 0 ? lock.lockClass : `${lock.lockClass}/${sub}`;
    let id = this.classIds.get(name);
    if (id === undefined) {
      id = this.classes.length;
      this.classes.push({ id, name, kind: lock.kind, usage: 0, usageAt: new Array(8).fill(null), out: new Map(), in: new Map() });
      this.classIds.set(name, id);
    }
    return id;
  }

  private stackOf(cur: Task): Held[] {
    let s = this.held.get(cur);
    if (s === undefined) {
      s = [];
      this.held.set(cur, s);
    }
    return s;
  }

  /** Hash of the held chain of the current context (class and read-ness of each lock). */
  private chainKey(stack: Held[], ctx: number): number {
    let a = 0x811c9dc5 ^ ctx;
    let b = 0x01000193 + ctx;
    for (let i = stack.length - 1; i >= 0 && stack[i].ctx === ctx; i--) {
      const v = (stack[i].cls << 2) | stack[i].read;
      a = Math.imul(a ^ v, 0x01000193);
      b = Math.imul(b + v + 0x9e3779b9, 0x85ebca6b) ^ (b >>> 13);
    }
    return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
  }

  private stackText(cur: Task): string[] {
    return [...cur.stack].reverse();
  }

  // ---------------------------------------------------------------------------------
  // usage bits (mark_usage / mark_lock)
  // ---------------------------------------------------------------------------------

  private markUsage(cur: Task, h: Held): boolean {
    const pc = cur.preempt_count;
    const r = h.read !== 0 ? READ : 0;
    if (!h.trylock) {
      if ((pc & HARDIRQ_MASK) !== 0 && !this.markLock(cur, h, USED_IN_HARDIRQ + r)) return false;
      if ((pc & SOFTIRQ_OFFSET) !== 0 && !this.markLock(cur, h, USED_IN_SOFTIRQ + r)) return false;
    }
    if (!h.hardirqsOff) {
      if (!this.markLock(cur, h, ENABLED_HARDIRQ + r)) return false;
      if ((pc & SOFTIRQ_MASK) === 0 && !this.markLock(cur, h, ENABLED_SOFTIRQ + r)) return false;
    }
    return true;
  }

  private markLock(cur: Task, h: Held, bit: number): boolean {
    const c = this.classes[h.cls];
    if (c.usage & flag(bit)) return true;
    c.usage |= flag(bit);
    c.usageAt[bit] = cur.stack.slice(); // outermost first; reversed when printed
    const excl = exclusiveBit(bit);
    const read = (bit & READ) !== 0;
    // valid_state: this very class already has the conflicting usage
    if (c.usage & flag(excl)) return this.inconsistent(cur, h, excl, bit);
    if (!read && c.usage & flag(excl + READ)) return this.inconsistent(cur, h, excl + READ, bit);
    if ((bit & 2) !== 0) {
      // became irq-unsafe: no irq-safe lock may lead here (backwards)
      const found = this.searchBackward(h.cls, h.read !== 0, flag(excl) | flag(excl + READ));
      if (found >= 0) return this.inversion(cur, h, bit, found, 'backwards');
    } else {
      // became irq-safe: it must lead to no irq-unsafe lock (forwards)
      const found = this.searchForward(h.cls, h.read === 2, flag(excl) | flag(excl + READ), true);
      if (found >= 0) return this.inversion(cur, h, bit, found, 'forwards');
    }
    return true;
  }

  // ---------------------------------------------------------------------------------
  // graph searches over strong paths
  // ---------------------------------------------------------------------------------

  /**
   * The searches share scratch buffers (they never nest): per class the best state reached
   * (0 unseen, 1 only through a recursive-read/shared junction, 2 freely), the BFS queue and its
   * states, and parent links. Hunts run many short runs; this keeps lock operations allocation-free.
   */
  private scratch(n: number): void {
    if (scratchBest.length < n) {
      const cap = Math.max(n, scratchBest.length * 2);
      scratchBest = new Uint8Array(cap);
      scratchQueue = new Int32Array(cap * 2);
      scratchState = new Uint8Array(cap * 2);
      scratchParent = new Int32Array(cap);
    }
    scratchBest.fill(0, 0, n);
  }

  /**
   * BFS from `root` along strong paths (no -(*R)-> L -(S*)->), forwards over dependencies or
   * backwards against them: the first class `accept` takes, or -1. The flag a class is reached
   * with says the path so far constrains the next edge: forwards, it was entered through a
   * recursive read (so only -(E*)-> may follow); backwards, it is left as a shared holder (so
   * only -(*N)-> may lead into it). Parent links and the queue (`reached` long) stay in the
   * scratch buffers for the caller.
   */
  private bfs(root: number, rootFlag: boolean, backward: boolean, accept: (x: number, flag: boolean) => boolean): number {
    const cls = this.classes;
    this.scratch(cls.length);
    const best = scratchBest, queue = scratchQueue, st = scratchState, parent = scratchParent;
    const restrict = backward ? TO_N : FROM_E;
    const free = backward ? FROM_E : TO_N;
    let head = 0, tail = 0;
    queue[tail] = root;
    st[tail++] = rootFlag ? 1 : 0;
    best[root] = rootFlag ? 1 : 2;
    parent[root] = -1;
    while (head < tail) {
      const x = queue[head];
      const flag = st[head++] === 1;
      if (accept(x, flag)) {
        this.reached = tail;
        return x;
      }
      for (const e of (backward ? cls[x].in : cls[x].out).values()) {
        const allowed = flag ? e.types & restrict : e.types;
        if (allowed === 0) continue;
        const y = backward ? e.from : e.to;
        const nextFlag = (allowed & free) === 0;
        const rank = nextFlag ? 1 : 2;
        if (best[y] >= rank) continue;
        best[y] = rank;
        parent[y] = x;
        queue[tail] = y;
        st[tail++] = nextFlag ? 1 : 0;
      }
    }
    this.reached = tail;
    return -1;
  }

  /**
   * The first class forward of `root` (the root too when `includeRoot`) whose usage meets
   * `mask`; read bits count only where the class was reached other than through a recursive
   * read, when `readMaskable`. Returns the class or -1.
   */
  private searchForward(root: number, rootViaR: boolean, mask: number, readMaskable: boolean, includeRoot = false): number {
    const cls = this.classes;
    if (!includeRoot && cls[root].out.size === 0) return -1;
    const writeMask = mask & WRITE_BITS;
    return this.bfs(root, rootViaR, false, (x, viaR) => (x !== root || includeRoot) && (cls[x].usage & (viaR && readMaskable ? writeMask : mask)) !== 0);
  }

  /**
   * Backward from `root`. With `mask`, the first class (root excluded) whose usage meets it, or
   * -1; with mask 0, ORs the usage of every class reached (root included) into `accumulated`,
   * the classes left in scratchQueue. A class whose path starts shared (it was held as a
   * reader) counts its write usage only: a reader in an interrupt cannot be blocked by readers.
   */
  private accumulated = 0;
  private searchBackward(root: number, rootShared: boolean, mask: number): number {
    const cls = this.classes;
    const usage = (x: number, shared: boolean): number => (shared ? cls[x].usage & WRITE_BITS : cls[x].usage);
    if (cls[root].in.size === 0) {
      if (mask !== 0) return -1;
      this.accumulated = usage(root, rootShared);
      scratchQueue[0] = root;
      this.reached = 1;
      return -1;
    }
    if (mask !== 0) return this.bfs(root, rootShared, true, (x, shared) => x !== root && (usage(x, shared) & mask) !== 0);
    let acc = 0;
    this.bfs(root, rootShared, true, (x, shared) => {
      acc |= usage(x, shared);
      return false;
    });
    this.accumulated = acc;
    return -1;
  }
  /** How many classes the last accumulating backward search reached (in scratchQueue). */
  private reached = 0;

  // ---------------------------------------------------------------------------------
  // validate_chain: check_deadlock, check_prevs_add, check_noncircular, check_irq_usage
  // ---------------------------------------------------------------------------------

  private checkDeadlock(cur: Task, stack: Held[], next: Held): boolean {
    for (let i = 0; i < stack.length - 1; i++) {
      const prev = stack[i];
      if (prev.cls !== next.cls) continue;
      if (next.read === 2 && prev.read !== 0) continue; // recursive read inside a read: allowed
      const name = this.classes[next.cls].name;
      this.report(cur, 'recursive', 'WARNING: possible recursive locking detected', [name], [
        ...this.acquiring(cur, next, prev, ' '),
        '',
        ...ONE_CPU_SCENARIO,
        `  lock(${name});`,
        `  lock(${name});`,
        '',
        ' *** DEADLOCK ***',
        '',
        ' May be due to missing lock nesting notation',
        '',
        this.heldText(cur, next),
        '',
        ...this.backtrace(cur, ['dump_stack_lvl', 'print_deadlock_bug', 'check_deadlock', 'validate_chain', '__lock_acquire', 'lock_acquire'], next.how),
      ]);
      return false;
    }
    return true;
  }

  private checkPrevsAdd(cur: Task, stack: Held[], next: Held): void {
    for (let i = stack.length - 2; i >= 0; i--) {
      const prev = stack[i];
      if (prev.ctx !== next.ctx) break; // never across a context boundary
      if (!this.checkPrevAdd(cur, prev, next)) return;
      if (!prev.trylock) break; // transitivity covers the older ones
    }
  }

  private checkPrevAdd(cur: Task, prev: Held, next: Held): boolean {
    if (prev.cls === next.cls) return true; // recursive read of one class: no self edge
    const type = prev.read !== 0 ? (next.read === 2 ? SR : SN) : next.read === 2 ? ER : EN;
    const pc = this.classes[prev.cls];
    const existing = pc.out.get(next.cls);
    if (existing !== undefined && (existing.types & type) !== 0) return true;
    // check_noncircular: a strong path next -> ... -> prev closes a cycle
    const cyc = this.findCycle(next, prev);
    if (cyc !== null) return this.circular(cur, prev, next, cyc);
    // check_irq_usage: irq-safe (backwards of prev) -> irq-unsafe (forwards of next)
    for (const state of [0, 4]) {
      if (!this.checkIrqUsage(cur, prev, next, state)) return false;
    }
    if (existing !== undefined) existing.types |= type;
    else {
      const e: Edge = { from: prev.cls, to: next.cls, types: type, stack: cur.stack.slice(), how: next.how };
      pc.out.set(next.cls, e);
      this.classes[next.cls].in.set(prev.cls, e);
      this.edges++;
    }
    return true;
  }

  /** Strong path next -> ... -> prev such that adding prev -> next makes a strong cycle. */
  private findCycle(next: Held, prev: Held): number[] | null {
    const cls = this.classes;
    if (cls[next.cls].out.size === 0 || cls[prev.cls].in.size === 0) return null;
    // conflict: prev is held exclusively, or the path into it does not end in a recursive read
    const x = this.bfs(next.cls, next.read === 2, false, (c, viaR) => c === prev.cls && (prev.read === 0 || !viaR));
    if (x < 0) return null;
    const path: number[] = [];
    for (let c = x; c !== -1; c = scratchParent[c]) path.push(c);
    return path.reverse(); // next ... prev
  }

  private checkIrqUsage(cur: Task, prev: Held, next: Held, state: number): boolean {
    const usedIn = flag(state + USED_IN_HARDIRQ) | flag(state + USED_IN_HARDIRQ + READ);
    this.searchBackward(prev.cls, prev.read !== 0, 0);
    if ((this.accumulated & usedIn) === 0) return true;
    let safe = prev.cls;
    for (let i = 0; i < this.reached; i++) {
      if ((this.classes[scratchQueue[i]].usage & usedIn) !== 0) {
        safe = scratchQueue[i];
        break;
      }
    }
    const fwd = this.searchForward(next.cls, next.read === 2, flag(state + ENABLED_HARDIRQ), false, true);
    if (fwd < 0) return true;
    return this.safeUnsafe(cur, prev, next, state, safe, fwd);
  }

  // ---------------------------------------------------------------------------------
  // reports
  // ---------------------------------------------------------------------------------

  private usageString(cls: number): string {
    const u = this.classes[cls].usage;
    let s = '';
    for (const base of [USED_IN_HARDIRQ, USED_IN_HARDIRQ + READ, USED_IN_SOFTIRQ, USED_IN_SOFTIRQ + READ]) {
      const used = (u & flag(base)) !== 0;
      const en = (u & flag(base + 2)) !== 0;
      s += used && en ? '?' : used ? '-' : en ? '+' : '.';
    }
    return `{${s}}`;
  }

  private classText(cls: number): string {
    const c = this.classes[cls];
    // wait types ("-{o:i}") appear from v5.6 (the wait-context checks); 3.x prints none
    const wt = this.m.kernel.version === '3.x-arm' ? '' : waitType(c.kind, this.m.kernel.PROVE_RAW_LOCK_NESTING);
    return `(${c.name})${this.usageString(cls)}${wt}`;
  }

  private lockText(h: Held): string {
    return this.classText(h.cls);
  }

  /**
   * lockdep_print_held_locks(p): lockdep_depth entries. A report made from validate_chain
   * (circular, recursive, irq-safe -> unsafe) runs before __lock_acquire's lockdep_depth++, so
   * the lock being acquired is not among them (`acquiring`); mark_usage's reports run before
   * the push here too.
   */
  private heldText(cur: Task, acquiring: Held | null = null): string {
    return this.heldLines(cur, acquiring).join('\n');
  }

  /** The held-lock lines of `t` (as lockdep_print_held_locks prints them). */
  heldLines(t: Task, acquiring: Held | null = null): string[] {
    const all = this.held.get(t) ?? [];
    const s = acquiring !== null && all[all.length - 1] === acquiring ? all.slice(0, -1) : all;
    if (s.length === 0) return [`no locks held by ${t.comm}/${t.pid}.`];
    return [`${s.length} lock${s.length > 1 ? 's' : ''} held by ${t.comm}/${t.pid}:`, ...s.map((h, i) => ` #${i}: ${this.lockText(h)}, at: ${h.at}`)];
  }

  /** "... is trying to acquire lock: / but task is already holding lock:" */
  private acquiring(cur: Task, next: Held, prev: Held, indent: string): string[] {
    return [
      `${cur.comm}/${cur.pid} is trying to acquire lock:`,
      `${indent}${this.lockText(next)}, at: ${next.at}`,
      '',
      'but task is already holding lock:',
      `${indent}${this.lockText(prev)}, at: ${prev.at}`,
    ];
  }

  /**
   * "stack backtrace:" then dump_stack(): the CPU line and the call trace, innermost first:
   * lockdep's own frames (`top`, the report function down to lock_acquire), the lock API's
   * frames for `how`, then the running context's transcribed stack.
   */
  private backtrace(cur: Task, top: string[] = [], how: string | null = null): string[] {
    const frames = [...top, ...(how !== null ? lockApiFrames(how) : []), ...this.stackText(cur)];
    const ctx = cur.depth > 0 ? 'IRQ' : 'TASK';
    return ['stack backtrace:', `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`, 'Call Trace:', ` <${ctx}>`, ...frames.map((f) => ` ${f}`), ` </${ctx}>`];
  }

  /**
   * print_usage_bug's "[HC%u[%lu]:SC%u[%lu]:HE%u:SE%u]": lockdep's hardirq context and
   * hardirq_count() >> HARDIRQ_SHIFT, its softirq context and softirq_count() >> SOFTIRQ_SHIFT
   * (so 2 under local_bh_disable, 1 serving a softirq), hardirqs and softirqs enabled.
   */
  private irqState(cur: Task): string {
    const pc = cur.preempt_count;
    const hc = (pc & HARDIRQ_MASK) !== 0 ? 1 : 0;
    const hcount = (pc & HARDIRQ_MASK) >>> 16;
    const sc = (pc & SOFTIRQ_OFFSET) !== 0 ? 1 : 0;
    const scount = (pc & SOFTIRQ_MASK) >>> 8;
    const he = cur.irqs_disabled ? 0 : 1;
    const se = (pc & SOFTIRQ_MASK) === 0 ? 1 : 0;
    return `[HC${hc}[${hcount}]:SC${sc}[${scount}]:HE${he}:SE${se}]`;
  }

  private usageTrace(cls: number, bit: number): string[] {
    const at = [...(this.classes[cls].usageAt[bit] ?? [])].reverse();
    return [`${USAGE_NAMES[bit]} at:`, ...at.map((f) => `  ${f}`)];
  }

  private report(cur: Task, subkind: string, headline: string, classes: string[], body: string[]): false {
    this.on = false; // debug_locks_off(): lockdep reports once per run
    this.m.debug_locks = false;
    // 3.x printed the title bracketed ("[ INFO: possible circular locking dependency detected ]",
    // "[ BUG: bad unlock balance detected! ]"); v4.14 changed them to "WARNING: ..."
    const title = headline.replace(/^WARNING: /, '');
    const shown = this.m.kernel.version !== '3.x-arm' ? headline : subkind === 'bad_unlock' || subkind === 'held_lock_freed' ? `[ BUG: ${title} ]` : `[ INFO: ${title} ]`;
    const rule = RULER_CHARS.repeat(Math.max(shown.length, 30));
    const text = [rule, shown, 'irqsim (lockdep) Not tainted', '-'.repeat(rule.length), ...body].join('\n');
    this.m.log.printk(cur.cpu.id, text);
    this.m.sim.report({
      kind: 'lockdep',
      subkind,
      fingerprint: `lockdep:${subkind}:${[...new Set(classes)].sort().join('+')}`,
      headline: `${headline.replace(/^WARNING: /, 'lockdep: ')} (${classes.join(', ')})`,
      text,
      data: { cpuStates: machineStates(this.m), classes },
    });
    return false;
  }

  private circular(cur: Task, prev: Held, next: Held, path: number[]): false {
    // path: next -> ... -> prev. The kernel prints the chain from prev back to next.
    const names = path.map((c) => this.classes[c].name);
    const target = this.classes[prev.cls].name;
    const source = this.classes[next.cls].name;
    const parent = path.length >= 2 ? this.classes[path[path.length - 2]].name : source;
    const chain: string[] = [];
    // "-> #0" is the new lock's dependency; higher numbers walk back along the existing path.
    for (let i = path.length - 1, k = path.length - 1; i >= 0; i--, k--) {
      const c = path[i];
      const into = i > 0 ? this.classes[path[i - 1]].out.get(c) : undefined;
      // print_circular_bug_entry prints each entry's saved trace: #0 is this acquisition (from
      // check_prev_add down), the others the acquisition that recorded the dependency
      const frames =
        i === 0
          ? ['check_prev_add', 'check_prevs_add', 'validate_chain', '__lock_acquire', 'lock_acquire', ...lockApiFrames(next.how), ...this.stackText(cur)]
          : ['lock_acquire', ...(into ? lockApiFrames(into.how) : []), ...[...(into?.stack ?? [])].reverse()];
      chain.push(`-> #${k} ${this.classText(c)}:`, ...frames.map((f) => `       ${f}`), '');
    }
    const body = [
      ...this.acquiring(cur, next, prev, ''),
      '',
      'which lock already depends on the new lock.',
      '',
      '',
      'the existing dependency chain (in reverse order) is:',
      '',
      ...chain,
      'other info that might help us debug this:',
      '',
    ];
    if (parent !== source) body.push('Chain exists of:', `  ${[source, ...names.slice(1, -1), target].join(' --> ')}`, '');
    body.push(
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0                    CPU1',
      '       ----                    ----',
      `  lock(${target});`,
      `                               lock(${parent});`,
      `                               lock(${target});`,
      `  lock(${source});`,
      '',
      ' *** DEADLOCK ***',
      '',
      this.heldText(cur, next),
      '',
      ...this.backtrace(cur, ['dump_stack_lvl', 'print_circular_bug', 'check_noncircular', 'check_prev_add', 'check_prevs_add', 'validate_chain', '__lock_acquire', 'lock_acquire'], next.how),
    );
    return this.report(cur, 'circular', 'WARNING: possible circular locking dependency detected', names, body);
  }

  private inconsistent(cur: Task, h: Held, oldBit: number, newBit: number): false {
    const name = this.classes[h.cls].name;
    return this.report(cur, 'inconsistent', 'WARNING: inconsistent lock state', [name], [
      `inconsistent {${USAGE_NAMES[oldBit]}} -> {${USAGE_NAMES[newBit]}} usage.`,
      `${cur.comm}/${cur.pid} ${this.irqState(cur)} takes:`,
      `${this.lockText(h)}, at: ${h.at}`,
      `{${USAGE_NAMES[oldBit]}} state was registered at:`,
      ...[...(this.classes[h.cls].usageAt[oldBit] ?? [])].reverse().map((f) => `  ${f}`),
      // print_usage_bug (v6.12): print_irqtrace_events(curr) right after the usage trace
      ...print_irqtrace_events(cur),
      '',
      ...ONE_CPU_SCENARIO,
      `  lock(${name});`,
      '  <Interrupt>',
      `    lock(${name});`,
      '',
      ' *** DEADLOCK ***',
      '',
      this.heldText(cur),
      '',
      ...this.backtrace(cur, ['dump_stack_lvl', 'print_usage_bug', 'mark_lock', 'mark_usage', '__lock_acquire', 'lock_acquire'], h.how),
    ]);
  }

  private irqScenario(safe: string, unsafe: string, middle: string | null): string[] {
    const lines = [' Possible interrupt unsafe locking scenario:', '', '       CPU0                    CPU1', '       ----                    ----', `  lock(${unsafe});`, '                               local_irq_disable();', `                               lock(${safe});`];
    if (middle !== null) lines.push(`                               lock(${middle});`);
    else lines.push(`                               lock(${unsafe});`);
    lines.push('  <Interrupt>', `    lock(${safe});`, '', ' *** DEADLOCK ***', '');
    return lines;
  }

  private inversion(cur: Task, h: Held, bit: number, other: number, dir: 'forwards' | 'backwards'): false {
    const state = stateName(bit);
    const me = this.classes[h.cls].name;
    const them = this.classes[other].name;
    const safe = dir === 'forwards' ? me : them;
    const unsafe = dir === 'forwards' ? them : me;
    return this.report(cur, 'irq_inversion', 'WARNING: possible irq lock inversion dependency detected', [me, them], [
      `${cur.comm}/${cur.pid} just changed the state of lock:`,
      `${this.lockText(h)}, at: ${h.at}`,
      dir === 'forwards' ? `but this lock took another, ${state}-unsafe lock in the past:` : `but this lock was taken by another, ${state}-safe lock in the past:`,
      ` ${this.classText(other)}`,
      '',
      '',
      'and interrupts could create inverse lock ordering between them.',
      '',
      '',
      'other info that might help us debug this:',
      ...this.irqScenario(safe, unsafe, null),
      this.heldText(cur),
      '',
      `the shortest dependencies between 2nd lock and 1st lock:`,
      ...this.usageTrace(other, exclusiveBit(bit)),
      '',
      ...this.backtrace(cur, ['dump_stack_lvl', 'print_irq_inversion_bug', dir === 'forwards' ? 'check_usage_forwards' : 'check_usage_backwards', 'mark_lock', 'mark_usage', '__lock_acquire', 'lock_acquire'], h.how),
    ]);
  }

  private safeUnsafe(cur: Task, prev: Held, next: Held, state: number, safe: number, unsafe: number): false {
    const sn = stateName(state);
    const safeName = this.classes[safe].name;
    const unsafeName = this.classes[unsafe].name;
    const usedBit = (this.classes[safe].usage & flag(state)) !== 0 ? state : state + READ;
    return this.report(cur, 'irq_safe_unsafe', `WARNING: ${sn}-safe -> ${sn}-unsafe lock order detected`, [safeName, unsafeName], [
      `${cur.comm}/${cur.pid} ${this.irqState(cur)} is trying to acquire:`,
      `${this.lockText(next)}, at: ${next.at}`,
      '',
      'and this task is already holding:',
      `${this.lockText(prev)}, at: ${prev.at}`,
      'which would create a new lock dependency:',
      ` ${this.classText(prev.cls)} -> ${this.classText(next.cls)}`,
      '',
      `but this new dependency connects a ${sn}-irq-safe lock:`,
      ` ${this.classText(safe)}`,
      '',
      `... which became ${sn}-irq-safe at:`,
      ...this.usageTrace(safe, usedBit),
      '',
      `to a ${sn}-irq-unsafe lock:`,
      ` ${this.classText(unsafe)}`,
      '',
      `... which became ${sn}-irq-unsafe at:`,
      ...this.usageTrace(unsafe, state + ENABLED_HARDIRQ),
      '',
      'other info that might help us debug this:',
      '',
      ...this.irqScenario(safeName, unsafeName, unsafe !== next.cls || safe !== prev.cls ? this.classes[next.cls].name : null),
      this.heldText(cur, next),
      '',
      ...this.backtrace(cur, ['dump_stack_lvl', 'print_bad_irq_dependency', 'check_irq_usage', 'check_prev_add', 'check_prevs_add', 'validate_chain', '__lock_acquire', 'lock_acquire'], next.how),
    ]);
  }
}

/** Attach lockdep to the machine's lock hooks when the machine has lockdep on. */
export function installLockdep(m: Machine, opts: LockdepOptions = {}): Lockdep | null {
  if (!m.lockdep) return null;
  const ld = new Lockdep(m, opts);
  m.addHooks({
    lockAcquire(cur, lock, how, trylock) {
      // A trylock is annotated only once it succeeded (spin_trylock: spin_acquire after the take).
      if (!trylock) ld.acquire(cur, lock, how, false);
    },
    lockAcquired(cur, lock, how) {
      if (how.includes('trylock')) ld.acquire(cur, lock, how, true);
    },
    lockRelease(cur, lock, how) {
      ld.release(cur, lock, how);
    },
    lockDowngrade(cur, lock) {
      ld.downgrade(cur, lock);
    },
    locksFreed(cur, locks, why) {
      ld.locksFreed(cur, locks, why);
    },
  });
  return ld;
}
