import { expect } from 'chai';
import { ClockHeap, TimerHeap } from '../../scheduler/heap';
import { Rng } from '../../scheduler/rng';

describe('heaps', () => {
  it('ClockHeap orders by (clock, class, id) under random push/pop/update/remove', () => {
    const rng = new Rng(1);
    const h = new ClockHeap(2);
    /** id -> [key, class] */
    const ref = new Map<number, [number, number]>();
    const order = (a: [number, [number, number]], b: [number, [number, number]]): number => a[1][0] - b[1][0] || a[1][1] - b[1][1] || a[0] - b[0];
    let deepTies = 0;
    for (let op = 0; op < 20_000; op++) {
      const r = rng.int(10);
      // Pushes outnumber pops, so the heap fills up to its 300 ids and ties run deep.
      if (r < 6 || ref.size === 0) {
        const id = rng.int(300);
        if (ref.has(id)) continue;
        const key = rng.int(20);
        const cls = rng.int(4) === 0 ? 0 : 1;
        h.push(id, key, cls);
        ref.set(id, [key, cls]);
      } else if (r < 7) {
        const ids = [...ref.keys()];
        const id = ids[rng.int(ids.length)];
        const key = rng.int(20);
        const cls = rng.int(4) === 0 ? 0 : 1;
        h.update(id, key, cls);
        ref.set(id, [key, cls]);
      } else if (r < 8) {
        const ids = [...ref.keys()];
        const id = ids[rng.int(ids.length)];
        h.remove(id);
        ref.delete(id);
      } else {
        const want = [...ref.entries()].sort(order)[0];
        expect(h.peekKey()).to.equal(want[1][0]);
        expect(h.classOf(want[0])).to.equal(want[1][1]);
        // Equal (key, class) pop in ascending id order (ReadySet.takeNow takes ties that way).
        if ([...ref.values()].filter((v) => v[0] === want[1][0] && v[1] === want[1][1]).length > 7) deepTies++;
        expect(h.pop()).to.equal(want[0]);
        ref.delete(want[0]);
      }
      expect(h.size).to.equal(ref.size);
    }
    // Wide ties were popped too.
    expect(deepTies).to.be.greaterThan(20);
  });

  it('TimerHeap fires equal times in creation order', () => {
    const t = new TimerHeap<string>(1);
    const rng = new Rng(2);
    const items: [number, string][] = [];
    for (let i = 0; i < 500; i++) {
      const time = rng.int(20);
      t.push(time, `e${i}`);
      items.push([time, `e${i}`]);
    }
    const want = items.map((x, i) => [x[0], i, x[1]] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const w of want) {
      expect(t.peekTime()).to.equal(w[0]);
      expect(t.pop()).to.equal(w[2]);
    }
    expect(t.size).to.equal(0);
    expect(t.peekTime()).to.equal(Infinity);
  });
});
