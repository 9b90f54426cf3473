/**
 * Property test of the wait-queue FIFO (scheduler/fifo.ts), a ring buffer, against a plain
 * array doing the same operations: any sequence of push, shift, unshift, removeAt, at, indexOf
 * and findIndex gives the same answers and leaves the same contents, across wrap-around and
 * growth. Seeded, so a run is the same on every machine.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Fifo } from '../../scheduler/fifo';

const SEED = 0xf1f0;

type Op = { op: 'push' | 'unshift'; v: number } | { op: 'shift' } | { op: 'removeAt' | 'at'; i: number } | { op: 'indexOf'; v: number };

const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('push' as const), v: fc.nat({ max: 30 }) }),
    fc.record({ op: fc.constant('push' as const), v: fc.nat({ max: 30 }) }),
    fc.record({ op: fc.constant('unshift' as const), v: fc.nat({ max: 30 }) }),
    fc.record({ op: fc.constant('shift' as const) }),
    fc.record({ op: fc.constant('removeAt' as const), i: fc.nat({ max: 40 }) }),
    fc.record({ op: fc.constant('at' as const), i: fc.integer({ min: -2, max: 40 }) }),
    fc.record({ op: fc.constant('indexOf' as const), v: fc.nat({ max: 30 }) }),
  ),
  { maxLength: 300 },
);

describe('property: Fifo against an array', () => {
  it('answers every operation as an array does and keeps the same contents', () => {
    fc.assert(
      fc.property(ops, (list) => {
        const q = new Fifo<number>();
        const ref: number[] = [];
        for (const o of list) {
          switch (o.op) {
            case 'push':
              q.push(o.v);
              ref.push(o.v);
              break;
            case 'unshift':
              q.unshift(o.v);
              ref.unshift(o.v);
              break;
            case 'shift':
              expect(q.shift()).to.equal(ref.shift());
              break;
            case 'removeAt':
              if (o.i < ref.length) expect(q.removeAt(o.i)).to.equal(ref.splice(o.i, 1)[0]);
              else expect(() => q.removeAt(o.i)).to.throw(RangeError);
              break;
            case 'at':
              expect(q.at(o.i)).to.equal(o.i >= 0 ? ref[o.i] : undefined);
              break;
            case 'indexOf':
              expect(q.indexOf(o.v)).to.equal(ref.indexOf(o.v));
              expect(q.includes(o.v)).to.equal(ref.includes(o.v));
              expect(q.findIndex((x) => x === o.v)).to.equal(ref.findIndex((x) => x === o.v));
              break;
          }
          expect(q.length).to.equal(ref.length);
        }
        expect(q.toArray()).to.deep.equal(ref);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });
});
