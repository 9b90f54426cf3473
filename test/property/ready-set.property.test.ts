/**
 * Property test of timed mode's ready set (scheduler/ready.ts) against a plain map of the ready
 * threads' (clock, class): after any sequence of insert, remove, rekey (later, equal and
 * earlier clocks, either class) and takeNow, every ready thread is in exactly one of the heap
 * and `now`; `now` holds class-1 threads at `nowKey`, ascending, with nothing in the heap before
 * them; minKey() is the earliest clock; and takeNow() offers exactly the class-1 threads at the
 * earliest clock whenever the run loop would call it (no thread resuming local work there).
 * Seeded, so a run is the same on every machine.
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
  | { op: 'take' }
  | { op: 'resume' };

const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('insert' as const), id: fc.nat({ max: IDS - 1 }), clock: fc.nat({ max: 12 }), cont: fc.boolean() }),
    fc.record({ op: fc.constant('rekey' as const), id: fc.nat({ max: IDS - 1 }), clock: fc.nat({ max: 12 }), cont: fc.boolean() }),
    fc.record({ op: fc.constant('remove' as const), id: fc.nat({ max: IDS - 1 }) }),
    fc.record({ op: fc.constant('take' as const) }),
    fc.record({ op: fc.constant('take' as const) }),
    fc.record({ op: fc.constant('resume' as const) }),
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
      if (rs.nowLen > 0) expect(c, `heap thread ${id} before now`).to.be.at.least(rs.nowKey);
    }
  }
  expect(now).to.deep.equal([...now].sort((a, b) => a - b));
  expect(rs.minKey()).to.equal(min);
}

describe('property: the timed ready set against a map', () => {
  it('keeps every ready thread in one place, the candidates of the earliest clock in now', () => {
    let filled = 0;
    let resumed = 0;
    fc.assert(
      fc.property(ops, (list) => {
        const rs = new ReadySet(true);
        const ts = Array.from({ length: IDS }, (_, i) => thread(i));
        const ref = new Map<number, [number, number]>();
        for (const o of list) {
          if (o.op === 'take') {
            const h = rs.heap;
            const mk = rs.minKey();
            // The run loop takes `now` when no thread resumes local work at the earliest clock.
            if (mk === Infinity || (h.size > 0 && h.peekKey() === mk && h.classOf(h.peekId()) === 0)) continue;
            const want = [...ref].filter(([, [c, cls]]) => c === mk && cls === 1).map(([id]) => id).sort((a, b) => a - b);
            const n = rs.takeNow();
            expect(Array.from(rs.now.subarray(0, n))).to.deep.equal(want);
            filled++;
          } else if (o.op === 'resume') {
            // What the run loop does most: the earliest thread resumes its local work and issues
            // a visible op at the same instant.
            const h = rs.heap;
            if (h.size === 0 || h.classOf(h.peekId()) !== 0 || h.peekKey() !== rs.minKey()) continue;
            const t = ts[h.peekId()];
            t.opKind = P_RESUME;
            rs.rekey(t);
            ref.set(t.id, [t.clock, 1]);
            resumed++;
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
    expect(filled, 'now was taken often').to.be.greaterThan(500);
    expect(resumed, 'threads resumed at the front often').to.be.greaterThan(500);
  });

  it('fails on a planted fault: a thread in the heap before the candidates', () => {
    const rs = new ReadySet(true);
    const a = thread(1);
    const b = thread(2);
    a.clock = b.clock = 5;
    rs.insert(a);
    rs.insert(b);
    rs.takeNow();
    const ref = new Map<number, [number, number]>([[1, [5, 1]], [2, [5, 1]]]);
    check(rs, ref);
    // Move a candidate into the heap at an earlier clock, behind the ready set's back.
    rs.now[rs.nowLen - 1] = 0;
    rs.nowLen--;
    rs.heap.push(2, 3, 1);
    ref.set(2, [3, 1]);
    expect(() => check(rs, ref)).to.throw(/heap thread 2 before now/);
  });
});
