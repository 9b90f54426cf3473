import { expect } from 'chai';
import { Engine, hunt, makeStrategy } from '../../scheduler';
import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { ATOMIC_INIT, atomic_cmpxchg, atomic_fetch_add, atomic_inc_not_zero, atomic_read, atomic_set, atomic_xchg, atomic_add_return } from '../../lib/kernel/atomic';
import { lastTwoPuts, getRacingPut } from '../support/primitives';
import { irqCounter } from '../support/primitives';

describe('atomic_t', () => {
  it('dec then read frees twice (double-free found); atomic_dec_and_test is clean', () => {
    const f = foundWithin(lastTwoPuts(true), 300, 'KASAN: double-free');
    expect(f.headline).to.include('double-free');
    cleanOver(lastTwoPuts(false), 1000);
  });

  it('a reference taken by atomic_read + atomic_set loses the update (use-after-free found); atomic_inc_not_zero is clean', () => {
    foundWithin(getRacingPut(true), 300, 'use-after-free in task: read of dev->x');
    cleanOver(getRacingPut(false), 1000);
  });

  it("an interrupt lands between atomic_read and atomic_set (lost update found) but never inside atomic_inc's one step (every DFS schedule clean)", () => {
    foundWithin(irqCounter(true), 200, 'stats.packets lost an update');
    const h = hunt(irqCounter(false), { strategy: 'dfs', iterations: 5000, stopAtFirst: false });
    expect(h.exhausted, 'DFS covered every schedule').to.equal(true);
    expect(h.findings).to.deep.equal([]);
    expect(h.schedulesRun).to.be.greaterThan(1);
  });

  it('returns what include/linux/atomic documents, each op one step', () => {
    const log: string[] = [];
    const p = kernelProgram('atomic-values', 1, (m) => {
      const v = ATOMIC_INIT(m, 'v', 5);
      m.kthread('t', 0, function* (cur) {
        log.push(`cmpxchg-miss ${yield* atomic_cmpxchg(cur, v, 4, 9)}`);
        log.push(`cmpxchg-hit ${yield* atomic_cmpxchg(cur, v, 5, 9)}`);
        log.push(`fetch_add ${yield* atomic_fetch_add(cur, 2, v)}`);
        log.push(`add_return ${yield* atomic_add_return(cur, 1, v)}`);
        log.push(`xchg ${yield* atomic_xchg(cur, v, 0)}`);
        log.push(`inc_not_zero ${yield* atomic_inc_not_zero(cur, v)} ${yield* atomic_read(cur, v)}`);
        yield* atomic_set(cur, v, 0x7fffffff);
        log.push(`wrap ${yield* atomic_add_return(cur, 1, v)}`);
      });
    });
    const e = new Engine({ captureOps: true });
    const r = e.run(p, makeStrategy({ strategy: 'random' }), 0);
    expect(r.findings).to.deep.equal([]);
    expect(log).to.deep.equal(['cmpxchg-miss 5', 'cmpxchg-hit 5', 'fetch_add 9', 'add_return 12', 'xchg 12', 'inc_not_zero false 0', 'wrap -2147483648']);
  });
});
