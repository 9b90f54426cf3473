import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { smp_load_acquire, smp_store_release } from '../../lib/kernel/barrier';
import { READ_ONCE, WRITE_ONCE, kobject_alloc } from '../../lib/kernel/object';
import { WARN_ON } from '../../lib/kernel/bug';
import { publish } from '../support/primitives';

describe('smp_store_release / smp_load_acquire', () => {
  it('a flag published before the data is seen with stale data (found); published after, clean', () => {
    foundWithin(publish(true), 300, 'stale data');
    cleanOver(publish(false), 1000);
  });
});
