/**
 * The `upstream` swiotlb design (CONFIG_SWIOTLB_DYNAMIC as merged, docs/kernel-facts.md §1.9): transient
 * pools on a miss, the dyn_alloc worker's growth pools, RCU-deferred freeing, the CoCo atomic-pool
 * path, and what happens under memory pressure and a sustained burst.
 */
import { expect } from 'chai';
import { runIteration, type Program, type RunResult } from '../../scheduler';
import { DMA_MAPPING_ERROR, DMA_TO_DEVICE, device_register, dma_init, swiotlb_find_pool, swiotlb_map, swiotlb_prepare, swiotlb_state, swiotlb_tbl_unmap_single, type device, type SwiotlbFullInfo, type SwiotlbImage, type io_tlb_pool } from '../../lib/dma';
import { UpstreamPolicy } from '../../lib/dma/swiotlb/policies/upstream';
import { swiotlb_policy } from '../../lib/dma/swiotlb/policy';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import type { Machine } from '../../lib/kernel/machine';
import { msleep } from '../../lib/kernel/sched';
import { spin_lock_irqsave, spin_unlock_irqrestore, DEFINE_SPINLOCK } from '../../lib/kernel/spinlock';
import type { Task } from '../../lib/kernel/task';
import { MIB, MIGRATE_UNMOVABLE, mm, mm_prepare, type CocoKind } from '../../lib/mm';
import { memProgram } from '../support/memory';

const KIB = 1024;
const SZ = 64 * KIB; // 32 slots
const ORIG = 0x2000000; // originals (contents are not tracked: any address will do)

interface World {
  m: Machine;
  dev: device;
}

/** A 4-CPU machine with a 1 MiB boot pool (512 slots in 4 areas of 128) and the given design. */
function program(name: string, o: { policy?: string; coco?: CocoKind; memory?: number; sw?: SwiotlbImage }, body: (w: World) => void): Program {
  const img = mm_prepare({ memory: o.memory ?? 256 * MIB });
  const sw = o.sw ?? swiotlb_prepare(img, { cpus: 4, size: 1 * MIB, policy: o.policy ?? 'upstream', cc: o.coco !== undefined && o.coco !== 'none' });
  return memProgram(name, { image: img, cpus: 4, coco: o.coco }, (m) => {
    dma_init(m, { swiotlb: sw });
    const dev = device_register(m, { name: 'nvme0' });
    body({ m, dev });
  });
}

const counters = (r: RunResult) => r.metrics.counters ?? {};
const peaks = (r: RunResult) => r.metrics.peaks ?? {};
const kinds = (r: RunResult) => r.findings.map((f) => f.kind);

type Where = 'default' | 'transient' | 'grown';

/** Which kind of pool a fresh bounce address is in. */
function where(m: Machine, dev: device, a: number): Where {
  const mem = swiotlb_state(m).mem;
  if (mem.defpool.contains(a)) return 'default';
  if (dev.dma_io_tlb_pools.some((p) => p.contains(a))) return 'transient';
  expect(mem.pools.some((p) => p !== mem.defpool && p.contains(a)), `0x${a.toString(16)} is in no pool`).to.equal(true);
  return 'grown';
}

describe('swiotlb upstream: transient pools and growth', () => {
  it('registers with no parameters and rejects unknown ones', () => {
    expect(swiotlb_policy('upstream')).to.be.instanceOf(UpstreamPolicy);
    expect(() => swiotlb_policy({ name: 'upstream', maxPools: 3 })).to.throw(/unknown parameter 'maxPools'/);
  });

  it('a burst overflowing a 1 MiB pool on 4 CPUs: transient pools first, then the worker pool takes the later maps', () => {
    const seq: Where[] = [];
    const transients: io_tlb_pool[] = [];
    let afterUnmap = { transient: -1, used: -1, pools: 0, allFreed: false };
    const p = program('upstream-burst', {}, ({ m, dev }) => {
      seq.length = 0; // runIteration runs the program once more to calibrate
      transients.length = 0;
      let done = 0;
      for (let c = 0; c < 4; c++) {
        m.kthread(`io${c}`, c, function* (cur: Task) {
          const got: number[] = [];
          for (let i = 0; i < 8; i++) {
            const a = yield* swiotlb_map(cur, dev, ORIG + (c * 8 + i) * SZ, SZ, DMA_TO_DEVICE, 0);
            expect(a).to.not.equal(DMA_MAPPING_ERROR);
            const w = where(m, dev, a);
            seq.push(w);
            if (w === 'transient') transients.push(dev.dma_io_tlb_pools.find((q) => q.contains(a))!);
            got.push(a);
            yield* msleep(cur, 1);
          }
          for (const a of got) yield* swiotlb_tbl_unmap_single(cur, dev, a, SZ, DMA_TO_DEVICE, 0);
          if (++done === 4) {
            yield* msleep(cur, 10); // RCU grace periods and their callbacks
            const mem = swiotlb_state(m).mem;
            afterUnmap = { transient: mem.transient_nslabs, used: mem.total_used, pools: mem.pools.length, allFreed: transients.every((t) => t.freed) };
          }
        });
      }
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings, r.findings.map((f) => f.headline).join('\n')).to.deep.equal([]);
    const c = counters(r);
    // 32 maps of 32 slots: the first 16 fill the boot pool; the 17th misses
    expect(seq.slice(0, 16)).to.deep.equal(new Array(16).fill('default'));
    expect(seq[16]).to.equal('transient');
    const firstGrown = seq.indexOf('grown');
    expect(firstGrown).to.be.greaterThan(16);
    expect(seq.slice(16, firstGrown).every((w) => w === 'transient')).to.equal(true);
    expect(seq.filter((w) => w === 'grown').length).to.be.greaterThan(8);
    expect(c['swiotlb.transient_pools']).to.equal(seq.filter((w) => w === 'transient').length);
    expect(c['swiotlb.grow_pools']).to.be.at.least(1);
    expect(c['swiotlb.grow_bytes']).to.equal(c['swiotlb.grow_pools'] * 1 * MIB); // default_nslabs each
    expect(peaks(r)['swiotlb.transient_peak']).to.be.at.least(32);
    // after the unmaps: transient pools freed by their RCU callbacks; growth pools stay
    expect(afterUnmap).to.deep.equal({ transient: 0, used: 0, pools: 1 + c['swiotlb.grow_pools'], allFreed: true });
    expect(c['swiotlb.lookup_freed'] ?? 0).to.equal(0);
  });

  it('a transient pool is freed only after the grace period, and lookups never return it afterwards', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const hits: { freed: boolean }[] = [];
      let freedAtUnmap = true;
      let freedLater = false;
      let lookupAfter: unknown = 'unset';
      let pool: io_tlb_pool | null = null;
      let addr = -1;
      const p = program('upstream-rcu-free', {}, ({ m, dev }) => {
        hits.length = 0;
        m.kthread('mapper', 0, function* (cur: Task) {
          const got: number[] = [];
          for (let i = 0; i < 16; i++) got.push(yield* swiotlb_map(cur, dev, ORIG + i * SZ, SZ, DMA_TO_DEVICE, 0));
          addr = yield* swiotlb_map(cur, dev, ORIG + 16 * SZ, SZ, DMA_TO_DEVICE, 0);
          pool = dev.dma_io_tlb_pools[0];
          expect(pool.contains(addr)).to.equal(true);
          yield* msleep(cur, 1);
          yield* swiotlb_tbl_unmap_single(cur, dev, addr, SZ, DMA_TO_DEVICE, 0);
          freedAtUnmap = pool.freed;
          yield* msleep(cur, 5);
          freedLater = pool.freed;
          lookupAfter = yield* swiotlb_find_pool(cur, dev, addr);
          for (const a of got) yield* swiotlb_tbl_unmap_single(cur, dev, a, SZ, DMA_TO_DEVICE, 0);
        });
        // another CPU keeps resolving the transient address (as a sync from an IRQ handler would)
        m.kthread('reader', 1, function* (cur: Task) {
          for (let i = 0; i < 400; i++) {
            if (addr >= 0) {
              const ref = yield* swiotlb_find_pool(cur, dev, addr);
              if (ref !== null) hits.push({ freed: ref.pool!.freed });
            }
            yield cur.thread.work(20_000);
            yield cur.thread.point();
          }
        });
      });
      const r = runIteration(p, { iteration: 0, seed, strategy: 'random' });
      expect(r.findings.map((f) => f.headline), `seed ${seed}`).to.deep.equal([]);
      expect(freedAtUnmap, `seed ${seed}: freed before the grace period`).to.equal(false);
      expect(freedLater, `seed ${seed}: RCU callback did not run`).to.equal(true);
      expect(lookupAfter).to.equal(null);
      expect(hits.length, `seed ${seed}: the reader saw the live pool`).to.be.greaterThan(0);
      expect(hits.every((h) => !h.freed), `seed ${seed}: a lookup returned a freed pool`).to.equal(true);
      expect(counters(r)['swiotlb.lookup_freed'] ?? 0).to.equal(0);
    }
  });

  it('CoCo (TDX): a transient pool made in hardirq context comes from the atomic pool, no might_sleep; the worker decrypts its pool', () => {
    let backing = '';
    let mapped = -2;
    let freed = false;
    const p = program('upstream-coco-atomic', { coco: 'tdx' }, ({ m, dev }) => {
      const line = request_irq(m, 1, 'nvme_irq', function* nvme_irq(cur: Task) {
        mapped = yield* swiotlb_map(cur, dev, ORIG + 16 * SZ, SZ, DMA_TO_DEVICE, 0);
        backing = dev.dma_io_tlb_pools[0]?.backing.from ?? 'none';
      });
      m.kthread('io', 1, function* (cur: Task) {
        for (let i = 0; i < 16; i++) yield* swiotlb_map(cur, dev, ORIG + i * SZ, SZ, DMA_TO_DEVICE, 0);
        yield* raise_irq(cur, line);
        yield cur.thread.point();
        yield* msleep(cur, 20); // the dyn_alloc worker runs
        const t = dev.dma_io_tlb_pools[0];
        yield* swiotlb_tbl_unmap_single(cur, dev, mapped, SZ, DMA_TO_DEVICE, 0);
        yield* msleep(cur, 5); // the RCU callback gives the buffer back to the atomic pool (softirq: must not sleep)
        freed = t.freed;
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(freed).to.equal(true);
    expect(kinds(r)).to.not.include('might_sleep');
    expect(r.findings.map((f) => f.headline)).to.deep.equal([]);
    expect(mapped).to.be.greaterThan(0);
    expect(backing).to.equal('atomic_pool');
    const c = counters(r);
    expect(c['swiotlb.transient_pools']).to.equal(1);
    expect(c['dma.atomic_pool.allocs']).to.be.at.least(1);
    expect(c['swiotlb.grow_pools']).to.equal(1);
    // the growth pool is shared with the host once, in the worker: 256 pages of 4 KiB
    expect(c['mm.decrypted_pages']).to.be.at.least(256);
  });

  it('without CoCo, a GFP_NOWAIT transient pool under memory pressure fails: swiotlb buffer is full', () => {
    const full: SwiotlbFullInfo[] = [];
    let res = 0;
    const log: string[] = [];
    const p = program('upstream-pressure', { memory: 64 * MIB }, ({ m, dev }) => {
      full.length = 0;
      m.addHooks({ swiotlbFull: (_cur, info) => full.push(info as SwiotlbFullInfo) });
      // memory pressure as fragmentation: half the memory free in order-2 blocks (kthread stacks
      // still fit), none larger, so no order-4 buffer without compaction, which GFP_NOWAIT may not
      // do and unmovable pages defeat
      const phys = mm(m).phys;
      for (const z of phys.zones) {
        const held: number[] = [];
        for (let pfn; (pfn = phys.rmqueue(z, 0, MIGRATE_UNMOVABLE, 0)) >= 0;) held.push(pfn);
        for (const pfn of held) if (pfn % 8 < 4) phys.free(pfn, 0);
      }
      m.kthread('io', 2, function* (cur: Task) {
        for (let i = 0; i < 16; i++) yield* swiotlb_map(cur, dev, ORIG + i * SZ, SZ, DMA_TO_DEVICE, 0);
        const lock = DEFINE_SPINLOCK(m, 'nvme_queue_lock');
        const flags = yield* spin_lock_irqsave(cur, lock);
        res = yield* swiotlb_map(cur, dev, ORIG + 16 * SZ, SZ, DMA_TO_DEVICE, 0);
        yield* spin_unlock_irqrestore(cur, lock, flags);
        yield* msleep(cur, 50); // the worker's GFP_KERNEL attempt fails too
        log.length = 0;
        log.push(...m.log.lines.map((l) => l.text));
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(res).to.equal(DMA_MAPPING_ERROR);
    expect(full).to.have.length(1);
    expect(full[0]).to.deep.include({ dev: 'nvme0', size: SZ, total: 512, used: 512, policy: 'upstream' });
    const c = counters(r);
    expect(c['swiotlb.transient_failures']).to.equal(1);
    expect(c['swiotlb.full']).to.equal(1);
    expect(log).to.include('software IO TLB: Failed to allocate new pool');
    // the worker's order-8 GFP_KERNEL attempt warns (upstream passes no __GFP_NOWARN there)
    expect(r.findings.map((f) => f.kind).sort()).to.deep.equal(['alloc_failure', 'swiotlb_full']);
    expect(c['swiotlb.grow_failures']).to.equal(1);
    expect(kinds(r)).to.not.include('might_sleep');
    expect(r.findings.find((f) => f.kind === 'swiotlb_full')!.text).to.match(/nvme0: swiotlb buffer is full \(sz: 65536 bytes\), total 512 \(slots\), used 512 \(slots\)/);
  });

  it('grows without bound under a sustained burst, and never shrinks', () => {
    let total = { pools: 0, nslabs: 0, footprint: 0 };
    let afterIdle = 0;
    const p = program('upstream-sustained', { memory: 512 * MIB }, ({ m, dev }) => {
      let done = 0;
      for (let c = 0; c < 4; c++) {
        m.kthread(`io${c}`, c, function* (cur: Task) {
          const got: number[] = [];
          for (let i = 0; i < 64; i++) {
            const a = yield* swiotlb_map(cur, dev, ORIG + (c * 64 + i) * SZ, SZ, DMA_TO_DEVICE, 0);
            if (a !== DMA_MAPPING_ERROR) got.push(a);
            yield* msleep(cur, 1);
          }
          if (++done === 4) {
            const st = swiotlb_state(m);
            total = { pools: st.mem.pools.length, nslabs: st.mem.nslabs, footprint: st.policy.footprint(st) };
          }
          for (const a of got) yield* swiotlb_tbl_unmap_single(cur, dev, a, SZ, DMA_TO_DEVICE, 0);
          yield* msleep(cur, 10);
          const st = swiotlb_state(m);
          afterIdle = st.mem.nslabs;
        });
      }
    });
    const r = runIteration(p, { iteration: 0 });
    const c = counters(r);
    // 256 mappings of 64 KiB = 16 MiB held at once: the pools follow demand, one 1 MiB pool per worker run
    expect(c['swiotlb.full'] ?? 0).to.equal(0);
    expect(total.nslabs * 2048).to.be.at.least(15 * MIB);
    expect(total.pools).to.equal(1 + c['swiotlb.grow_pools']);
    expect(afterIdle).to.equal(total.nslabs);
    console.log(`      sustained burst (upstream): ${total.pools} pools, ${(total.nslabs * 2048) / MIB} MiB of pools, footprint peak ${(peaks(r)['swiotlb.footprint_bytes_peak'] / MIB).toFixed(2)} MiB, ${c['swiotlb.transient_pools']} transient pools, ${c['swiotlb.lookup_steps']} lookup steps`);
  });
});
