import { expect } from 'chai';
import { Engine, makeStrategy } from '../../scheduler';
import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { ATOMIC_INIT, atomic_cmpxchg, atomic_dec, atomic_dec_and_test, atomic_fetch_add, atomic_inc_not_zero, atomic_read, atomic_set, atomic_xchg, atomic_add_return, type atomic_t } from '../../lib/kernel/atomic';
import { READ_ONCE, kfree, kobject_alloc, type KObject } from '../../lib/kernel/object';
import type { KernelBody } from '../../lib/kernel/machine';
import type { Task } from '../../lib/kernel/task';

type Dev = KObject<{ x: number }>;

/** Drop a reference: `buggy` decrements, then reads the counter in a second step. */
function* put(cur: Task, ref: atomic_t, dev: Dev, buggy: boolean): KernelBody<void> {
  if (buggy) {
    yield* atomic_dec(cur, ref);
    if ((yield* atomic_read(cur, ref)) === 0) yield* kfree(cur, dev);
  } else if (yield* atomic_dec_and_test(cur, ref)) yield* kfree(cur, dev);
}

/** Two holders drop the last two references at once. */
const lastTwoPuts = (buggy: boolean) =>
  kernelProgram(`atomic-put-${buggy ? 'dec-read' : 'dec-and-test'}`, 2, (m) => {
    const ref = ATOMIC_INIT(m, 'dev.refcnt', 2);
    const dev = kobject_alloc(m, 'dev', { x: 1 });
    for (const cpu of [0, 1]) m.kthread(`put${cpu}`, cpu, (cur) => put(cur, ref, dev, buggy));
  });

/** A lookup takes a reference while the owner drops the last one; `buggy`: read + set. */
const getRacingPut = (buggy: boolean) =>
  kernelProgram(`atomic-get-${buggy ? 'read-set' : 'inc-not-zero'}`, 2, (m) => {
    const ref = ATOMIC_INIT(m, 'dev.refcnt', 1);
    const dev = kobject_alloc(m, 'dev', { x: 1 });
    m.kthread('lookup', 0, function* (cur) {
      if (buggy) {
        const v = yield* atomic_read(cur, ref);
        if (v === 0) return;
        yield* atomic_set(cur, ref, v + 1); // lost update: the put's store can land in between
      } else if (!(yield* atomic_inc_not_zero(cur, ref))) return;
      yield* READ_ONCE(cur, dev, 'x');
      if (buggy) {
        const v = yield* atomic_read(cur, ref);
        yield* atomic_set(cur, ref, v - 1);
        if (v - 1 === 0) yield* kfree(cur, dev);
      } else yield* put(cur, ref, dev, false);
    });
    m.kthread('release', 1, function* (cur) {
      if (buggy) {
        const v = yield* atomic_read(cur, ref);
        yield* atomic_set(cur, ref, v - 1);
        if (v - 1 === 0) yield* kfree(cur, dev);
      } else yield* put(cur, ref, dev, false);
    });
  });

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
