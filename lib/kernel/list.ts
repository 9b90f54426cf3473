/**
 * Doubly linked lists (include/linux/list.h, v6.12) shared between contexts. A list head and
 * the links of every entry on it are one shared object (the head's): each list operation is one
 * visible step on it, read (list_empty, list_first_entry_or_null, ...) or write (list_add,
 * list_del, ...), its pointer updates done by the op's effect. Two list operations with no lock
 * around them can interleave, as they can upstream, but never tear inside one operation (the
 * kernel's stores inside one list_add can, which this model does not explore).
 *
 * CONFIG_DEBUG_LIST is on (lib/list_debug.c __list_del_entry_valid_or_report and
 * __list_add_valid_or_report): a list_del of an entry already deleted (its next is LIST_POISON1)
 * and a list_add of an entry next to itself print the kernel's "list_del corruption" / "list_add
 * double add" WARN (CHECK_DATA_CORRUPTION without CONFIG_BUG_ON_DATA_CORRUPTION) and skip the
 * operation, as upstream does.
 *
 * Simplifications: list_for_each_entry returns the entries in one read step (upstream reads each
 * next pointer in turn; callers hold the lock that makes that moot); re-adding an entry that is
 * still on another list is a scenario error here (upstream it silently corrupts both lists).
 */
import { ProgramError, type Thread } from '../../scheduler';
import type { KernelBody, Machine } from './machine';
import { isKObject } from './object';
import type { Task } from './task';

/** LIST_POISON1 / LIST_POISON2 with x86-64's POISON_POINTER_DELTA (0xdead000000000000). */
export const LIST_POISON1 = 'dead000000000100';
export const LIST_POISON2 = 'dead000000000122';

const serials = new WeakMap<Machine, { next: number }>();
function fakeAddr(m: Machine): string {
  let s = serials.get(m);
  if (s === undefined) serials.set(m, (s = { next: 1 }));
  return `ffff888105${(s.next++ * 0x40).toString(16).padStart(6, '0')}`;
}

/** A list head: the shared object. */
export class list_head_t<T = unknown> {
  readonly obj: number;
  readonly addr: string;
  /** The entries in list order (registered: conformance mode checks every access). */
  readonly items: list_head<T>[];
  constructor(
    m: Machine,
    readonly name: string,
  ) {
    this.obj = m.sim.object(name);
    this.addr = fakeAddr(m);
    this.items = m.sim.shared(this.obj, [] as list_head<T>[]);
  }
  toString(): string {
    return this.name;
  }
}

/** struct list_head embedded in an entry (its `node`). */
export class list_head<T = unknown> {
  /** The list whose links it is part of: the list it is on, or (poisoned) the one it left. */
  on: list_head_t<T> | null = null;
  /** list_del left LIST_POISON1/2 in next/prev. */
  poisoned = false;
  constructor(
    readonly entry: T,
    readonly addr: string,
  ) {}
}

/** LIST_HEAD(name): a list shared between contexts. */
export function LIST_HEAD<T = unknown>(m: Machine, name: string): list_head_t<T> {
  return new list_head_t<T>(m, name);
}

/** INIT_LIST_HEAD(&entry->node): the links of a private entry, pointing at themselves. */
export function INIT_LIST_HEAD<T>(m: Machine, entry: T): list_head<T> {
  const addr = isKObject(entry) ? entry.address() : fakeAddr(m);
  return new list_head<T>(entry, addr);
}

/** CHECK_DATA_CORRUPTION's WARN in lib/list_debug.c; the caller skips the operation. */
function corruption(cur: Task, fn: string, what: string, text: string): void {
  const m = cur.cpu.machine;
  const site = fn;
  const msg = `WARNING: CPU: ${cur.cpu.id} PID: ${cur.pid} at lib/list_debug.c ${fn}\n${text}\nCPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})\nCall Trace:\n${[...cur.stack].reverse().map((f) => ` ${f}`).join('\n')}`;
  m.log.printk(cur.cpu.id, msg);
  m.sim.report({ kind: 'assertion', subkind: 'warn', fingerprint: `warn:${what}@${site}`, headline: `WARNING at ${site}: ${text}`, text: msg });
}

/** What an op's effect hands to the code after its yield (one step: nothing comes between). */
let fxBad: string | null = null;
let fxRet: unknown = null;

function fxAdd(_t: Thread, head: list_head_t, n: list_head): void {
  const items = head.items;
  if (items.length > 0 && items[0] === n) {
    fxBad = `list_add double add: new=${n.addr}, prev=${head.addr}, next=${n.addr}.`;
    return;
  }
  fxBad = null;
  items.unshift(n);
  n.on = head;
  n.poisoned = false;
}
function fxAddTail(_t: Thread, head: list_head_t, n: list_head): void {
  const items = head.items;
  if (items.length > 0 && items[items.length - 1] === n) {
    fxBad = `list_add double add: new=${n.addr}, prev=${n.addr}, next=${head.addr}.`;
    return;
  }
  fxBad = null;
  items.push(n);
  n.on = head;
  n.poisoned = false;
}
/** list_del / list_del_init (b: reinit). */
function fxDel(_t: Thread, n: list_head, init: boolean): void {
  if (n.poisoned) {
    fxBad = `list_del corruption, ${n.addr}->next is LIST_POISON1 (${LIST_POISON1})`;
    return;
  }
  fxBad = null;
  const head = n.on;
  if (head === null) return; // list_del_init'ed meanwhile: self-linked, nothing to unlink
  const items = head.items;
  const i = items.indexOf(n);
  if (i >= 0) items.splice(i, 1);
  if (init) n.on = null;
  else n.poisoned = true;
}
function fxEmpty(_t: Thread, head: list_head_t): void {
  fxRet = head.items.length === 0;
}
function fxSingular(_t: Thread, head: list_head_t): void {
  fxRet = head.items.length === 1;
}
function fxFirst(_t: Thread, head: list_head_t): void {
  const items = head.items;
  fxRet = items.length > 0 ? items[0].entry : null;
}
function fxLast(_t: Thread, head: list_head_t): void {
  const items = head.items;
  fxRet = items.length > 0 ? items[items.length - 1].entry : null;
}
function fxEntries(_t: Thread, head: list_head_t): void {
  fxRet = head.items.map((n) => n.entry);
}

function checkFree(n: list_head, fn: string): void {
  if (n.on !== null && !n.poisoned) {
    throw new ProgramError(`${fn}: entry ${n.addr} is still on ${n.on.name} (list_del it first; the model does not follow the corruption this causes)`);
  }
}

/** list_add(new, head): insert after the head (a stack). */
export function* list_add<T>(cur: Task, n: list_head<T>, head: list_head_t<T>): KernelBody<void> {
  if (n.on !== head) checkFree(n, 'list_add');
  yield cur.thread.write(head.obj, fxAdd, head, n);
  if (fxBad !== null) corruption(cur, '__list_add_valid_or_report', 'list_add double add', fxBad);
}

/** list_add_tail(new, head): insert before the head (a queue). */
export function* list_add_tail<T>(cur: Task, n: list_head<T>, head: list_head_t<T>): KernelBody<void> {
  if (n.on !== head) checkFree(n, 'list_add_tail');
  yield cur.thread.write(head.obj, fxAddTail, head, n);
  if (fxBad !== null) corruption(cur, '__list_add_valid_or_report', 'list_add double add', fxBad);
}

function* del<T>(cur: Task, n: list_head<T>, init: boolean): KernelBody<void> {
  if (n.on === null) {
    // Self-linked (never added, or list_del_init'ed): prev->next == entry, nothing to unlink.
    yield cur.thread.point();
    return;
  }
  yield cur.thread.write(n.on.obj, fxDel, n, init);
  if (fxBad !== null) corruption(cur, '__list_del_entry_valid_or_report', 'list_del corruption', fxBad);
}

/** list_del(entry): unlink it and poison its links (a second list_del is reported). */
export function* list_del<T>(cur: Task, n: list_head<T>): KernelBody<void> {
  yield* del(cur, n, false);
}

/** list_del_init(entry): unlink it and point its links at itself (safe to list_del again). */
export function* list_del_init<T>(cur: Task, n: list_head<T>): KernelBody<void> {
  yield* del(cur, n, true);
}

/** list_move(entry, head): __list_del_entry then list_add; two steps when the lists differ. */
export function* list_move<T>(cur: Task, n: list_head<T>, head: list_head_t<T>): KernelBody<void> {
  yield* del(cur, n, true);
  yield* list_add(cur, n, head);
}

export function* list_move_tail<T>(cur: Task, n: list_head<T>, head: list_head_t<T>): KernelBody<void> {
  yield* del(cur, n, true);
  yield* list_add_tail(cur, n, head);
}

/** list_empty(head): one read of head->next. */
export function* list_empty<T>(cur: Task, head: list_head_t<T>): KernelBody<boolean> {
  yield cur.thread.read(head.obj, fxEmpty, head);
  return fxRet as boolean;
}

export function* list_is_singular<T>(cur: Task, head: list_head_t<T>): KernelBody<boolean> {
  yield cur.thread.read(head.obj, fxSingular, head);
  return fxRet as boolean;
}

/** list_first_entry_or_null(head): the first entry, or null when the list is empty. */
export function* list_first_entry_or_null<T>(cur: Task, head: list_head_t<T>): KernelBody<T | null> {
  yield cur.thread.read(head.obj, fxFirst, head);
  return fxRet as T | null;
}

/**
 * list_first_entry(head): the first entry; the list must not be empty (upstream it would hand
 * back the head itself as an entry: here a scenario error).
 */
export function* list_first_entry<T>(cur: Task, head: list_head_t<T>): KernelBody<T> {
  yield cur.thread.read(head.obj, fxFirst, head);
  const e = fxRet as T | null;
  if (e === null) throw new ProgramError(`list_first_entry on empty list ${head.name} (use list_first_entry_or_null)`);
  return e;
}

export function* list_last_entry<T>(cur: Task, head: list_head_t<T>): KernelBody<T> {
  yield cur.thread.read(head.obj, fxLast, head);
  const e = fxRet as T | null;
  if (e === null) throw new ProgramError(`list_last_entry on empty list ${head.name}`);
  return e;
}

/** list_for_each_entry(pos, head, member): the entries, read in one step (see above). */
export function* list_for_each_entry<T>(cur: Task, head: list_head_t<T>): KernelBody<T[]> {
  yield cur.thread.read(head.obj, fxEntries, head);
  return fxRet as T[];
}
