/**
 * Which pool and area a request lands in when there is more than one pool (docs/kernel-facts.md §1.4):
 * v6.8+ walks area offsets first (for i in 0..default_nareas-1, every pool newest first, area
 * (cpu + i) & (nareas - 1), skipping pools with no more than i areas); v6.6 walks pools first
 * (each pool's areas from the CPU's, wrapping). Expected addresses are worked out by hand as
 * pool start + slot * 2 KiB.
 */
import { expect } from 'chai';
import { runIteration } from '../../scheduler';
import { BounceRef, DMA_TO_DEVICE, device, device_register, dma_init, io_tlb_mem, io_tlb_pool, swiotlb_find_in_pools, swiotlb_map, swiotlb_prepare, swiotlb_state, swiotlb_tbl_unmap_single, type SearchOrder } from '../../lib/dma';
import type { Machine } from '../../lib/kernel/machine';
import { migrate_task, msleep } from '../../lib/kernel/sched';
import type { Task } from '../../lib/kernel/task';
import { MIB, mm_prepare } from '../../lib/mm';
import { kernelProgram } from '../support/kernel';
import { memProgram } from '../support/memory';

const SLOT = 2048;
const BASE0 = 0x4000000; // the boot pool: 1024 slots, 4 areas of 256
const BASE1 = 0x8000000; // a newer pool: 512 slots, areas as the vector says

/** Take every free segment of one area (whole 128-slot runs). */
function fill(p: io_tlb_pool, area: number): void {
  while (p.search(area, 0, 128 * SLOT, SLOT - 1, 0, 0xffffffff, 4096) >= 0);
}

interface Vector {
  name: string;
  cpu: number;
  /** Areas of the newer pool (default 4). */
  nareas1?: number;
  /** Areas to fill first, per pool (0 = boot pool, 1 = newer pool). */
  full?: [pool: 0 | 1, area: number][];
  /** A request made first from the same CPU, to move a cursor. */
  before?: number;
  size: number;
  areaMajor: number;
  poolMajor: number;
}

const vectors: Vector[] = [
  // fresh pools: the newest pool, the CPU's area (2 * 128 slots in)
  { name: 'fresh: newest pool, the CPU area', cpu: 2, size: SLOT, areaMajor: BASE1 + 256 * SLOT, poolMajor: BASE1 + 256 * SLOT },
  // CPU 5 with 4 areas uses area 1
  { name: 'CPU 5 maps to area 1', cpu: 5, size: SLOT, areaMajor: BASE1 + 128 * SLOT, poolMajor: BASE1 + 128 * SLOT },
  // the CPU's area of the newest pool is full: v6.8+ stays on area 2 in the older pool (slot 512);
  // v6.6 stays in the newest pool and moves to its area 3 (slot 384)
  { name: 'newest pool area full', cpu: 2, full: [[1, 2]], size: SLOT, areaMajor: BASE0 + 512 * SLOT, poolMajor: BASE1 + 384 * SLOT },
  // area 2 full in both: v6.8+ tries offset 1 (area 3) in the newest pool, full, then the boot pool's
  // area 3 (slot 768); v6.6 wraps to the newest pool's area 0 (slot 0)
  { name: 'area 2 full everywhere, newest area 3 full', cpu: 2, full: [[1, 2], [1, 3], [0, 2]], size: SLOT, areaMajor: BASE0 + 768 * SLOT, poolMajor: BASE1 },
  // a newer pool with only 2 areas (256 slots each): CPU 3 -> its area 1; full, so v6.8+ tries the
  // boot pool's area 3 next (slot 768), v6.6 the newer pool's area 0 (slot 0)
  { name: 'newer pool with fewer areas', cpu: 3, nareas1: 2, full: [[1, 1]], size: SLOT, areaMajor: BASE0 + 768 * SLOT, poolMajor: BASE1 },
  // from offset 2 on, the 2-area pool is skipped: CPU 3, its area 1 and 0 full and the boot pool's 3
  // and 0 full: v6.8+ i=2 -> boot area 1 (slot 256); v6.6 boot pool from area 3: 3, 0, then 1
  { name: 'pools with no more than i areas are skipped', cpu: 3, nareas1: 2, full: [[1, 1], [1, 0], [0, 3], [0, 0]], size: SLOT, areaMajor: BASE0 + 256 * SLOT, poolMajor: BASE0 + 256 * SLOT },
  // the next-fit cursor: a 3-slot request first takes 512..514 (v6.8+: boot area 2) or 384..386
  // (v6.6: newer area 3), so the next request lands at 515 or 387
  { name: 'cursor after an earlier request', cpu: 2, full: [[1, 2]], before: 3 * SLOT - 100, size: SLOT, areaMajor: BASE0 + 515 * SLOT, poolMajor: BASE1 + 387 * SLOT },
];

describe('swiotlb: search order with two pools (v6.6 pool-major vs v6.8+ area-major)', () => {
  for (const v of vectors) {
    it(v.name, () => {
      const got: Record<string, number> = {};
      for (const order of ['area-major', 'pool-major'] as SearchOrder[]) {
        const p = kernelProgram(`order-${order}`, 8, (m: Machine) => {
          const p0 = new io_tlb_pool(BASE0, 1024, 4);
          const p1 = new io_tlb_pool(BASE1, 512, v.nareas1 ?? 4);
          p0.attach(m, 'boot');
          p1.attach(m, 'newer');
          const mem = new io_tlb_mem(p0, 4096);
          mem.add_pool(p1);
          mem.searchOrder = order;
          for (const [pi, a] of v.full ?? []) fill(pi === 0 ? p0 : p1, a);
          const dev = new device(m, 0, { name: 'dev' });
          m.kthread('t', v.cpu, function* (cur: Task) {
            if (v.before !== undefined) {
              // lands in the boot pool's area 2 at 512 in both orders when the newer area 2 is full
              const r0 = new BounceRef();
              const s0 = yield* swiotlb_find_in_pools(cur, dev, mem, mem.pools, 0, v.before, 0, r0);
              expect([r0.pool === p0 ? 'boot' : 'newer', s0]).to.deep.equal(order === 'area-major' ? ['boot', 512] : ['newer', 384]);
            }
            const ref = new BounceRef();
            const slot = yield* swiotlb_find_in_pools(cur, dev, mem, mem.pools, 0, v.size, 0, ref);
            got[order] = slot < 0 ? -1 : ref.pool!.start + slot * SLOT;
          });
        });
        const r = runIteration(p, { iteration: 0 });
        expect(r.findings).to.deep.equal([]);
      }
      expect(got).to.deep.equal({ 'area-major': v.areaMajor, 'pool-major': v.poolMajor });
    });
  }

  it('end to end with the upstream design: the worker pool is searched first; the two orders part when its CPU area is full', () => {
    const got: Record<string, { slot: number; pool: 'boot' | 'grown'; growAreas: number }> = {};
    const SZ = 64 * 1024; // 32 slots, page aligned
    for (const searchOrder of ['area-major', 'pool-major'] as SearchOrder[]) {
      const img = mm_prepare({ memory: 256 * MIB });
      const sw = swiotlb_prepare(img, { cpus: 4, size: 1 * MIB, policy: 'upstream', searchOrder });
      const p = memProgram(`order-e2e-${searchOrder}`, { image: img, cpus: 4 }, (m) => {
        dma_init(m, { swiotlb: sw });
        const dev = device_register(m, { name: 'nvme0' });
        m.kthread('io', 0, function* (cur: Task) {
          const mem = swiotlb_state(m).mem;
          const boot: number[] = [];
          // CPU 0 fills the boot pool: area 0, then (offset 1) area 1, 2, 3: mapping k at slot 32k
          for (let k = 0; k < 16; k++) {
            const a = yield* swiotlb_map(cur, dev, 0x2000000 + k * SZ, SZ, DMA_TO_DEVICE, 0);
            expect(a).to.equal(mem.defpool.start + 32 * k * SLOT);
            boot.push(a);
          }
          yield* swiotlb_map(cur, dev, 0x2000000 + 16 * SZ, SZ, DMA_TO_DEVICE, 0); // miss: transient + worker
          yield* msleep(cur, 5);
          expect(mem.pools.length).to.equal(2);
          const grown = mem.pools[0];
          // free mapping 9 (slots 288..319, area 2 of the boot pool)
          yield* swiotlb_tbl_unmap_single(cur, dev, boot[9], SZ, DMA_TO_DEVICE, 0);
          yield* migrate_task(cur, 2);
          // CPU 2: the grown pool's area 2 (slots 256..383) takes four, in both orders
          for (let k = 0; k < 4; k++) {
            const a = yield* swiotlb_map(cur, dev, 0x3000000 + k * SZ, SZ, DMA_TO_DEVICE, 0);
            expect(a).to.equal(grown.start + (256 + 32 * k) * SLOT);
          }
          const a = yield* swiotlb_map(cur, dev, 0x3000000 + 4 * SZ, SZ, DMA_TO_DEVICE, 0);
          const inBoot = mem.defpool.contains(a);
          got[searchOrder] = { slot: (a - (inBoot ? mem.defpool.start : grown.start)) / SLOT, pool: inBoot ? 'boot' : 'grown', growAreas: grown.nareas };
        });
      });
      const r = runIteration(p, { iteration: 0 });
      expect(r.findings.map((f) => f.headline)).to.deep.equal([]);
    }
    // area-major: area 2 of the boot pool (the freed run at 288); pool-major: the grown pool's area 3 (384)
    expect(got).to.deep.equal({ 'area-major': { slot: 288, pool: 'boot', growAreas: 4 }, 'pool-major': { slot: 384, pool: 'grown', growAreas: 4 } });
  });
});
