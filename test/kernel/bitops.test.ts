import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { DECLARE_BITMAP, clear_bit, set_bit, test_and_clear_bit, test_and_set_bit, test_bit } from '../../lib/kernel/bitops';
import { teardown } from '../support/primitives';

describe('bitops', () => {
  it('test_bit then set_bit lets both paths through (double-free found); test_and_set_bit is clean', () => {
    foundWithin(teardown(true), 300, 'KASAN: double-free');
    cleanOver(teardown(false), 1000);
  });

  it('test_and_clear_bit returns the old bit, once', () => {
    const log: string[] = [];
    const p = kernelProgram('bitops-values', 1, (m) => {
      const b = DECLARE_BITMAP(m, 'b', 8);
      m.kthread('t', 0, function* (cur) {
        yield* set_bit(cur, 7, b);
        log.push(`${yield* test_and_clear_bit(cur, 7, b)} ${yield* test_and_clear_bit(cur, 7, b)} ${yield* test_bit(cur, 7, b)}`);
        yield* clear_bit(cur, 0, b);
        log.push(`${yield* test_and_set_bit(cur, 0, b)} ${yield* test_and_set_bit(cur, 0, b)}`);
      });
    });
    cleanOver(p, 1);
    expect(log.slice(-2)).to.deep.equal(['true false false', 'false true']);
  });
});
