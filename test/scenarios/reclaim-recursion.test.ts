import { expect } from 'chai';
import { hunt } from '../../scheduler';
import { scenarioProgram } from '../../lib/scenario/define';
import scenario from '../../scenarios/reclaim-recursion';

const run = (variant: string, iterations: number, extra: Record<string, unknown> = {}, params: Partial<typeof scenario.params> = {}) =>
  hunt(scenarioProgram(scenario, variant, { ...scenario.params, ...params }), { iterations, seed: 7, stopAtFirst: false, ...extra });

describe('scenario reclaim-recursion', () => {
  it('buggy (GFP_KERNEL holding the last tag) deadlocks within 5 schedules, on 2 and 4 CPUs', () => {
    for (const cpus of [2, 4]) {
      const h = run('buggy', 5, { stopAtFirst: true }, { cpus });
      expect(h.findings.map((f) => f.kind), `cpus=${cpus}`).to.include('deadlock');
    }
  });

  it('lock (GFP_KERNEL under the submission mutex) gives lockdep and a deadlock within 5 schedules, also with 2x memory', () => {
    for (const memoryMiB of [64, 128]) {
      const h = run('lock', 5, { stopWhenSeen: ['lockdep', 'deadlock'] }, { memoryMiB });
      const kinds = h.findings.map((f) => f.kind);
      expect(kinds, `memory=${memoryMiB}`).to.include.members(['lockdep', 'deadlock']);
    }
  });

  it('fixed (GFP_NOIO from a mempool reserve) stays clean over 50 schedules', () => {
    const h = run('fixed', 50);
    expect(h.findings.map((f) => `${f.kind}: ${f.headline}`)).to.deep.equal([]);
  });

  it('noio (GFP_NOIO, no reserve) stalls in timed mode without a cycle or an OOM kill', () => {
    const h = run('noio', 1, { window: 0, horizon: 300_000_000 });
    const kinds = h.findings.map((f) => f.kind);
    expect(kinds).to.include('stall');
    expect(kinds).to.not.include.members(['deadlock', 'oom_kill']);
  });
});
