/**
 * The per-mapping designs (rfc-dynamic, v2-list, rbtree): the index lock flavour (spin_lock is
 * the bug: lockdep's inconsistent lock state, and a real deadlock when the completion interrupt
 * lands on the CPU holding it), the blocking GFP behind DMA_ATTR_MAY_SLEEP, the CoCo hypercalls a
 * per-mapping buffer costs, and the lookup cost of each index against the live buffer count.
 */
import { expect } from 'chai';
import { hunt, runIteration, type Program, type RunResult } from '../../scheduler';
import { GFP_KERNEL } from '../../lib/kernel/gfp';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import type { Machine } from '../../lib/kernel/machine';
import { DEFINE_SPINLOCK, spin_lock, spin_unlock } from '../../lib/kernel/spinlock';
import type { Task } from '../../lib/kernel/task';
import { alloc_pages, MIB, mm_prepare, page_to_phys, type CocoKind } from '../../lib/mm';
import { DMA_ATTR_MAY_SLEEP, DMA_ATTR_NO_WARN, DMA_BIDIRECTIONAL, DMA_MAPPING_ERROR, DMA_TO_DEVICE } from '../../lib/dma/attrs';
import type { device } from '../../lib/dma/device';
import { dma_init } from '../../lib/dma/init';
import { device_register } from '../../lib/dma/state';
import { swiotlb_find_pool, swiotlb_map, swiotlb_tbl_map_single, swiotlb_tbl_unmap_single } from '../../lib/dma/swiotlb/map';
import type { PolicySpec } from '../../lib/dma/swiotlb/policy';
import { DynBufferPolicy, type DynDeviceIndex } from '../../lib/dma/swiotlb/policies/dyn-buffer';
import { mapleLevels } from '../../lib/dma/swiotlb/policies/rfc-dynamic';
import { swiotlb_prepare } from '../../lib/dma/swiotlb/setup';
import { swiotlb_policy } from '../../lib/dma/swiotlb/policy';
import { designSpec } from '../support/swiotlb-designs';
import { swiotlb_state } from '../../lib/dma/swiotlb/state';
import { memProgram } from '../support/memory';

const KIB = 1024;
const kinds = (r: { findings: { kind: string }[] }) => r.findings.map((f) => f.kind);

interface Opts {
  policy: string | PolicySpec;
  cpus?: number;
  coco?: CocoKind;
  memory?: number;
}

/** A machine with a 1 MiB pool of `policy` and one device; `body` runs as a kthread on CPU 0. */
function prog(name: string, o: Opts, build: (m: Machine, dev: device) => void): Program {
  const image = mm_prepare({ memory: o.memory ?? 256 * MIB });
  // v2 and the rbtree built on it are off without swiotlb=dynamic (v2 5/7): these tests boot with it
  const policy = typeof o.policy === 'string' ? designSpec(o.policy) : o.policy.name !== 'rfc-dynamic' && o.policy.dynamic === undefined ? { ...o.policy, dynamic: true } : o.policy;
  const sw = swiotlb_prepare(image, { cpus: o.cpus ?? 2, size: MIB, policy, cc: o.coco !== undefined && o.coco !== 'none' });
  return memProgram(name, { image, cpus: o.cpus ?? 2, coco: o.coco }, (m) => {
    dma_init(m, { swiotlb: sw });
    build(m, device_register(m, { name: 'nvme0' }));
  });
}

/**
 * Take the whole boot pool with 256 KiB mappings, so what follows gets dynamic buffers. Each asks
 * for page alignment (alloc_align_mask 0xfff, as dma-iommu would pass a granule), which
 * swiotlb_dyn_map refuses, so they go to the pool even with the patches' dynamic-first order.
 */
function* fillPool(cur: Task, m: Machine, dev: device): Generator<unknown, number[], unknown> {
  const st = swiotlb_state(m);
  const pfn = yield* alloc_pages(cur, GFP_KERNEL, 9);
  const base = page_to_phys(m, pfn);
  const held: number[] = [];
  for (let i = 0; i < 8; i++) {
    const tlb = yield* swiotlb_tbl_map_single(cur, dev, base, 256 * KIB, 0xfff, DMA_TO_DEVICE, DMA_ATTR_NO_WARN);
    if (tlb === DMA_MAPPING_ERROR) break;
    if (!st.mem.defpool.contains(tlb)) {
      yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 256 * KIB, DMA_TO_DEVICE, 0);
      break;
    }
    held.push(tlb);
  }
  expect(st.mem.defpool.used()).to.equal(st.mem.defpool.nslabs);
  return held;
}

function* emptyPool(cur: Task, dev: device, held: number[]): Generator<unknown, void, unknown> {
  for (const tlb of held) yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 256 * KIB, DMA_TO_DEVICE, 0);
}

/**
 * The completion pattern on CPU 0: a task maps (pool full, so each mapping gets a dynamic
 * buffer), hands it to the "device", whose interrupt on CPU 0 unmaps it in hardirq context.
 */
function completionProgram(name: string, policy: string | PolicySpec, maps = 6): Program {
  return prog(name, { policy }, (m, dev) => {
    const done: number[] = [];
    const line = request_irq(m, 0, 'nvme0q0', function* (cur) {
      while (done.length > 0) yield* swiotlb_tbl_unmap_single(cur, dev, done.shift()!, 8 * KIB, DMA_TO_DEVICE, 0);
    });
    m.kthread('io', 0, function* (cur) {
      const held = yield* fillPool(cur, m, dev);
      const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 2));
      for (let i = 0; i < maps; i++) {
        const tlb = yield* swiotlb_map(cur, dev, buf, 8 * KIB, DMA_TO_DEVICE, 0);
        if (tlb === DMA_MAPPING_ERROR) continue;
        done.push(tlb);
        yield* raise_irq(cur, line);
        yield cur.thread.point();
      }
      // the last completions arrive later; drain what the handler has not yet taken
      while (done.length > 0) yield* swiotlb_tbl_unmap_single(cur, dev, done.shift()!, 8 * KIB, DMA_TO_DEVICE, 0);
      yield* emptyPool(cur, dev, held);
    });
  });
}

describe('swiotlb per-mapping designs', () => {
  describe('rfc-dynamic: the index lock flavour', () => {
    it('spin_lock: lockdep reports inconsistent lock state, and a hunt reaches the hardirq-on-holder deadlock', function () {
      this.timeout(120_000);
      const p = completionProgram('rfc-spin_lock', { name: 'rfc-dynamic', indexLock: 'spin_lock' });
      const h = hunt(p, { iterations: 300, seed: 5, strategy: 'random', stopWhenSeen: ['lockdep', 'deadlock'] });
      const ks = h.findings.map((f) => f.kind);
      expect(ks).to.include('lockdep');
      expect(ks).to.include('deadlock');
      const ld = h.findings.find((f) => f.kind === 'lockdep')!;
      expect(ld.headline).to.match(/inconsistent lock state/);
      expect(ld.text).to.match(/dyn_lock/);
      expect(ld.text).to.match(/HARDIRQ/);
    });

    it('spin_lock_irqsave (default, what the RFC did): clean over 200 schedules', function () {
      this.timeout(120_000);
      const policy = swiotlb_policy('rfc-dynamic');
      expect(policy.params).to.deep.include({ indexLock: 'spin_lock_irqsave', maySleepGfp: 'GFP_KERNEL' });
      for (const strategy of ['random', 'pct'] as const) {
        const h = hunt(completionProgram('rfc-irqsave', 'rfc-dynamic'), { iterations: 100, seed: 5, strategy, stopAtFirst: false });
        expect(h.findings.map((f) => f.headline), strategy).to.deep.equal([]);
        expect(h.schedulesRun).to.equal(100);
        expect(h.totals.counters?.['swiotlb.dyn_allocs']).to.be.greaterThan(100);
        expect(h.totals.counters?.['swiotlb.dyn_frees']).to.equal(h.totals.counters?.['swiotlb.dyn_allocs']);
        expect(h.totals.counters?.['swiotlb.maple_node_allocs']).to.equal(h.totals.counters?.['swiotlb.dyn_allocs']);
      }
    });

    it('v2-list and rbtree under dma_io_tlb_lock (irqsave) are clean too', function () {
      this.timeout(60_000);
      for (const policy of ['v2-list', 'rbtree']) {
        const h = hunt(completionProgram(`${policy}-irq`, policy), { iterations: 60, seed: 9, strategy: 'random', stopAtFirst: false });
        expect(h.findings.map((f) => f.headline), policy).to.deep.equal([]);
        expect(h.totals.counters?.['swiotlb.dyn_allocs'], policy).to.be.greaterThan(60);
      }
    });

    it('rejects unknown parameters and bad values', () => {
      expect(() => swiotlb_policy({ name: 'rfc-dynamic', indexLock: 'mutex' })).to.throw(/indexLock/);
      expect(() => swiotlb_policy({ name: 'v2-list', maySleepGfp: 'GFP_ATOMIC' })).to.throw(/maySleepGfp/);
      expect(() => swiotlb_policy({ name: 'rbtree', fanout: 3 })).to.throw(/unknown parameter 'fanout'/);
      expect(swiotlb_policy('v2-list').params).to.deep.include({ maySleepGfp: 'GFP_NOIO' });
    });
  });

  describe('DMA_ATTR_MAY_SLEEP', () => {
    /** One MAY_SLEEP map past the full pool, from process context or under a spinlock. */
    function maySleep(policy: string, atomic: boolean, attrs = DMA_ATTR_MAY_SLEEP): RunResult {
      const p = prog(`may-sleep-${policy}-${atomic}`, { policy }, (m, dev) => {
        const lock = DEFINE_SPINLOCK(m, 'drv_lock');
        m.kthread('drm', 0, function* (cur) {
          const held = yield* fillPool(cur, m, dev);
          const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 4));
          if (atomic) yield* spin_lock(cur, lock);
          const tlb = yield* swiotlb_map(cur, dev, buf, 64 * KIB, DMA_BIDIRECTIONAL, attrs);
          if (atomic) yield* spin_unlock(cur, lock);
          expect(tlb).to.not.equal(DMA_MAPPING_ERROR);
          yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 64 * KIB, DMA_BIDIRECTIONAL, 0);
          yield* emptyPool(cur, dev, held);
        });
      });
      return runIteration(p, { iteration: 0 });
    }

    const gfpAllocs = (r: RunResult, cls: string) =>
      Object.entries(r.metrics.counters ?? {})
        .filter(([k]) => k.startsWith('mm.alloc.') && k.endsWith(`.${cls}`))
        .reduce((a, [, v]) => a + v, 0);

    it('the RFC allocates GFP_KERNEL, v2 and rbtree GFP_NOIO, without it GFP_NOWAIT', () => {
      const rfc = maySleep('rfc-dynamic', false);
      const v2 = maySleep('v2-list', false);
      const rb = maySleep('rbtree', false);
      const nowait = maySleep('rfc-dynamic', false, 0);
      for (const r of [rfc, v2, rb, nowait]) expect(r.findings).to.deep.equal([]);
      expect(gfpAllocs(rfc, 'GFP_KERNEL')).to.be.greaterThan(gfpAllocs(nowait, 'GFP_KERNEL'));
      expect(gfpAllocs(rfc, 'GFP_NOIO')).to.equal(0);
      expect(gfpAllocs(v2, 'GFP_NOIO')).to.be.greaterThan(0);
      expect(gfpAllocs(rb, 'GFP_NOIO')).to.be.greaterThan(0);
      expect(gfpAllocs(nowait, 'GFP_NOWAIT')).to.be.greaterThan(0);
    });

    it('from atomic context: might_sleep with the RFC (GFP_KERNEL) and with v2 (GFP_NOIO still blocks); GFP_NOWAIT is clean', () => {
      expect(kinds(maySleep('rfc-dynamic', true))).to.include('might_sleep');
      expect(kinds(maySleep('v2-list', true))).to.include('might_sleep');
      expect(maySleep('rfc-dynamic', true, 0).findings).to.deep.equal([]);
    });
  });

  describe('CoCo guest', () => {
    function coco(policy: string, attrs: number, n: number): RunResult {
      const p = prog(`coco-${policy}-${attrs}`, { policy, coco: 'tdx' }, (m, dev) => {
        m.kthread('io', 0, function* (cur) {
          const held = yield* fillPool(cur, m, dev);
          const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 2));
          for (let i = 0; i < n; i++) {
            const tlb = yield* swiotlb_map(cur, dev, buf, 16 * KIB, DMA_TO_DEVICE, attrs);
            expect(tlb).to.not.equal(DMA_MAPPING_ERROR);
            yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 16 * KIB, DMA_TO_DEVICE, 0);
          }
          yield* emptyPool(cur, dev, held);
        });
      });
      return runIteration(p, { iteration: 0 });
    }

    it('a blocking per-mapping buffer costs hypercalls on every map and unmap (Kelley); an atomic one comes from the pre-decrypted atomic pool', () => {
      const hc = (r: RunResult) => r.metrics.counters?.['mm.hypercalls'] ?? 0;
      const base = coco('v2-list', DMA_ATTR_MAY_SLEEP, 0);
      const four = coco('v2-list', DMA_ATTR_MAY_SLEEP, 4);
      const eight = coco('v2-list', DMA_ATTR_MAY_SLEEP, 8);
      for (const r of [base, four, eight]) expect(r.findings).to.deep.equal([]);
      const perMap = (hc(eight) - hc(four)) / 4;
      expect(perMap).to.be.at.least(2); // dma_set_decrypted on map, dma_set_encrypted on unmap
      expect(hc(four) - hc(base)).to.equal(4 * perMap);
      expect(four.metrics.counters?.['mm.tlb_flush_kernel'] ?? 0).to.be.greaterThan(base.metrics.counters?.['mm.tlb_flush_kernel'] ?? 0);
      const atomic = coco('v2-list', 0, 8);
      expect(atomic.findings).to.deep.equal([]);
      expect(hc(atomic)).to.equal(hc(base));
      expect(atomic.metrics.counters?.['swiotlb.dyn_allocs']).to.equal(8);
    });
  });

  it('CoCo: unmapping a decrypted per-mapping buffer from the completion interrupt re-encrypts in hardirq (might_sleep)', () => {
    const p = prog('coco-irq-unmap', { policy: 'v2-list', coco: 'tdx' }, (m, dev) => {
      let tlb = -1;
      const line = request_irq(m, 0, 'nvme0q0', function* (cur) {
        if (tlb >= 0) yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 16 * KIB, DMA_TO_DEVICE, 0);
        tlb = -1;
      });
      m.kthread('io', 0, function* (cur) {
        yield* fillPool(cur, m, dev);
        const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 2));
        tlb = yield* swiotlb_map(cur, dev, buf, 16 * KIB, DMA_TO_DEVICE, DMA_ATTR_MAY_SLEEP);
        yield* raise_irq(cur, line);
        yield cur.thread.point();
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(kinds(r)).to.include('might_sleep');
  });

  it('dynamicFirst (the patches\' order): page-sized unaligned mappings go dynamic at once, small or min_align ones to the pool', () => {
    const where: string[] = [];
    const p = prog('dyn-first', { policy: { name: 'rbtree', dynamicFirst: true } }, (m, dev) => {
      const nvme = device_register(m, { name: 'nvme1', minAlignMask: 0xfff });
      m.kthread('io', 0, function* (cur) {
        const st = swiotlb_state(m);
        const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 4));
        for (const [d, size] of [[dev, 512], [dev, 8 * KIB], [nvme, 8 * KIB]] as const) {
          const tlb = yield* swiotlb_map(cur, d, buf, size, DMA_TO_DEVICE, 0);
          where.push(`${d.name}/${size}:${st.mem.defpool.contains(tlb) ? 'pool' : 'dynamic'}`);
          yield* swiotlb_tbl_unmap_single(cur, d, tlb, size, DMA_TO_DEVICE, 0);
        }
      });
    });
    expect(runIteration(p, { iteration: 0 }).findings).to.deep.equal([]);
    expect(where.slice(-3)).to.deep.equal(['nvme0/512:pool', 'nvme0/8192:dynamic', 'nvme1/8192:pool']);
  });

  describe('index lookup cost against live buffers', () => {
    /** n live dynamic buffers: steps to look up the oldest, the same again, then each once. */
    function steps(policy: string, n: number): { first: number; again: number; each: number[]; dynBytes: number } {
      const out = { first: 0, again: 0, each: [] as number[], dynBytes: 0 };
      const p = prog(`steps-${policy}-${n}`, { policy, memory: 512 * MIB }, (m, dev) => {
        m.kthread('io', 0, function* (cur) {
          const held = yield* fillPool(cur, m, dev);
          const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 0));
          const tlbs: number[] = [];
          for (let i = 0; i < n; i++) {
            const tlb = yield* swiotlb_map(cur, dev, buf, 4 * KIB, DMA_TO_DEVICE, 0);
            expect(tlb).to.not.equal(DMA_MAPPING_ERROR);
            tlbs.push(tlb);
          }
          const pol = swiotlb_state(m).policy as DynBufferPolicy;
          out.dynBytes = pol.liveBytes;
          const ix = dev.swiotlbIndex as DynDeviceIndex;
          // the oldest buffer twice in a row (a sync, then the unmap)
          yield* swiotlb_find_pool(cur, dev, tlbs[0]);
          out.first = ix.index.lastSteps;
          yield* swiotlb_find_pool(cur, dev, tlbs[0]);
          out.again = ix.index.lastSteps;
          // then every buffer once, in a scattered order (7919 is prime, n a power of two)
          for (let i = 0; i < n; i++) {
            expect(yield* swiotlb_find_pool(cur, dev, tlbs[(i * 7919) % n])).to.not.equal(null);
            out.each.push(ix.index.lastSteps);
          }
          for (const tlb of tlbs) yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 4 * KIB, DMA_TO_DEVICE, 0);
          yield* emptyPool(cur, dev, held);
          expect(pol.liveBuffers).to.equal(0);
        });
      });
      const r = runIteration(p, { iteration: 0 });
      expect(r.findings).to.deep.equal([]);
      return out;
    }
    const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

    it('v2-list: a lookup walks to the buffer (steps grow with the live count); MRU makes a hot buffer one step', () => {
      const s32 = steps('v2-list', 32);
      const s256 = steps('v2-list', 256);
      // the oldest buffer is at the tail: a full walk
      expect(s32.first).to.equal(32);
      expect(s256.first).to.equal(256);
      expect(avg(s256.each)).to.be.greaterThan(4 * avg(s32.each));
      // looked up once, it moved to the front
      expect(s256.again).to.equal(1);
      expect(s32.dynBytes).to.equal(32 * 4096);
    });

    it('rbtree: steps ~ log2 n (at most 2 log2(n + 1)); rfc-dynamic: ceil(log16 n) maple levels', () => {
      for (const n of [32, 256, 1024] as const) {
        const rb = steps('rbtree', n);
        expect(Math.max(...rb.each), `n=${n}`).to.be.at.most(2 * Math.log2(n + 1));
        expect(avg(rb.each), `n=${n}`).to.be.within(Math.log2(n) - 2, Math.log2(n) + 1);
        const rfc = steps('rfc-dynamic', n);
        expect(new Set(rfc.each)).to.deep.equal(new Set([mapleLevels(n)]));
      }
      expect([1, 16, 17, 256, 257, 4096].map(mapleLevels)).to.deep.equal([1, 1, 2, 2, 3, 3]);
    });

    it('an address that never bounced costs a miss: the whole list (v2-list) or one tree descent (rbtree); hits and misses counted apart with their ns', () => {
      const got: Record<string, Record<string, number>> = {};
      let pooled = 0;
      for (const policy of ['v2-list', 'rbtree']) {
        const p = prog(`miss-${policy}`, { policy, memory: 512 * MIB }, (m, dev) => {
          m.kthread('io', 0, function* (cur) {
            const held = yield* fillPool(cur, m, dev);
            pooled = held.length;
            const buf = page_to_phys(m, yield* alloc_pages(cur, GFP_KERNEL, 0));
            const tlbs: number[] = [];
            for (let i = 0; i < 64; i++) tlbs.push(yield* swiotlb_map(cur, dev, buf, 4 * KIB, DMA_TO_DEVICE, 0));
            // is_swiotlb_buffer of a buffer that was mapped without bouncing (its own address)
            expect(yield* swiotlb_find_pool(cur, dev, buf)).to.equal(null);
            expect(yield* swiotlb_find_pool(cur, dev, tlbs[5])).to.not.equal(null);
            for (const tlb of tlbs) yield* swiotlb_tbl_unmap_single(cur, dev, tlb, 4 * KIB, DMA_TO_DEVICE, 0);
            yield* emptyPool(cur, dev, held);
          });
        });
        const r = runIteration(p, { iteration: 0 });
        expect(r.findings).to.deep.equal([]);
        got[policy] = { ...r.metrics.counters, ...r.metrics.peaks };
      }
      const l = got['v2-list'];
      const t = got.rbtree;
      expect(l['swiotlb.index_len_peak']).to.equal(64);
      expect(t['swiotlb.index_len_peak']).to.equal(64);
      // one miss, walked over all 64 list nodes; the tree stops at a leaf
      expect(l['swiotlb.index_misses']).to.equal(1);
      expect(l['swiotlb.index_miss_steps']).to.equal(64);
      expect(t['swiotlb.index_misses']).to.equal(1);
      expect(t['swiotlb.index_miss_steps']).to.be.within(1, 2 * Math.log2(65));
      // swiotlb_find_pool: the miss, and the hits: one lookup, every unmap's (the pool buffers';
      // fillPool's last probe is refused a dynamic buffer by its alignment), each dynamic unmap
      // walking twice (its lookup and swiotlb_dyn_unmap's)
      for (const c of [l, t]) {
        expect(c['swiotlb.find_misses']).to.equal(1);
        expect(c['swiotlb.find_hits']).to.equal(1 + 64 + pooled);
        expect(c['swiotlb.index_hits']).to.equal(1 + 64 * 2);
      }
      expect(l['swiotlb.find_miss_ns']).to.be.greaterThan(10 * t['swiotlb.find_miss_ns']);
    });

    it('figures: lookup steps at 32 / 256 / 4096 live buffers, list vs rbtree vs maple', function () {
      this.timeout(120_000);
      const rows: string[] = [];
      for (const n of [32, 256, 4096]) {
        const l = steps('v2-list', n);
        const rb = steps('rbtree', n);
        const mt = steps('rfc-dynamic', n);
        rows.push(`n=${n}: v2-list avg ${avg(l.each).toFixed(1)} max ${Math.max(...l.each)} (oldest ${l.first}, again ${l.again}); rbtree avg ${avg(rb.each).toFixed(1)} max ${Math.max(...rb.each)}; maple ${mt.each[0]}`);
        expect(avg(rb.each)).to.be.lessThan(avg(l.each));
      }
      if (process.env.SWIOTLB_FIGURES) console.log(rows.join('\n'));
    });
  });
});
