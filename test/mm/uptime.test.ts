import { expect } from 'chai';
import { runIteration } from '../../scheduler';
import type { Machine } from '../../lib/kernel/machine';
import { LRU_FILE_CLEAN, MIB, mm, mm_prepare, mm_uptime, mm_uptime_rounds, ZONE_DMA32 } from '../../lib/mm';
import { memProgram } from '../support/memory';

/** Run `steps` calls of mm_uptime on a fresh 64 MiB machine; report what the test looks at. */
function runUptime(steps: number[], seed = 1) {
  const out: { hash: number; cache: number; rounds: number; invariants: string | null; order8: number; lruOk: boolean }[] = [];
  const img = mm_prepare({ memory: 64 * MIB });
  const p = memProgram('uptime', { image: img, cpus: 1, kswapd: false }, (m: Machine) => {
    m.kthread('t', 0, function* (cur) {
      out.length = 0; // the engine may run the program more than once
      for (const s of steps) {
        yield* mm_uptime(cur, s, { seed });
        const model = mm(m);
        const phys = model.phys;
        // Every LRU page is an allocated movable order-0 page.
        let lruOk = true;
        for (let i = 0; i < model.lru.len[LRU_FILE_CLEAN]; i++) {
          const pfn = model.lru.at(LRU_FILE_CLEAN, i);
          if (phys.allocatedOrder(pfn) !== 0 || !phys.isMovable(pfn)) lruOk = false;
        }
        // Order-8 ranges of DMA32 holding nothing but free and movable pages (what drop_caches plus
        // compaction could hand out).
        const z = phys.zoneByIdx(ZONE_DMA32)!;
        let order8 = 0;
        for (let s = Math.ceil(z.startPfn / 256) * 256; s + 256 <= z.endPfn; s += 256) {
          let ok = true;
          for (let q = s; q < s + 256 && ok; q++) if (phys.allocatedOrder(q) >= 0 && !phys.isMovable(q)) ok = false;
          if (ok) order8++;
        }
        out.push({ hash: phys.stateHash(), cache: model.lru.len[LRU_FILE_CLEAN], rounds: mm_uptime_rounds(m), invariants: phys.checkInvariants(), order8, lruOk });
      }
    });
  });
  const r = runIteration(p, { iteration: 0 });
  expect(r.findings.map((f) => f.headline)).to.deep.equal([]);
  return out;
}

describe('mm/uptime: the fragmenting workload on a running machine', function () {
  this.timeout(30_000);

  it('keeps the allocator and the LRU consistent, counts rounds, and fills memory with page cache', () => {
    const out = runUptime([0, 20, 30]);
    expect(out.map((o) => o.rounds)).to.deep.equal([0, 20, 50]);
    for (const o of out) {
      expect(o.invariants).to.equal(null);
      expect(o.lruOk).to.equal(true);
    }
    expect(out[0].cache).to.equal(0);
    expect(out[2].cache).to.be.greaterThan(0.6 * (64 * MIB / 4096));
  });

  it('order-8 blocks after drop_caches fall with uptime (48 fresh, fewer after 50 and 200 rounds)', () => {
    const out = runUptime([0, 50, 150]);
    expect(out[0].order8).to.equal(48);
    expect(out[1].order8).to.be.lessThan(48);
    expect(out[2].order8).to.be.at.most(out[1].order8);
    expect(out[2].order8).to.be.lessThan(36);
  });

  it('is deterministic from the seed; another seed gives another memory', () => {
    const a = runUptime([30], 7);
    const b = runUptime([30], 7);
    const c = runUptime([30], 8);
    expect(a[0].hash).to.equal(b[0].hash);
    expect(c[0].hash).to.not.equal(a[0].hash);
  });
});
