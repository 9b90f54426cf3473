import { expect } from 'chai';
import seedrandom from 'seedrandom';
import { Rng, deriveSeed, scaleDraw } from '../../scheduler/rng';

const INV32 = 1 / 4294967296;

/**
 * Rng is tyche-i written out (scheduler/rng.ts); schedules recorded with seedrandom's tychei
 * must replay, so every draw must be the same as seedrandom's for the same seed.
 */
describe('Rng', () => {
  const seeds = [0, 1, 7, 42, 99, 123456789, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
  for (let i = 0; i < 40; i++) seeds.push(deriveSeed(1, i), deriveSeed(0xdead, i));

  it('draws what seedrandom.tychei(String(seed)) draws, for int(n) and double()', () => {
    for (const seed of seeds) {
      const ours = new Rng(seed);
      const ref = seedrandom.tychei(String(seed));
      for (let k = 0; k < 500; k++) {
        // Small menus (the integer path), and past 2^16 (the floating-point one).
        const n = k % 5 === 4 ? 65530 + (k % 11) * 7 : 1 + (k % 17);
        if (k % 3 === 2) expect(ours.double()).to.equal((ref.int32() >>> 0) * INV32, `seed ${seed} draw ${k}`);
        else expect(ours.int(n)).to.equal(Math.floor((ref.int32() >>> 0) * INV32 * n), `seed ${seed} draw ${k}`);
      }
    }
  });

  it('scales a draw as floor(u * n / 2^32) does, at the edges and over a million draws', () => {
    const us = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffeffff, 0xffffffff];
    const ns = [1, 2, 3, 7, 255, 256, 4097, 0xfffe, 0xffff, 0x10000, 0x10001, 1 << 30, 2.5];
    for (const u of us) for (const n of ns) expect(scaleDraw(u, n)).to.equal(Math.floor(u * INV32 * n), `u ${u} n ${n}`);
    const g = seedrandom.tychei('scale');
    for (let k = 0; k < 1_000_000; k++) {
      const u = g.int32() >>> 0;
      const n = 1 + ((g.int32() >>> 0) % 0xffff);
      if (scaleDraw(u, n) !== Math.floor(u * INV32 * n)) expect.fail(`u ${u} n ${n}: ${scaleDraw(u, n)}`);
    }
  });

  it('says no to a different seed: two seeds that differ in one digit draw differently', () => {
    const a = new Rng(12345), b = new Rng(12346);
    const da = Array.from({ length: 8 }, () => a.int(1 << 30));
    const db = Array.from({ length: 8 }, () => b.int(1 << 30));
    expect(da).to.not.deep.equal(db);
  });
});
