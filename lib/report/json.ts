/** A finding as CONTRACT.md's JSON describes it. */
import type { FoundFinding } from '../../scheduler';
import type { ContextState } from './cpu-state';
import type { TimelineJson } from './timeline';

export interface FindingJson {
  kind: string;
  subkind?: string;
  fingerprint: string;
  headline: string;
  text: string;
  iteration: number;
  time: number;
  cpus: number[];
  count: number;
  logged: number;
  cpuStates: ContextState[];
  stacks: { cpu: number; task: string; context: string; stack: string[] }[];
  schedule: string;
  shrunk?: string;
  replay: string;
  /** What each CPU did in the stretch before the finding (a traced replay of its schedule). */
  timeline?: TimelineJson;
  /** --confirm, on lockdep findings: "confirmed by schedule <s>" or "not reached in N schedules". */
  confirmed?: string;
}

export function findingJson(f: FoundFinding, replay: string): FindingJson {
  const states = ((f.data?.cpuStates as ContextState[] | undefined) ?? []).slice();
  // a detector that names its CPUs in the text says so (data.cpus); else the CPUs that wait or hold
  const named = f.data?.cpus;
  const cpus = Array.isArray(named) ? [...(named as number[])].sort((a, b) => a - b) : [...new Set(states.filter((s) => s.waitingFor !== null || s.held.length > 0).map((s) => s.cpu))].sort((a, b) => a - b);
  return {
    kind: f.kind,
    ...(f.subkind ? { subkind: f.subkind } : {}),
    fingerprint: f.fingerprint,
    headline: f.headline,
    text: f.text,
    iteration: f.iteration,
    time: f.time,
    cpus,
    count: f.totalCount,
    logged: f.loggedCount,
    cpuStates: states,
    stacks: states.map((s) => ({ cpu: s.cpu, task: `${s.task}/${s.pid}`, context: s.context, stack: s.stack })),
    schedule: f.schedule,
    ...(f.shrunk ? { shrunk: f.shrunk } : {}),
    replay,
  };
}
