/**
 * Generates docs/primitives.md (`npm run docs:primitives`): for every kernel primitive the
 * programs exercise, the shared objects its steps touch, read or write, and the context rules
 * it checks. Measured, not declared: the programs (the primitives' race programs and catalog
 * scenarios) run in conformance + captureOps mode, and
 *  - each op is attributed to the innermost lib/kernel function exported by lib/kernel that
 *    issued it (from the op site's stack); an op issued from scenario code is not a primitive's;
 *  - an object's kind is the lib/kernel constructor or function that created it;
 *  - a context rule is a kernel-model hook (mightSleep, lockAcquire, objectAccess, ...) emitted
 *    under that primitive, or a report (WARN, BUG) made under it.
 * A conformance finding in any run fails the generator: the table would describe steps that
 * do not carry their effects.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'fs';
import * as ts from 'typescript';
import { join, resolve } from 'path';
import { Engine, makeStrategy, type Program } from '../scheduler';
import { Thread } from '../scheduler/thread';
import * as K from '../lib/kernel';
import { Machine } from '../lib/kernel/machine';
import { scenarioProgram } from '../lib/scenario/define';
import { findScenario } from '../lib/scenario/registry';
import { primitivePrograms } from '../test/support/primitives';

Error.stackTraceLimit = 60;
const KERNEL_DIR = resolve(__dirname, '..', 'lib', 'kernel') + '/';
const SCHED_DIR = resolve(__dirname, '..', 'scheduler') + '/';
const exported = new Set(Object.keys(K).filter((k) => typeof (K as Record<string, unknown>)[k] === 'function'));
/** Functions that are checks or plumbing, never the primitive a step belongs to. */
const NOT_PRIMITIVES = new Set(['might_sleep', 'WARN_ON', 'WARN_ON_ONCE', 'WARN', 'BUG_ON', 'fn', 'preemptionPoint', 'sleep', 'acquireCpu', 'releaseCpu', 'emit', 'recordAcquired', 'recordReleased', 'recordReadAcquired']);
/** Readable names for objects the model creates outside a constructor of their own. */
const KIND_NAMES: Record<string, string> = {
  Machine: 'CPU runqueue',
  KObject: 'slab object (KObject)',
  RcuState: 'RCU state',
  rcu_pointer: 'RCU pointer',
  tasklet_head: 'tasklet_vec (per CPU)',
  'scenario object': 'object of the scenario',
};

/** Hook name -> the rule it feeds (the detector in lib/check that subscribes). */
const RULES: Record<string, string> = {
  mightSleep: 'might_sleep (sleeping in atomic context)',
  schedule: 'scheduling while atomic',
  lockAcquire: 'lockdep',
  lockAcquired: 'lockdep',
  lockRelease: 'lockdep',
  locksFreed: 'lockdep (held lock freed)',
  rcuReadLock: 'RCU read side',
  rcuReadUnlock: 'RCU read side',
  rcuDereference: 'RCU (dereference outside a read-side section)',
  objectAccess: 'KASAN (use-after-free)',
  objectFree: 'KASAN (double-free, free under RCU readers)',
  crossCall: 'IPI with IRQs off',
  alloc: 'GFP context',
};

interface Frame {
  name: string;
  file: string;
}

function frames(stack: string | undefined): Frame[] {
  const out: Frame[] = [];
  for (const line of (stack ?? '').split('\n')) {
    const m = /^\s+at (?:new )?(\S+) \((.+?):\d+:\d+\)$/.exec(line);
    if (m) out.push({ name: m[1].replace(/^.*\./, ''), file: m[2] });
  }
  return out;
}

/** The primitive a stack belongs to: the innermost exported lib/kernel function, if the op came through lib/kernel. */
function primitiveOf(stack: string | undefined): { name: string; file: string } | null {
  for (const f of frames(stack)) {
    if (f.file.startsWith(SCHED_DIR) || f.file === __filename) continue;
    if (!f.file.startsWith(KERNEL_DIR)) return null; // issued by scenario or test code
    if (exported.has(f.name) && !NOT_PRIMITIVES.has(f.name)) return { name: f.name, file: f.file.slice(KERNEL_DIR.length) };
  }
  return null;
}

/** The kind of an object: the innermost lib/kernel constructor or function that created it. */
function creatorOf(stack: string | undefined): string {
  for (const f of frames(stack)) {
    if (f.file.startsWith(SCHED_DIR) || f.file === __filename) continue;
    if (f.file.startsWith(KERNEL_DIR)) return KIND_NAMES[f.name] ?? f.name;
    return KIND_NAMES['scenario object'];
  }
  return '?';
}

interface Row {
  file: string;
  objects: Set<string>;
  access: Set<string>;
  rules: Set<string>;
}
const rows = new Map<string, Row>();
const row = (p: { name: string; file: string }): Row => {
  let r = rows.get(p.name);
  if (r === undefined) rows.set(p.name, (r = { file: p.file, objects: new Set(), access: new Set(), rules: new Set() }));
  return r;
};

// Object kinds, per engine run (ids restart every run).
let kinds: string[] = [];
const engineProto = Engine.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
const origObject = engineProto.object;
engineProto.object = function (this: Engine, name: unknown) {
  const id = origObject.call(this, name) as number;
  kinds[id] = creatorOf(new Error().stack);
  return id;
};
const origReport = engineProto.report;
engineProto.report = function (this: Engine, input: unknown) {
  const p = primitiveOf(new Error().stack);
  const f = input as { kind: string; subkind?: string; fingerprint?: string };
  if (p !== null && f.kind === 'assertion') row(p).rules.add(`WARN: ${String(f.fingerprint ?? '').replace(/^warn:/, '').replace(/@.*$/, '')}`);
  return origReport.call(this, input);
};

const threadProto = Thread.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
function recordOp(t: Thread, access: string, obj: number | null): void {
  const p = primitiveOf(t.opSite?.stack);
  if (p === null) return;
  const r = row(p);
  r.access.add(access);
  r.objects.add(obj === null ? '(waitable)' : obj < 0 ? '(none: a scheduling point)' : (kinds[obj] ?? '?'));
}
for (const [method, what] of [
  ['access', 'access'],
  ['acquire', 'acquire'],
  ['release', 'release'],
  ['block', 'block'],
  ['spinUntil', 'spin'],
] as const) {
  const orig = threadProto[method];
  threadProto[method] = function (this: Thread, ...args: unknown[]) {
    const r = orig.apply(this, args);
    if (what === 'access') recordOp(this, args[1] ? 'write' : 'read', args[0] as number);
    else if (what === 'acquire' || what === 'release') recordOp(this, `write (${what})`, (args[0] as { obj: number }).obj);
    else recordOp(this, what === 'block' ? 'sleeps' : 'spins', null);
    return r;
  };
}

const machineProto = Machine.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
const origEmit = machineProto.emit;
machineProto.emit = function (this: Machine, name: unknown, ...args: unknown[]) {
  const rule = RULES[name as string];
  if (rule !== undefined) {
    const p = primitiveOf(new Error().stack);
    if (p !== null) row(p).rules.add(rule);
  }
  return origEmit.call(this, name, ...args);
};

const CATALOG = ['abba', 'irq-self-deadlock', 'sleep-in-atomic', 'ipi-irqs-off', 'rcu-uaf'];
const programs: Program[] = primitivePrograms().map((p) => p.program);
for (const id of CATALOG) {
  const def = findScenario(id);
  const params = { ...def.params };
  for (const v of def.variants) programs.push(scenarioProgram(def, v.name, params));
}

const RUNS = 20;
const problems: string[] = [];
for (const p of programs) {
  const e = new Engine({ conformance: true, captureOps: true });
  for (let seed = 0; seed < RUNS; seed++) {
    kinds = [];
    const r = e.run(p, makeStrategy({ strategy: 'random' }), seed);
    for (const f of r.findings) if (f.headline.includes('conformance:') || f.kind === 'internal_error') problems.push(`${p.name} seed ${seed}: ${f.headline}`);
  }
}
if (problems.length > 0) {
  console.error(`primitive-table: ${problems.length} conformance/internal findings:\n${problems.slice(0, 20).join('\n')}`);
  process.exit(1);
}

/**
 * A primitive's signature as declared in its lib/kernel file (the TypeScript parser, not a
 * regex): `yield* name(params): Return` for a kernel body (a generator), `name(params)` else.
 */
const parsed = new Map<string, ts.SourceFile>();
function signatureOf(file: string, name: string): string {
  let sf = parsed.get(file);
  if (sf === undefined) parsed.set(file, (sf = ts.createSourceFile(file, readFileSync(KERNEL_DIR + file, 'utf8'), ts.ScriptTarget.Latest, true)));
  for (const st of sf.statements) {
    if (!ts.isFunctionDeclaration(st) || st.name?.text !== name || st.body === undefined) continue;
    const params = st.parameters.map((q) => q.getText(sf).replace(/\s+/g, ' ')).join(', ');
    const ret = st.type ? `: ${st.type.getText(sf).replace(/\s+/g, ' ')}` : '';
    return `${st.asteriskToken ? 'yield* ' : ''}${name}(${params})${ret}`;
  }
  return `${name}(…)`; // declared another way (a const arrow, a re-export)
}

const names = [...rows.keys()].sort((a, b) => rows.get(a)!.file.localeCompare(rows.get(b)!.file) || a.localeCompare(b));
const cell = (s: Set<string>): string => ([...s].sort().join(', ') || '—').replace(/\|/g, '\\|');
const lines = [
  '# Kernel primitives: signatures, objects, access, context rules',
  '',
  'Generated by `npm run docs:primitives` (scripts/primitive-table.ts); do not edit by hand.',
  '',
  `Measured over ${programs.length} programs (the race programs of test/support/primitives.ts and the catalog scenarios ${CATALOG.join(', ')}), ${RUNS} random schedules each, in conformance mode with op sites captured. Each visible step is listed under the innermost exported lib/kernel function that issued it; the object column is the kind of shared object the step declared (named by the lib/kernel constructor that created it); the rules column lists the checks the primitive feeds (kernel-model hooks and the WARNs it reported in these runs). A primitive whose every step comes from a callee (atomic ops inside a tasklet, say) is listed under the callee.`,
  '',
  '| primitive | file | signature | object | access | context rules it checks |',
  '|---|---|---|---|---|---|',
  ...names.map((n) => {
    const r = rows.get(n)!;
    return `| \`${n}\` | ${r.file} | \`${signatureOf(r.file, n).replace(/\|/g, '\\|')}\` | ${cell(r.objects)} | ${cell(r.access)} | ${cell(r.rules)} |`;
  }),
  '',
];
const out = join(__dirname, '..', 'docs', 'primitives.md');
mkdirSync(join(__dirname, '..', 'docs'), { recursive: true });
writeFileSync(out, lines.join('\n'));
console.log(`wrote ${out}: ${names.length} primitives from ${programs.length} programs`);
