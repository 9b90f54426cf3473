/**
 * The memory model's reports: "page allocation failure" (warn_alloc) as an `alloc_failure`
 * finding, and the OOM killer's kill (or its panic) as an `oom_kill` finding. A failure the
 * caller asked not to hear about (__GFP_NOWARN) is a metric (mm.alloc_fail_nowarn), not a
 * finding (docs/contract.md). warn_alloc is ratelimited as the kernel's (DEFAULT_RATELIMIT_INTERVAL
 * 5 s, burst 10): findings count every failure, the log shows what the kernel would print.
 */
import { __GFP_NOWARN, gfpName } from '../kernel/gfp';
import type { Machine } from '../kernel/machine';
import { NSEC_PER_SEC } from '../kernel/log';
import type { Task } from '../kernel/task';
import type { AllocFailureInfo } from '../mm/page-alloc';
import type { OomKillInfo } from '../mm/oom';
import { machineStates } from '../kernel/show-state';
import { callTrace } from '../kernel/show-state';
import { callerOf } from './caller';

export function installAllocCheck(m: Machine): void {
  m.addHooks({
    allocFailure(cur: Task, info: AllocFailureInfo) {
      if ((info.gfp & __GFP_NOWARN) !== 0) return;
      const logged = m.log.ratelimit('warn_alloc', 5 * NSEC_PER_SEC, 10);
      const mode = `mode:0x${info.gfp.toString(16)}(${gfpName(info.gfp)})`;
      const text = [
        `${cur.comm}: ${info.why}, ${mode}, nodemask=(null),cpuset=/,mems_allowed=0`,
        `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`,
        callTrace(cur, ['warn_alloc']),
        'Mem-Info:',
        ...info.zones.map((z) => `Node 0 ${z.name} free:${z.free} pages min:${z.min} low:${z.low} high:${z.high}`),
        info.buddyinfo,
      ].join('\n');
      if (logged) m.log.printk(cur.cpu.id, text);
      m.sim.report({
        kind: 'alloc_failure',
        fingerprint: `alloc_failure:o${info.order}:${gfpName(info.gfp)}@${callerOfAlloc(cur)}`,
        headline: `${cur.comm}: page allocation failure: order:${info.order}, ${mode}`,
        text,
        logged,
        data: { cpuStates: machineStates(m), order: info.order, gfp: info.gfp },
      });
    },
    oomKill(cur: Task, info: OomKillInfo) {
      const text = [...info.lines, `CPU: ${cur.cpu.id} PID: ${cur.pid} Comm: ${cur.comm} (${cur.context})`, callTrace(cur, ['dump_header'])].join('\n');
      m.log.printk(cur.cpu.id, text);
      const v = info.victim;
      m.sim.report({
        kind: 'oom_kill',
        fingerprint: v ? `oom_kill:${v.comm}@${callerOfAlloc(cur)}` : `oom_kill:panic@${callerOfAlloc(cur)}`,
        headline: v ? `Out of memory: Killed process ${v.pid} (${v.comm}), invoked by ${cur.comm} (order:${info.order}, ${gfpName(info.gfp)})` : 'Kernel panic - not syncing: System is deadlocked on memory',
        text,
        logged: true,
        // No killable process: the kernel panics, so the run ends.
        fatal: v === null,
        data: { cpuStates: machineStates(m), victim: v ? { pid: v.pid, comm: v.comm, anonRssKb: info.anonRssKb, swapKb: info.swapKb } : null },
      });
    },
  });
}

/** The frame that called into the allocator (skipping the allocator's own frames). */
const callerOfAlloc = (cur: Task): string => callerOf(cur, (f) => ALLOCATOR_FRAMES.has(f));

const ALLOCATOR_FRAMES = new Set(['alloc_pages', '__alloc_pages_slowpath', '__perform_reclaim', 'shrink_node', 'out_of_memory', 'warn_alloc']);
