import { expect } from 'chai';
import { IRQ, SCHED, WAKE } from '../../scheduler/choice';
import { Path, unpackDeviations, type Branch } from '../../scheduler/path';

/** Path: one structure for recording, replay lookup and a stateless search's branch stack. */
describe('Path', () => {
  it('records deviations and hands them back in order, packed or unpacked', () => {
    const p = new Path();
    for (let i = 0; i < 300; i++) p.record(i, p.nextSub(SCHED, i), SCHED, i % 7);
    expect(p.size).to.equal(300);
    expect(p.deviations()[5]).to.deep.equal({ step: 5, sub: 0, kind: SCHED, id: 5 });
    const packed = p.take();
    // Three bytes a deviation here (step delta, sub and kind, id): 300 deviations, 900 bytes.
    expect(packed.reduce((s, c) => s + c.length, 0)).to.equal(900);
    expect(unpackDeviations(packed)[299]).to.deep.equal({ step: 299, sub: 0, kind: SCHED, id: 299 % 7 });
    expect(p.size).to.equal(0);
    expect(p.take()).to.deep.equal([]);
  });

  it('keeps a long path in chunks without copying them, and hands every deviation back in order', () => {
    // 40,000 deviations of 3 bytes each: past one 65,536-byte chunk.
    const p = new Path();
    const n = 40_000;
    for (let i = 0; i < n; i++) p.record(i, 0, SCHED, i % 5);
    expect(p.size).to.equal(n);
    const devs = p.deviations();
    expect(devs.length).to.equal(n);
    const chunks = p.take();
    expect(chunks.length).to.equal(2);
    const back = unpackDeviations(chunks);
    expect(back).to.deep.equal(devs);
    for (let i = 0; i < n; i += 997) expect(back[i]).to.deep.equal({ step: i, sub: 0, kind: SCHED, id: i % 5 });
    // The next run records into a fresh buffer: what was handed over stays as it was.
    p.record(7, 0, SCHED, 3);
    expect(unpackDeviations(chunks)[0]).to.deep.equal({ step: 0, sub: 0, kind: SCHED, id: 0 });
    expect(p.deviations()).to.deep.equal([{ step: 7, sub: 0, kind: SCHED, id: 3 }]);
  });

  it('replay lookup finds a deviation by (step, kind, sub) once, and reports those passed unapplied', () => {
    // Loaded out of order: the lookup sorts by step and keeps each step's recorded order.
    const p = new Path().load([
      { step: 5, sub: 1, kind: SCHED, id: 3 },
      { step: 2, sub: 0, kind: IRQ, id: 9 },
      { step: 5, sub: 0, kind: SCHED, id: 1 },
      { step: 4, sub: 0, kind: WAKE, id: 2 },
    ]);
    p.rewind();
    expect(p.skipPassed(2)).to.equal(-1);
    expect(p.lookup(2, SCHED, 0)).to.equal(-1); // other kind
    const i = p.lookup(2, IRQ, 0);
    expect(p.wanted(i).id).to.equal(9);
    expect(p.lookup(2, IRQ, 0)).to.equal(-1); // applied once only
    // Step 4's wake choice is never made: passing step 4 reports it, once.
    const missed = p.skipPassed(5);
    expect(p.wanted(missed)).to.deep.equal({ step: 4, sub: 0, kind: WAKE, id: 2 });
    expect(p.skipPassed(5)).to.equal(-1);
    expect(p.wanted(p.lookup(5, SCHED, 1)).id).to.equal(3);
    expect(p.wanted(p.lookup(5, SCHED, 0)).id).to.equal(1);
    expect(p.skipPassed(Infinity)).to.equal(-1);
    // A new run starts over: everything is unapplied again, and left over at the end.
    p.rewind();
    const left: number[] = [];
    for (let k; (k = p.skipPassed(Infinity)) >= 0; ) left.push(p.wanted(k).step);
    expect(left).to.deep.equal([2, 4, 5, 5]);
  });

  it('the branch stack walks a tree depth-first, replaying the prefix and backtracking the deepest point', () => {
    // Three binary choices: a stateless search must see the 8 paths in lexicographic order.
    const p = new Path<Branch>();
    const advance = (b: Branch): boolean => ++b.pos < b.n;
    const seen: string[] = [];
    for (let run = 0; run < 20; run++) {
      p.restart();
      const picks: number[] = [];
      for (let d = 0; d < 3; d++) {
        let b = p.replayed();
        if (b === null) {
          b = { kind: SCHED, n: 2, pos: 0 };
          p.push(b);
        } else p.next();
        picks.push(b.pos);
      }
      seen.push(picks.join(''));
      if (!p.backtrack(advance)) break;
    }
    expect(seen).to.deep.equal(['000', '001', '010', '011', '100', '101', '110', '111']);
  });

  it('backtrack keeps a floor and a cut, and diverge drops the recorded rest', () => {
    const p = new Path<Branch>();
    const advance = (b: Branch): boolean => ++b.pos < b.n;
    for (let d = 0; d < 3; d++) p.push({ kind: SCHED, n: 2, pos: 1 });
    // Every point is at its last alternative: above floor 1 nothing is left, the root stays.
    expect(p.backtrack(advance, 1)).to.equal(false);
    expect(p.branches.length).to.equal(1);
    // A run that reached only depth 1 drops what it did not reach; a cut drops deeper points.
    p.restart();
    p.next();
    p.push({ kind: SCHED, n: 3, pos: 0 });
    p.push({ kind: SCHED, n: 3, pos: 0 });
    p.settle(2);
    expect(p.branches.length).to.equal(2);
    // Divergence at depth 1: the recorded point there and below is forgotten.
    p.restart();
    p.next();
    p.diverge();
    expect(p.branches.length).to.equal(1);
    expect(p.replayed()).to.equal(null);
  });
});
