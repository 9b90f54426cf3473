/**
 * The tracer: one fully instrumented run of a scenario variant as a Chrome trace event file
 * (Perfetto, chrome://tracing), and the compact per-finding timeline the HTML report draws.
 *
 * The tracer subscribes to the kernel model's hooks through MachineOptions[MACHINE_OBSERVER], a
 * symbol key the program hash never sees: a traced run takes the same path and hashes the same
 * as an untraced one, so a hunt's schedule replays traced in strict mode. It only records; it
 * never yields, chooses or reports.
 *
 * Tracks (pid 1 is the machine): tid n is "CPU n", what runs there (task, softirq, hardirq
 * nested in what it interrupted); "CPU n irqs off", "CPU n locks" (holds and spins) and
 * "CPU n sleeping" follow it. Spans that would overlap without nesting on one track go to a
 * second track of the same kind (lock A taken before B but released first).
 */
import type { Finding, Thread } from '../../scheduler';
import type { Cpu } from '../kernel/cpu';
import { gfpName } from '../kernel/gfp';
import type { AllocKind, KernelHooks } from '../kernel/hooks';
import type { Lock } from '../kernel/lock';
import type { Machine } from '../kernel/machine';
import type { Task } from '../kernel/task';
import type { SwiotlbState } from '../dma/swiotlb/state';
import { mmIfPresent } from '../mm/mm';
import type { TimelineInstant, TimelineJson, TimelineSlice } from './timeline';

/** One Trace Event Format event. */
export interface ChromeEvent {
  name: string;
  ph: 'X' | 'B' | 'E' | 'i' | 'C' | 'M';
  /** Microseconds (virtual ns / 1000). */
  ts: number;
  pid: number;
  tid: number;
  dur?: number;
  cat?: string;
  /** Instant scope: global, process or thread. */
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ns';
  otherData: Record<string, unknown>;
}

type SpanKind = TimelineSlice['kind'];
type Lane = TimelineSlice['lane'];

/** A span the tracer recorded (virtual ns). */
export interface TraceSpan {
  cpu: number;
  lane: Lane;
  kind: SpanKind;
  name: string;
  start: number;
  end: number;
  truncated?: boolean;
  args?: Record<string, unknown>;
}

export interface TraceInstant {
  cpu: number;
  time: number;
  kind: TimelineInstant['kind'];
  /** Finer than `kind`: 'alloc' vs 'alloc_failure', 'swiotlb_full', 'finding'... */
  cat: string;
  name: string;
  text?: string;
  args?: Record<string, unknown>;
}

export interface TraceCounter {
  time: number;
  name: string;
  values: Record<string, number>;
}

/** What one traced run recorded: the tracer's own event list, before the Chrome encoding. */
export interface TraceLog {
  cpus: number;
  /**
   * Where the trace ends (ns): the run's last event, plus a tail when something was still stuck
   * then (a spin that never got its lock, a hold never released, a sleep never woken), so what
   * stays stuck has a length; spans open at the end run to here, truncated.
   */
  end: number;
  /** The run's last event (ns) when a stuck tail follows it: the machine made no progress after. */
  stuckAt?: number;
  spans: TraceSpan[];
  instants: TraceInstant[];
  counters: TraceCounter[];
}

interface Open extends TraceSpan {
  owner?: Task;
  lock?: Lock;
}

const taskName = (t: Task): string => `${t.comm}/${t.pid}`;

/** Plain (primitive-valued) fields of a hook's info record, for args. */
function plainArgs(info: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (info === null || typeof info !== 'object') return out;
  for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
    if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = (v as string[]).join('\n');
  }
  return out;
}

/**
 * Records one run: attach() on every new Machine (the last one attached is the run kept: a hunt
 * iteration runs calibration runs first), finish() once the run is over.
 */
export class Tracer {
  private m: Machine | null = null;
  private log: TraceLog = { cpus: 0, end: 0, spans: [], instants: [], counters: [] };
  private ctx: Open[][] = [];
  private holds = new Map<Lock, Open[]>();
  private spins = new Map<Task, (Open | null)[]>();
  private sleeps = new Map<Task, Open>();
  private findings: { f: Finding; cpu: number }[] = [];

  attach(m: Machine): void {
    this.m = m;
    this.log = { cpus: m.cpus.length, end: 0, spans: [], instants: [], counters: [] };
    this.ctx = m.cpus.map(() => []);
    this.holds = new Map();
    this.spins = new Map();
    this.sleeps = new Map();
    this.findings = [];
    const sim = m.sim;
    const prev = sim.onMaskedSpan;
    sim.onMaskedSpan = (t: Thread, ns: number) => {
      if (prev !== null) prev(t, ns);
      this.masked(t, ns);
    };
    sim.onFinding((f) => {
      const t = sim.running?.local as Task | undefined;
      this.findings.push({ f, cpu: t?.cpu?.id ?? 0 });
    });
    m.addHooks(this.hooks());
  }

  private now(): number {
    return this.m!.sim.now();
  }

  private instant(cpu: number, kind: TraceInstant['kind'], cat: string, name: string, args?: Record<string, unknown>): void {
    this.log.instants.push({ cpu, time: this.now(), kind, cat, name, ...(args ? { args } : {}) });
  }

  private close(s: Open, end: number): void {
    s.end = end < s.start ? s.start : end;
    const { owner: _o, lock: _l, ...span } = s;
    this.log.spans.push(span);
  }

  /** Close the innermost context span of `kind` on `cpu` and everything nested in it. */
  private popCtx(cpu: number, kind: SpanKind | null): void {
    const st = this.ctx[cpu];
    const at = this.now();
    let i = st.length - 1;
    if (kind !== null) while (i >= 0 && st[i].kind !== kind) i--;
    if (i < 0) return;
    const k = kind === null ? 0 : i;
    while (st.length > k) this.close(st.pop()!, at);
  }

  private pushCtx(cpu: number, kind: SpanKind, name: string): void {
    this.ctx[cpu].push({ cpu, lane: 'context', kind, name, start: this.now(), end: 0 });
  }

  private masked(t: Thread, ns: number): void {
    const task = t.local as Task | undefined;
    if (task === undefined || !(ns > 0)) return;
    this.log.spans.push({ cpu: task.cpu.id, lane: 'irqs_off', kind: 'irqs_off', name: 'irqs off', start: t.clock - ns, end: t.clock, args: { task: taskName(task) } });
  }

  private hooks(): KernelHooks {
    const self = this;
    return {
      cpuSwitch(cpu: Cpu, _prev: Task | null, next: Task | null) {
        self.popCtx(cpu.id, null);
        if (next !== null) self.pushCtx(cpu.id, 'task', taskName(next));
      },
      hardirqEnter(cur, irq) {
        self.pushCtx(cur.cpu.id, 'hardirq', irq);
      },
      hardirqExit(cur) {
        self.popCtx(cur.cpu.id, 'hardirq');
      },
      softirqEnter(cur, vec) {
        self.pushCtx(cur.cpu.id, 'softirq', vec);
      },
      softirqExit(cur) {
        self.popCtx(cur.cpu.id, 'softirq');
      },
      lockAcquire(cur, lock, how, trylock) {
        if (trylock || lock.kind === 'lockdep_map') return;
        let a = self.spins.get(cur);
        if (a === undefined) self.spins.set(cur, (a = []));
        const wait = lock.kind === 'mutex' || lock.kind === 'rw_semaphore' ? 'waits for' : 'spins on';
        a[cur.depth] = { cpu: cur.cpu.id, lane: 'lock', kind: 'lock_spin', name: `${wait} ${lock.name}`, start: self.now(), end: 0, lock, owner: cur, args: { lock: lock.name, class: lock.lockClass, how } };
      },
      lockAcquired(cur, lock, how) {
        if (lock.kind === 'lockdep_map') return;
        // At a hand-over this runs in the releaser's step for the waiter's frame, which need not
        // be the waiter's running one (an interrupt taken while it spun): recordAcquired has just
        // pushed the hold with that frame's depth.
        const h = cur.held[cur.held.length - 1];
        const depth = h !== undefined && h.lock === lock ? h.depth : cur.depth;
        const a = self.spins.get(cur);
        const s = a?.[depth];
        if (s != null && s.lock === lock) {
          a![depth] = null;
          if (self.now() > s.start) self.close(s, self.now());
        }
        let list = self.holds.get(lock);
        if (list === undefined) self.holds.set(lock, (list = []));
        list.push({ cpu: cur.cpu.id, lane: 'lock', kind: 'lock_hold', name: lock.name, start: self.now(), end: 0, owner: cur, args: { class: lock.lockClass, kind: lock.kind, how, context: cur.contexts[depth] ?? cur.context } });
      },
      lockRelease(cur, lock) {
        const list = self.holds.get(lock);
        if (list === undefined) return;
        for (let i = list.length - 1; i >= 0; i--) {
          if (list[i].owner !== cur) continue;
          self.close(list.splice(i, 1)[0], self.now());
          return;
        }
      },
      sleep(cur) {
        const w = cur.waitingFor;
        if (w === null || w.idle === true) return; // a service thread waiting for work
        self.sleeps.set(cur, { cpu: cur.cpu.id, lane: 'sleep', kind: 'sleep', name: `${taskName(cur)}: ${w.what}`, start: self.now(), end: 0, args: { task: taskName(cur), waits: w.kind, what: w.what } });
      },
      sleepEnd(cur) {
        const s = self.sleeps.get(cur);
        if (s === undefined) return;
        self.sleeps.delete(cur);
        self.close(s, self.now());
      },
      wakeup(task) {
        const waker = self.m!.sim.running?.local as Task | undefined;
        self.instant(waker?.cpu.id ?? task.cpu.id, 'wakeup', 'wakeup', `wakeup ${taskName(task)}`, { target: taskName(task), target_cpu: task.cpu.id, waker: waker ? taskName(waker) : 'timer' });
      },
      crossCall(cur, how, targets, wait) {
        self.instant(cur.cpu.id, 'ipi', 'ipi', `IPI -> ${targets.map((c) => `CPU${c.id}`).join(',') || 'none'}`, { how, wait, from: taskName(cur) });
      },
      alloc(cur, kind: AllocKind, bytes, gfp) {
        const args: Record<string, unknown> = { bytes, gfp: gfpName(gfp), context: cur.context };
        if (kind === 'pages') args.order = Math.round(Math.log2(bytes / (self.pageSize ?? bytes)));
        self.instant(cur.cpu.id, 'alloc', 'alloc', `${kind} ${bytes}`, args);
      },
      allocFailure(cur, info) {
        self.instant(cur.cpu.id, 'alloc', 'alloc_failure', 'allocation failure', plainArgs(info));
      },
      oomKill(cur, info) {
        self.instant(cur.cpu.id, 'other', 'oom_kill', 'oom-kill', plainArgs(info));
      },
      swiotlbFull(cur, info) {
        self.instant(cur.cpu.id, 'alloc', 'swiotlb_full', 'swiotlb buffer is full', plainArgs(info));
      },
      dmaDebug(cur, info) {
        self.instant(cur?.cpu.id ?? 0, 'other', 'dma_debug', 'DMA-API', plainArgs(info));
      },
      iommuMap(cur, info) {
        self.instant(cur.cpu.id, 'other', 'iommu_map', 'iommu_map', plainArgs(info));
      },
      swiotlbUsage(_cur, state) {
        const st = state as SwiotlbState;
        const mem = st.mem;
        self.log.counters.push({ time: self.now(), name: 'swiotlb slots', values: { used: mem.total_used, free: Math.max(0, mem.nslabs - mem.total_used) } });
        self.log.counters.push({ time: self.now(), name: 'swiotlb footprint (KiB)', values: { footprint: st.policy.footprint(st) / 1024 } });
      },
    };
  }

  /** The machine's page size (for page orders); the memory model exists once pages are allocated. */
  private get pageSize(): number | undefined {
    return this.m === null ? undefined : mmIfPresent(this.m)?.phys.pageSize;
  }

  /**
   * End of run: close what is still open (truncated), add the findings. When a lock spin or
   * hold or a sleep is still open, the machine is stuck from the run's last event on (virtual
   * time stops when every thread waits): the trace gets a tail so those spans have a length
   * instead of ending where they began.
   */
  finish(end: number): TraceLog {
    const log = this.log;
    let last = end;
    for (const s of log.spans) if (s.end > last) last = s.end;
    let stuck = this.sleeps.size > 0;
    for (const list of this.holds.values()) if (list.length > 0) stuck = true;
    for (const a of this.spins.values()) for (const s of a) if (s != null) stuck = true;
    if (stuck) {
      log.stuckAt = last;
      last += stuckTail(last);
    }
    const t = (s: Open) => {
      s.truncated = true;
      this.close(s, last);
    };
    for (const st of this.ctx) while (st.length > 0) t(st.pop()!);
    for (const list of this.holds.values()) for (const s of list) t(s);
    for (const a of this.spins.values()) for (const s of a) if (s != null) t(s);
    for (const s of this.sleeps.values()) t(s);
    this.holds.clear();
    this.spins.clear();
    this.sleeps.clear();
    if (this.m !== null) {
      for (const th of this.m.sim.threads) {
        const task = th.local as Task | undefined;
        if (th.maskedAt >= 0 && task !== undefined && !th.done) log.spans.push({ cpu: task.cpu.id, lane: 'irqs_off', kind: 'irqs_off', name: 'irqs off', start: th.maskedAt, end: Math.max(th.maskedAt, last), truncated: true, args: { task: taskName(task) } });
      }
    }
    for (const { f, cpu } of this.findings) {
      log.instants.push({ cpu, time: findingTime(f, last), kind: 'finding', cat: 'finding', name: f.headline, text: f.text, args: { kind: f.kind, ...(f.subkind ? { subkind: f.subkind } : {}), fingerprint: f.fingerprint, step: f.step, count: f.count, text: f.text } });
    }
    log.end = last;
    return log;
  }
}

/**
 * How long the stuck tail after a run's last event `at` is drawn: a quarter of the run, at least
 * 100 ns. Presentation only; no event happens in it.
 */
export function stuckTail(at: number): number {
  return Math.max(100, Math.ceil(at / 4));
}

/**
 * Where a finding sits on the time axis: its own time, except a fatal one found when the run
 * could not go on (a deadlock seen at quiescence is stamped with the engine's idle clock): the
 * end of the trace then (after the stuck tail), so what it found stuck is drawn up to it.
 */
export function findingTime(f: Finding, runEnd: number): number {
  return f.fatal ? Math.max(f.time, runEnd) : f.time;
}

// ---- the Chrome encoding ----

const PID = 1;
/** Extra tracks of CPU n: tid EXTRA + n * 1000 + offset. */
const EXTRA = 10000;
const LANE_OFFSET: Record<Lane, number> = { context: 900, irqs_off: 0, lock: 100, sleep: 200 };
const LANE_LABEL: Record<Lane, string> = { context: 'context', irqs_off: 'irqs off', lock: 'locks', sleep: 'sleeping' };

function tidOf(cpu: number, lane: Lane, k: number): number {
  return lane === 'context' && k === 0 ? cpu : EXTRA + cpu * 1000 + LANE_OFFSET[lane] + k;
}

/** The CPU and lane a tid stands for (the inverse of tidOf). */
function laneOfTid(tid: number): { cpu: number; lane: Lane } {
  if (tid < EXTRA) return { cpu: tid, lane: 'context' };
  const cpu = Math.floor((tid - EXTRA) / 1000);
  const off = (tid - EXTRA) % 1000;
  const lane: Lane = off >= 900 ? 'context' : off >= 200 ? 'sleep' : off >= 100 ? 'lock' : 'irqs_off';
  return { cpu, lane };
}

const us = (ns: number): number => ns / 1000;

/**
 * Spread spans over as few tracks as keep every track properly nested (each span inside the
 * one before it or after it ends): track k of the lane.
 */
function assignTracks(spans: TraceSpan[]): number[] {
  const order = spans.map((_, i) => i).sort((a, b) => spans[a].start - spans[b].start || spans[b].end - spans[a].end || a - b);
  const stacks: number[][] = []; // per track: end times of the open spans
  const out = new Array<number>(spans.length);
  for (const i of order) {
    const s = spans[i];
    let k = 0;
    for (;; k++) {
      if (k === stacks.length) stacks.push([]);
      const st = stacks[k];
      while (st.length > 0 && st[st.length - 1] <= s.start && !(st[st.length - 1] === s.start && s.end === s.start)) st.pop();
      if (st.length === 0 || st[st.length - 1] >= s.end) {
        st.push(s.end);
        break;
      }
    }
    out[i] = k;
  }
  return out;
}

export interface TraceMeta {
  scenario: string;
  variant: string;
  schedule?: string;
  [k: string]: unknown;
}

/** The Chrome trace of a recorded run. */
export function chromeTrace(log: TraceLog, meta: TraceMeta): ChromeTrace {
  const meta0: ChromeEvent[] = [{ name: 'process_name', ph: 'M', ts: 0, pid: PID, tid: 0, args: { name: `irqsim ${meta.scenario}/${meta.variant}` } }];
  const named = new Set<number>();
  const nameTrack = (cpu: number, lane: Lane, k: number) => {
    const tid = tidOf(cpu, lane, k);
    if (named.has(tid)) return tid;
    named.add(tid);
    const label = lane === 'context' && k === 0 ? `CPU ${cpu}` : `CPU ${cpu} ${LANE_LABEL[lane]}${k > 0 ? ` #${k + 1}` : ''}`;
    meta0.push({ name: 'thread_name', ph: 'M', ts: 0, pid: PID, tid, args: { name: label } });
    meta0.push({ name: 'thread_sort_index', ph: 'M', ts: 0, pid: PID, tid, args: { sort_index: tid < EXTRA ? cpu * 1000 : cpu * 1000 + 1 + ((tid - EXTRA) % 1000) } });
    return tid;
  };
  for (let c = 0; c < log.cpus; c++) nameTrack(c, 'context', 0);

  const body: { e: ChromeEvent; seq: number }[] = [];
  let seq = 0;
  const add = (e: ChromeEvent) => body.push({ e, seq: seq++ });

  // spans, per (cpu, lane), spread over nested tracks
  const groups = new Map<string, TraceSpan[]>();
  for (const s of log.spans) {
    const key = `${s.cpu}:${s.lane}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = []));
    g.push(s);
  }
  for (const g of groups.values()) {
    const tracks = assignTracks(g);
    const order = g.map((_, i) => i).sort((a, b) => g[a].start - g[b].start || g[b].end - g[a].end || a - b);
    for (const i of order) {
      const s = g[i];
      const tid = nameTrack(s.cpu, s.lane, tracks[i]);
      add({ name: s.name, cat: s.kind, ph: 'X', ts: us(s.start), dur: us(s.end - s.start), pid: PID, tid, args: { ...(s.args ?? {}), ...(s.truncated ? { truncated: true } : {}) } });
    }
  }
  for (const i of log.instants) {
    const global = i.kind === 'finding';
    add({ name: i.name, cat: i.cat, ph: 'i', s: global ? 'g' : 't', ts: us(i.time), pid: PID, tid: i.cpu, args: { ...(i.args ?? {}), ...(global ? { cpu: i.cpu } : {}) } });
  }
  for (const c of log.counters) add({ name: c.name, cat: 'counter', ph: 'C', ts: us(c.time), pid: PID, tid: 0, args: c.values });

  // by time; at equal times, enclosing spans before what they enclose, else recording order
  body.sort((a, b) => a.e.ts - b.e.ts || (b.e.dur ?? -1) - (a.e.dur ?? -1) || a.seq - b.seq);
  return {
    traceEvents: [...meta0, ...body.map((b) => b.e)],
    displayTimeUnit: 'ns',
    otherData: { ...meta, cpus: log.cpus, endNs: log.end, ...(log.stuckAt !== undefined ? { stuckAtNs: log.stuckAt } : {}), generator: 'irqsim' },
  };
}

// ---- the per-finding timeline ----

const SLICE_CAP = 300;
const INSTANT_CAP = 60;
/** Default look-back when nothing involved is open at the finding: 50 µs. */
const DEFAULT_WINDOW_NS = 50_000;
/** The longest look-back the default picks: 2 ms. */
const MAX_WINDOW_NS = 2_000_000;

/** The tracer's record back from a Chrome trace (tids and categories say lane, kind and CPU). */
function logOf(trace: ChromeTrace): TraceLog {
  const log: TraceLog = { cpus: Number(trace.otherData.cpus ?? 0), end: Number(trace.otherData.endNs ?? 0), spans: [], instants: [], counters: [] };
  if (typeof trace.otherData.stuckAtNs === 'number') log.stuckAt = trace.otherData.stuckAtNs;
  for (const e of trace.traceEvents) {
    if (e.ph === 'X') {
      const { cpu, lane } = laneOfTid(e.tid);
      log.spans.push({ cpu, lane, kind: e.cat as SpanKind, name: e.name, start: Math.round(e.ts * 1000), end: Math.round((e.ts + (e.dur ?? 0)) * 1000), ...(e.args?.truncated ? { truncated: true } : {}) });
    } else if (e.ph === 'i') {
      const cat = e.cat ?? 'other';
      const kind: TimelineInstant['kind'] = cat === 'finding' ? 'finding' : cat === 'wakeup' ? 'wakeup' : cat === 'ipi' ? 'ipi' : cat.startsWith('alloc') || cat === 'swiotlb_full' ? 'alloc' : 'other';
      const cpu = e.s === 'g' ? Number(e.args?.cpu ?? 0) : e.tid;
      log.instants.push({ cpu, time: Math.round(e.ts * 1000), kind, cat, name: e.name, ...(typeof e.args?.text === 'string' ? { text: e.args.text } : {}) });
    }
  }
  return log;
}

/** The shortest window a timeline draws (ns): a finding at t=0 still gets room. */
const MIN_WINDOW_NS = 100;

/**
 * The timeline of the stretch before time `at` (a finding's, ns): per CPU the context, IRQs-off,
 * lock and sleep spans in the window, clipped to it, and the instants there (the findings,
 * wakeups, IPIs, allocation failures; successful allocations only when few). The window starts
 * at `at - windowNs` when given; by default at the earliest lock, IRQs-off or interrupt span
 * still open at `at` (at most 2 ms back), else 50 µs back. A window shorter than 100 ns (a finding
 * at t=0) is widened forwards to 100 ns, showing what followed the finding.
 */
export function timelineOf(src: ChromeTrace | TraceLog, at: number, cpus: number, windowNs?: number): TimelineJson {
  const log = 'traceEvents' in src ? logOf(src) : src;
  let start: number;
  if (windowNs !== undefined) start = at - windowNs;
  else {
    let earliest = Infinity;
    for (const s of log.spans) {
      if (s.kind === 'task' || s.kind === 'sleep' || s.kind === 'idle') continue;
      if (s.start <= at && s.end >= at && s.start < earliest) earliest = s.start;
    }
    start = earliest === Infinity ? at - DEFAULT_WINDOW_NS : Math.max(at - MAX_WINDOW_NS, Math.min(earliest, at - DEFAULT_WINDOW_NS / 10));
  }
  if (start < 0) start = 0;
  const end = Math.max(at, start + MIN_WINDOW_NS);
  // zero-length holds before the finding have no width to draw (a lock taken and dropped in one step)
  const inWindow = log.spans.filter((s) => s.start <= end && s.end >= start && !(s.kind === 'lock_hold' && s.end === s.start && s.start < at));
  // the latest-ending spans first when there are too many (they are the ones near the finding)
  const kept = inWindow.length <= SLICE_CAP ? inWindow : [...inWindow].sort((a, b) => b.end - a.end || a.start - b.start).slice(0, SLICE_CAP);
  const slices: TimelineSlice[] = kept
    .map((s) => ({ cpu: s.cpu, lane: s.lane, kind: s.kind, name: s.name, start: Math.max(s.start, start), end: Math.min(s.end, end), ...(s.truncated ? { truncated: true } : {}) }))
    .sort((a, b) => a.cpu - b.cpu || a.start - b.start || b.end - a.end);
  const near = log.instants.filter((i) => i.time >= start && i.time <= end);
  const important = near.filter((i) => i.cat !== 'alloc');
  const allocs = near.filter((i) => i.cat === 'alloc');
  const findings = important.filter((i) => i.kind === 'finding');
  const rest = important.filter((i) => i.kind !== 'finding');
  const pickedRest = rest.slice(Math.max(0, rest.length - (INSTANT_CAP - findings.length)));
  const room = INSTANT_CAP - findings.length - pickedRest.length;
  const picked = [...findings, ...pickedRest, ...(room > 0 ? allocs.slice(Math.max(0, allocs.length - room)) : [])];
  const instants: TimelineInstant[] = picked
    .map((i) => ({ cpu: i.cpu, time: i.time, kind: i.kind, name: i.name, ...(i.text !== undefined ? { text: i.text } : {}) }))
    .sort((a, b) => a.time - b.time || a.cpu - b.cpu);
  const stuck = log.stuckAt !== undefined && log.stuckAt < end ? { stuckAt: Math.max(log.stuckAt, start) } : {};
  return { cpus, start, end, at, ...stuck, slices, instants };
}
