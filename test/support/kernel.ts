/**
 * Shared by the kernel-model suites: a one-machine program with every detector installed, whose
 * build writes what it saw to a log, and a driver running every DFS schedule of it.
 */
import { expect } from 'chai';
import { Engine, makeStrategy, type Program, type RunResult } from '../../scheduler';
import { installDetectors } from '../../lib/check';
import { Machine, type MachineOptions } from '../../lib/kernel/machine';

export interface KernelWorld {
  m: Machine;
  log: string[];
}

/** A program on a fresh machine (`opts` or a CPU count) with every detector; `build` logs. */
export function kernelProgram(name: string, opts: MachineOptions | number, build: (m: Machine, log: string[]) => void): Program {
  const mo: MachineOptions = typeof opts === 'number' ? { cpus: opts } : opts;
  return {
    name,
    params: { ...mo },
    setup(sim) {
      const m = new Machine(sim, mo);
      installDetectors(m);
      const log: string[] = [];
      sim.world = { m, log } satisfies KernelWorld;
      build(m, log);
    },
  };
}

export interface EveryScheduleOptions {
  preemptionBound?: number;
  irqBound?: number;
  /** Fail when DFS has not finished within this many schedules. */
  limit?: number;
  window?: number;
  expectedSteps?: number;
}

/** Every DFS schedule of `p` (within the bounds): `check` sees each run's log; returns the count. */
export function everySchedule(p: Program, check: (log: string[], r: RunResult) => void, o: EveryScheduleOptions = {}): number {
  const e = new Engine({ window: o.window ?? Infinity });
  const s = makeStrategy({ strategy: 'dfs', preemptionBound: o.preemptionBound, irqBound: o.irqBound });
  const limit = o.limit ?? 20_000;
  let n = 0;
  while (!s.exhausted() && n < limit) {
    const r = e.run(p, s, 0, o.expectedSteps ?? 50);
    check((e.world as KernelWorld).log, r);
    n++;
  }
  expect(s.exhausted(), `${p.name}: DFS did not finish within ${limit} schedules`).to.equal(true);
  return n;
}
