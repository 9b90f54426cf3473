import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { INIT_LIST_HEAD, LIST_HEAD, list_add, list_add_tail, list_del_init, list_empty, list_first_entry_or_null, list_for_each_entry, list_move_tail } from '../../lib/kernel/list';
import { completeRacingCancel } from '../support/primitives';

describe('shared lists', () => {
  it('list_empty then list_del from two contexts: "list_del corruption" found; under the lock clean', () => {
    const f = foundWithin(completeRacingCancel(true), 300, 'list_del corruption');
    expect(f.headline).to.match(/^WARNING at __list_del_entry_valid_or_report: list_del corruption, ffff8881[0-9a-f]+->next is LIST_POISON1 \(dead000000000100\)$/);
    cleanOver(completeRacingCancel(false), 1000);
  });

  it('list order, list_first_entry_or_null, list_del_init, list_move_tail and the double add check', () => {
    const log: string[] = [];
    const p = kernelProgram('list-values', 1, (m) => {
      const a = LIST_HEAD<string>(m, 'a');
      const b = LIST_HEAD<string>(m, 'b');
      const [x, y, z] = ['x', 'y', 'z'].map((s) => INIT_LIST_HEAD(m, s));
      m.kthread('t', 0, function* (cur) {
        log.push(`first ${yield* list_first_entry_or_null(cur, a)}`);
        yield* list_add_tail(cur, x, a);
        yield* list_add_tail(cur, y, a);
        yield* list_add(cur, z, a);
        log.push((yield* list_for_each_entry(cur, a)).join(''));
        yield* list_del_init(cur, y);
        yield* list_del_init(cur, y); // self-linked: harmless
        yield* list_move_tail(cur, z, b);
        log.push(`${(yield* list_for_each_entry(cur, a)).join('')} ${(yield* list_for_each_entry(cur, b)).join('')} ${yield* list_empty(cur, a)}`);
        yield* list_add(cur, x, a); // x is already first on a: double add
      });
    });
    foundWithin(p, 1, 'list_add double add');
    expect(log.slice(-3)).to.deep.equal(['first null', 'zxy', 'x z false']);
  });
});
