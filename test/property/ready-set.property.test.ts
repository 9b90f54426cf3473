/**
 * Property test of timed mode's ready set (scheduler/ready.ts) against a plain map of the ready
 * threads' (clock, class): after any sequence of insert, remove, rekey (later, equal and
 * earlier clocks, either class) and fillNow, every ready thread is in exactly one of the heap
 * and `now`; `now` holds exactly the class-1 threads at `nowKey`, ascending, with nothing in the
 * heap before them; minKey() is the earliest clock; and fillNow() takes exactly the threads tied
 * with the heap's minimum. Seeded, so a run is the same on every machine.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { P_CONT, P_RESUME } from '../../scheduler/ops';
import { ReadySet } from '../../scheduler/ready';
import type { Thread } from '../../scheduler/thread';

const SEED = 0x4ead7;
const IDS = 24;

type Op =
  | { op: 'insert' | 'rekey'; id: number; clock: number; cont: boolean }
  | { op: 'remove'; id: number }
  | { op: 'fill' };

const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('insert' as const), id: fc.nat({ max: IDS - 1 }), clock: fc.nat({ max: 12 }), cont: fc.boolean() }),
    fc.record({ op: fc.constant('rekey' as const), id: fc.nat({ max: IDS - 1 }), clock: fc.nat({ max: 12 }), cont: fc.boolean() }),
    fc.record({ op: fc.constant('remove' as const), id: fc.nat({ max: IDS - 1 }) }),
    fc.record({ op: fc.constant('fill' as const) }),
    fc.record({ op: fc.constant('fill' as const) }),
  ),
  { minLength: 100, maxLength: 400 },
);

/** The stand-in of a thread: the fields the ready set reads. */
function thread(id: number): Thread {
  return { id, clock: 0, opKind: P_RESUME, inReady: false } as unknown as Thread;
}

function check(rs: ReadySet, ref: Map<number, [number, number]>): void {
  const h = rs.heap;
  const now = Array.from(rs.now.subarray(0, rs.nowLen));
  expect(h.size + rs.nowLen, 'every ready thread in one place').to.equal(ref.size);
  let min = Infinity;
  for (const [id, [c, cls]] of ref) {
    min = Math.min(min, c);
    const inNow = now.includes(id);
    expect(h.has(id) !== inNow, `thread ${id} in exactly one of heap and now`).to.equal(true);
    if (inNow) expect([c, cls], `thread ${id} in now`).to.deep.equal([rs.nowKey, 1]);
    else {
      expect([h.keyOf(id), h.classOf(id)], `thread ${id}'s heap key`).to.deep.equal([c, cls]);
      if (rs.nowLen > 0) {
        expect(c, `heap thread ${id} before now`).to.be.at.least(rs.nowKey);
        expect(c === rs.nowKey && cls === 1, `candidate ${id} left in the heap`).to.equal(false);
      }
    }
  }
  expect(now).to.deep.equal([...now].sort((a, b) => a - b));
  expect(rs.minKey()).to.equal(min);
}

describe('property: the timed ready set against a map', () => {
  it('keeps every ready thread in one place, the candidates of the earliest clock in now', () => {
    let filled = 0;
    fc.assert(
      fc.property(ops, (list) => {
        const rs = new ReadySet(true);
        const ts = Array.from({ length: IDS }, (_, i) => thread(i));
        const ref = new Map<number, [number, number]>();
        for (const o of list) {
          if (o.op === 'fill') {
            const h = rs.heap;
            // The run loop fills `now` when it is empty and the heap's earliest thread has a visible op.
            if (rs.nowLen > 0 || h.size === 0 || h.classOf(h.peekId()) !== 1) continue;
            const k = h.peekKey();
            const want = [...ref].filter(([, [c, cls]]) => c === k && cls === 1).map(([id]) => id).sort((a, b) => a - b);
            const n = rs.fillNow();
            expect(Array.from(rs.now.subarray(0, n))).to.deep.equal(want);
            filled++;
          } else if (o.op === 'remove') {
            if (!ref.has(o.id)) continue;
            rs.remove(ts[o.id]);
            ref.delete(o.id);
          } else {
            const t = ts[o.id];
            if ((o.op === 'insert') === ref.has(o.id)) continue;
            t.clock = o.clock;
            t.opKind = o.cont ? P_CONT : P_RESUME;
            if (o.op === 'insert') rs.insert(t);
            else rs.rekey(t);
            ref.set(o.id, [o.clock, o.cont ? 0 : 1]);
          }
          check(rs, ref);
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
    expect(filled, 'now was filled often').to.be.greaterThan(500);
  });

  it('fails on a planted fault: a candidate left in the heap', () => {
    const rs = new ReadySet(true);
    const a = thread(1);
    const b = thread(2);
    rs.insert(a);
    rs.insert(b);
    rs.fillNow();
    const ref = new Map<number, [number, number]>([[1, [0, 1]], [2, [0, 1]]]);
    check(rs, ref);
    // Put a candidate at nowKey straight into the heap, behind the ready set's back.
    rs.now[rs.nowLen - 1] = 0;
    rs.nowLen--;
    rs.heap.push(2, 0, 1);
    expect(() => check(rs, ref)).to.throw(/candidate 2 left in the heap/);
  });
});
