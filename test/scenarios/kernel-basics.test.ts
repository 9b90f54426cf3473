/**
 * Seeded hunts over the kernel-basics scenarios, both sides: the buggy variant yields its
 * expected finding kinds within a stated number of schedules from a fixed seed, the fixed
 * variant stays clean over at least ten times as many, and the replayed schedule reproduces
 * the same finding text.
 */
import { expect } from 'chai';
import { hunt, replay } from '../../scheduler';
import { scenarioProgram, type ScenarioDef } from '../../lib/scenario/define';
import abba from '../../scenarios/abba';
import ipi from '../../scenarios/ipi-irqs-off';
import irqSelf from '../../scenarios/irq-self-deadlock';
import sleep from '../../scenarios/sleep-in-atomic';

interface Case {
  def: ScenarioDef;
  kinds: string[];
  within: number;
  params?: Record<string, number>;
}

const cases: Case[] = [
  { def: abba as unknown as ScenarioDef, kinds: ['lockdep', 'deadlock'], within: 20 },
  { def: abba as unknown as ScenarioDef, kinds: ['lockdep', 'deadlock'], within: 60, params: { cpus: 4 } },
  { def: irqSelf as unknown as ScenarioDef, kinds: ['lockdep', 'deadlock'], within: 20 },
  { def: irqSelf as unknown as ScenarioDef, kinds: ['lockdep', 'deadlock'], within: 20, params: { requests: 4 } },
  { def: sleep as unknown as ScenarioDef, kinds: ['might_sleep'], within: 1 },
  { def: ipi as unknown as ScenarioDef, kinds: ['ipi_irqs_off', 'deadlock'], within: 40 },
];

describe('kernel-basics scenarios: both sides', () => {
  for (const c of cases) {
    const params = { ...c.def.params, ...(c.params ?? {}) };
    const label = `${c.def.id}${c.params ? ` ${JSON.stringify(c.params)}` : ''}`;
    for (const seed of [1, 2]) {
      it(`${label}: buggy shows ${c.kinds.join(' + ')} within ${c.within} schedules (seed ${seed}); fixed clean over ${10 * c.within}`, () => {
        const buggy = scenarioProgram(c.def, 'buggy', params);
        const h = hunt(buggy, { seed, iterations: c.within, stopWhenSeen: c.kinds });
        expect(h.findings.map((f) => f.kind).sort()).to.deep.equal([...c.kinds].sort());
        for (const f of h.findings) {
          const r = replay(buggy, f.schedule);
          expect(r.findings.find((x) => x.fingerprint === f.fingerprint)!.text).to.equal(f.text);
        }
        const fixed = hunt(scenarioProgram(c.def, 'fixed', params), { seed, iterations: Math.max(10 * c.within, 100), stopAtFirst: false });
        expect(fixed.findings.map((f) => f.headline)).to.deep.equal([]);
      });
    }
  }

  it('the fixed variants also stay clean under exhaustive DFS with small bounds', () => {
    for (const def of [abba, irqSelf, ipi] as unknown as ScenarioDef[]) {
      const h = hunt(scenarioProgram(def, 'fixed', def.params), { strategy: 'dfs', preemptionBound: 2, irqBound: 2, iterations: 20_000, stopAtFirst: false });
      expect(h.findings, def.id).to.deep.equal([]);
      expect(h.exhausted, def.id).to.equal(true);
    }
  });
});
