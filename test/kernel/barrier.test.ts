import { cleanOver, foundWithin } from '../support/race';
import { publish } from '../support/primitives';

describe('smp_store_release / smp_load_acquire', () => {
  it('a flag published before the data is seen with stale data (found); published after, clean', () => {
    foundWithin(publish(true), 300, 'stale data');
    cleanOver(publish(false), 1000);
  });
});
