import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { REFCOUNT_INIT, REFCOUNT_SATURATED, refcount_dec, refcount_dec_and_test, refcount_read } from '../../lib/kernel/refcount';
import { lookupRacingPut } from '../support/primitives';

describe('refcount_t', () => {
  it('refcount_inc racing the last put: "refcount_t: addition on 0; use-after-free." found; refcount_inc_not_zero is clean', () => {
    const f = foundWithin(lookupRacingPut(true), 300, 'refcount_t: addition on 0; use-after-free.');
    expect(f.headline).to.equal('WARNING at refcount_warn_saturate: refcount_t: addition on 0; use-after-free.');
    cleanOver(lookupRacingPut(false), 1000);
  });

  it('saturates and warns as lib/refcount.c does: underflow, decrement hit 0', () => {
    const log: string[] = [];
    const p = kernelProgram('refcount-saturate', 1, (m) => {
      const a = REFCOUNT_INIT(m, 'a', 1);
      const b = REFCOUNT_INIT(m, 'b', 1);
      m.kthread('t', 0, function* (cur) {
        log.push(`${yield* refcount_dec_and_test(cur, a)} ${yield* refcount_dec_and_test(cur, a)} ${yield* refcount_read(cur, a)}`);
        yield* refcount_dec(cur, b);
        log.push(`${yield* refcount_read(cur, b)}`);
      });
    });
    const f = foundWithin(p, 1, 'underflow');
    expect(f.headline).to.equal('WARNING at refcount_warn_saturate: refcount_t: underflow; use-after-free.');
    foundWithin(p, 1, 'refcount_t: decrement hit 0; leaking memory.');
    expect(log.slice(-2)).to.deep.equal([`true false ${REFCOUNT_SATURATED}`, `${REFCOUNT_SATURATED}`]);
  });
});
