import { expect } from 'chai';
import sinon from 'sinon';
import { CoverageAccumulator, Engine, calibrate, checkDeterminism, deriveSeed, makeStrategy, runIteration, type Program, type RunResult } from '../../scheduler';
import * as coverageModule from '../../lib/check/coverage';
import { GFP_KERNEL } from '../../lib/kernel/gfp';
import { fs_reclaim_acquire, fs_reclaim_release } from '../../lib/kernel/fs-reclaim';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock } from '../../lib/kernel/mutex';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_nested, spin_trylock, spin_unlock } from '../../lib/kernel/spinlock';
import { scenarioProgram, type ScenarioDef } from '../../lib/scenario/define';
import abba from '../../scenarios/abba';
import irqSelf from '../../scenarios/irq-self-deadlock';
import { kernelProgram } from '../support/kernel';

const program = (def: unknown, variant: string): Program => scenarioProgram(def as ScenarioDef, variant, (def as ScenarioDef).params);

/** The runs of a hunt's first `n` iterations (hunt's seeds and calibration). */
function runs(p: Program, strategy: string, n: number, seed = 0): RunResult[] {
  const e = new Engine();
  const k = calibrate(p, e, seed);
  const s = makeStrategy({ strategy });
  const out: RunResult[] = [];
  for (let i = 0; i < n; i++) out.push(e.run(p, s, deriveSeed(seed, i), k));
  return out;
}

function keysOf(rs: RunResult[]): Set<string> {
  const keys = new Set<string>();
  for (const r of rs) for (const k of r.coverage ?? []) keys.add(k);
  return keys;
}

describe('coverage observer (lib/check/coverage)', () => {
  it('ABBA: both lock orders show up; the fixed variant has one; schedules fall in several classes', () => {
    const buggy = runs(program(abba, 'buggy'), 'random', 100);
    const keys = keysOf(buggy);
    expect(keys).to.include('lockorder:stats_lock->cfg_lock');
    expect(keys).to.include('lockorder:cfg_lock->stats_lock');
    const acc = new CoverageAccumulator();
    for (const r of buggy) acc.add(r);
    const s = acc.summary({ strategy: 'random' });
    expect(s.groups.lockorder.distinct).to.equal(2);
    expect(s.interleavingClasses).to.be.greaterThan(1);
    expect(s.schedules).to.equal(100);
    expect([...keysOf(runs(program(abba, 'fixed'), 'pct', 100))]).to.deep.equal(['lockorder:cfg_lock->stats_lock']);
  });

  it('runIteration results carry the coverage too', () => {
    const r = runIteration(program(abba, 'fixed'), { seed: 1, iteration: 3 });
    expect(r.coverage).to.deep.equal(['lockorder:cfg_lock->stats_lock']);
    expect(r.interleaving).to.be.greaterThan(0);
  });

  it('irq-self-deadlock: the IRQ lands while io_lock is held in the buggy variant, never in the fixed one', () => {
    const buggy = keysOf(runs(program(irqSelf, 'buggy'), 'random', 100));
    expect(buggy).to.include('irqheld:nvme_irq@io_lock');
    expect(buggy).to.include('irqheld:nvme_irq@-');
    // the handler takes io_lock over the task's hold of it: another context, no lock order
    expect([...buggy].filter((k) => k.startsWith('lockorder:'))).to.deep.equal([]);
    const fixed = keysOf(runs(program(irqSelf, 'fixed'), 'random', 100));
    expect([...fixed]).to.deep.equal(['irqheld:nvme_irq@-']);
  });

  it('names classes as lockdep does: subclasses, lockdep maps; no pair into a trylock', () => {
    const p = kernelProgram('cover-classes', 1, (m) => {
      const a = DEFINE_MUTEX(m, 'a_mutex');
      const b = DEFINE_SPINLOCK(m, 'b_lock');
      const b2 = DEFINE_SPINLOCK(m, 'b_lock');
      const c = DEFINE_SPINLOCK(m, 'c_lock');
      m.kthread('t', 0, function* (cur) {
        yield* mutex_lock(cur, a);
        fs_reclaim_acquire(cur, GFP_KERNEL);
        fs_reclaim_release(cur, GFP_KERNEL);
        yield* spin_lock(cur, b);
        yield* spin_lock_nested(cur, b2, 1);
        if (yield* spin_trylock(cur, c)) yield* spin_unlock(cur, c);
        yield* spin_unlock(cur, b2);
        yield* spin_unlock(cur, b);
        yield* mutex_unlock(cur, a);
      });
    });
    const r = new Engine().run(p, makeStrategy({}), 1, 50);
    expect(r.findings.map((f) => f.kind)).to.deep.equal([]);
    expect(r.coverage).to.deep.equal(['lockorder:a_mutex->fs_reclaim', 'lockorder:a_mutex->b_lock', 'lockorder:a_mutex->b_lock/1', 'lockorder:b_lock->b_lock/1']);
  });

  it('the interleaving class follows who took each lock in which order, not the steps in between', () => {
    // ABBA fixed: both paths take cfg_lock then stats_lock; the class is which CPU got cfg_lock first
    const rs = runs(program(abba, 'fixed'), 'random', 200);
    const byClass = new Map<number, Set<number>>();
    for (const r of rs) {
      const set = byClass.get(r.interleaving) ?? new Set<number>();
      set.add(r.hash);
      byClass.set(r.interleaving, set);
    }
    expect(byClass.size).to.equal(2);
    expect([...byClass.values()].some((hashes) => hashes.size > 1)).to.equal(true); // distinct paths share a class
  });

  describe('never changes the path', () => {
    afterEach(() => sinon.restore());

    for (const [def, variant, strategy] of [
      [abba, 'buggy', 'random'],
      [abba, 'fixed', 'pct'],
      [irqSelf, 'buggy', 'pct'],
      [irqSelf, 'fixed', 'random'],
    ] as const) {
      it(`${def.id}/${variant} under ${strategy}: same hashes, steps and findings without the observer`, () => {
        const withIt = runs(program(def, variant), strategy, 60);
        sinon.replace(coverageModule, 'installCoverage', () => {});
        const without = runs(program(def, variant), strategy, 60);
        expect(without.every((r) => r.coverage === null && r.interleaving === 0)).to.equal(true);
        const shape = (r: RunResult) => ({ hash: r.hash, steps: r.metrics.steps, findings: r.findings.map((f) => f.fingerprint) });
        expect(withIt.map(shape)).to.deep.equal(without.map(shape));
      });
    }
  });

  it('is deterministic: replays give the same log, hash, coverage and class', () => {
    for (const [def, variant] of [[abba, 'buggy'], [irqSelf, 'buggy']] as const) {
      const p = program(def, variant);
      const e = new Engine();
      const k = calibrate(p, e, 0);
      for (let i = 0; i < 10; i++) {
        const a = e.run(p, makeStrategy({ strategy: 'pct' }), deriveSeed(0, i), k);
        const b = e.run(p, makeStrategy({ strategy: 'pct' }), deriveSeed(0, i), k);
        expect(b.coverage).to.deep.equal(a.coverage);
        expect(b.interleaving).to.equal(a.interleaving);
        expect(checkDeterminism(p, {}, a.deviations, deriveSeed(0, i), k, a.hash)).to.equal(null);
      }
    }
  });
});
