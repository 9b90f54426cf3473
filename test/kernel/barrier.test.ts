import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { smp_load_acquire, smp_store_release } from '../../lib/kernel/barrier';
import { READ_ONCE, WRITE_ONCE, kobject_alloc } from '../../lib/kernel/object';
import { WARN_ON } from '../../lib/kernel/bug';

/**
 * Message passing: the writer fills `data` and publishes `ready` with smp_store_release; the
 * reader checks `ready` with smp_load_acquire and then reads `data`. `buggy` publishes first.
 * Sequentially consistent model: only the program-order bug is found, never a reordering.
 */
const publish = (buggy: boolean) =>
  kernelProgram(`barrier-${buggy ? 'publish-first' : 'publish-last'}`, 2, (m) => {
    const msg = kobject_alloc(m, 'msg', { data: 0, ready: 0 });
    m.kthread('writer', 0, function* (cur) {
      if (buggy) yield* smp_store_release(cur, msg, 'ready', 1);
      yield* WRITE_ONCE(cur, msg, 'data', 42);
      if (!buggy) yield* smp_store_release(cur, msg, 'ready', 1);
    });
    m.kthread('reader', 1, function* (cur) {
      if ((yield* smp_load_acquire(cur, msg, 'ready')) === 1) WARN_ON(cur, (yield* READ_ONCE(cur, msg, 'data')) !== 42, 'stale data');
    });
  });

describe('smp_store_release / smp_load_acquire', () => {
  it('a flag published before the data is seen with stale data (found); published after, clean', () => {
    foundWithin(publish(true), 300, 'stale data');
    cleanOver(publish(false), 1000);
  });
});
