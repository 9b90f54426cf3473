import { expect } from 'chai';
import { kernelProgram } from '../support/kernel';
import { cleanOver, foundWithin } from '../support/race';
import { DEFINE_MUTEX, mutex_lock } from '../../lib/kernel/mutex';
import { SINGLE_DEPTH_NESTING, mutex_lock_nested } from '../../lib/kernel/nested';
import { parentChildMutex, parentChildRwsem } from '../support/primitives';

describe('lockdep nesting annotations (_nested, SINGLE_DEPTH_NESTING)', () => {
  it('mutex_lock of two locks of one class: possible recursive locking; mutex_lock_nested is clean', () => {
    const f = foundWithin(parentChildMutex(false), 5, 'possible recursive locking detected');
    expect(f.headline).to.include('possible recursive locking');
    cleanOver(parentChildMutex(true), 50);
  });

  for (const read of [true, false]) {
    it(`${read ? 'down_read' : 'down_write'} under down_write of the same class: recursive; ${read ? 'down_read_nested' : 'down_write_nested'} is clean`, () => {
      foundWithin(parentChildRwsem(false, read), 5, 'possible recursive locking detected');
      cleanOver(parentChildRwsem(true, read), 50);
    });
  }

  it('the annotation is lockdep only: taking the same mutex nested still self-deadlocks', () => {
    const p = kernelProgram('mutex-nested-self', 1, (m) => {
      const a = DEFINE_MUTEX(m, 'a');
      m.process('t', 0, function* (cur) {
        yield* mutex_lock(cur, a);
        yield* mutex_lock_nested(cur, a, SINGLE_DEPTH_NESTING);
      });
    });
    foundWithin(p, 5, 'deadlock');
  });
});
