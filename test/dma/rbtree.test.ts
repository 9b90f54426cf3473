import { expect } from 'chai';
import { Rng } from '../../scheduler';
import { RbTree, type RbNode } from '../../lib/dma/swiotlb/rbtree';

function keys<V>(t: RbTree<V>): number[] {
  const out: number[] = [];
  for (let n = t.first(); n !== null; n = t.next(n)) out.push(n.key);
  return out;
}

describe('swiotlb rbtree', () => {
  it('keeps the red-black rules and order over random inserts and erases', () => {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      const t = new RbTree<number>();
      const live = new Map<number, RbNode<number>>();
      for (let i = 0; i < 3000; i++) {
        if (live.size > 0 && rng.int(3) === 0) {
          const ks = [...live.keys()];
          const k = ks[rng.int(ks.length)];
          t.erase(live.get(k)!);
          live.delete(k);
        } else {
          const k = rng.int(1 << 20) * 4096;
          if (live.has(k)) continue;
          live.set(k, t.insert(k, i));
        }
        if (i % 97 === 0) expect(t.check(), `seed ${seed} step ${i}`).to.equal(null);
      }
      expect(t.check()).to.equal(null);
      expect(t.size).to.equal(live.size);
      expect(keys(t)).to.deep.equal([...live.keys()].sort((a, b) => a - b));
      for (const k of [...live.keys()]) t.erase(live.get(k)!);
      expect(t.size).to.equal(0);
      expect(t.root).to.equal(null);
    }
  });

  it('floor finds the buffer holding an address; steps stay within 2 log2(n+1)', () => {
    const t = new RbTree<string>();
    for (let i = 0; i < 4096; i++) t.insert(i * 8192, `b${i}`);
    expect(t.check()).to.equal(null);
    expect(t.floor(5 * 8192 + 100)!.value).to.equal('b5');
    expect(t.floor(-1)).to.equal(null);
    expect(t.find(5 * 8192 + 100)).to.equal(null);
    expect(t.find(5 * 8192)!.value).to.equal('b5');
    let max = 0;
    for (let i = 0; i < 4096; i += 7) {
      t.floor(i * 8192 + 1);
      max = Math.max(max, t.lastSteps);
    }
    expect(max).to.be.at.most(2 * Math.log2(4097));
    expect(max).to.be.at.least(12);
    expect(t.height()).to.be.at.most(2 * Math.log2(4097));
  });

  it('sequential inserts (addresses handed out in order) stay balanced', () => {
    const t = new RbTree<number>();
    for (let i = 0; i < 1000; i++) t.insert(i, i);
    expect(t.check()).to.equal(null);
    expect(t.height()).to.be.at.most(2 * Math.log2(1001));
    // erase every other node, then the rest, checking as it goes
    const nodes: RbNode<number>[] = [];
    for (let n = t.first(); n !== null; n = t.next(n)) nodes.push(n);
    for (let i = 0; i < nodes.length; i += 2) t.erase(nodes[i]);
    expect(t.check()).to.equal(null);
    expect(keys(t)).to.deep.equal(nodes.filter((_, i) => i % 2 === 1).map((n) => n.key));
  });
});
