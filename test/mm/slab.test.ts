import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { __GFP_NOWARN, GFP_ATOMIC, GFP_KERNEL } from '../../lib/kernel/gfp';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { READ_ONCE } from '../../lib/kernel/object';
import { kfree_rcu, rcu_barrier } from '../../lib/kernel/rcu';
import { DEFINE_SPINLOCK, spin_lock, spin_unlock } from '../../lib/kernel/spinlock';
import { MIB, mm } from '../../lib/mm';
import {
  KMALLOC_MAX_CACHE_SIZE,
  PAGE_OFFSET,
  ZERO_SIZE_PTR,
  calculate_order,
  kfree,
  kmalloc,
  kmalloc_array,
  kmalloc_cache,
  kmalloc_obj,
  kmem_cache_alloc,
  kmem_cache_create,
  kmem_cache_free,
  kobject_addr,
  ksize,
  slab_pages,
  slabinfo,
  kzalloc,
} from '../../lib/mm/slab';
import { memProgram } from '../support/memory';

const kinds = (r: RunResult) => r.findings.map((f) => f.kind);
const once = (p: ReturnType<typeof memProgram>) => runIteration(p, { iteration: 0 });
const SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

describe('mm: slab (kmalloc)', () => {
  it('calculate_order gives the orders /proc/slabinfo shows (4K pages)', () => {
    const two = SIZES.map((s) => calculate_order(s, 4096, 2));
    expect(two).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3]);
    const eight = SIZES.map((s) => calculate_order(s, 4096, 8));
    expect(eight).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3]);
  });

  it('serves each size from its size class, at distinct aligned addresses, and ksize says the class', () => {
    const out: { size: number; addr: number; ksize: number }[] = [];
    const p = memProgram('slab-classes', { memory: 64 * MIB }, (m) => {
      out.length = 0; // calibration runs come first: keep the last run's
      m.kthread('t', 0, function* (cur) {
        for (const size of [1, 8, 9, 16, 17, 33, 65, 96, 97, 129, 193, 257, 513, 1025, 2049, 4097, 8192]) {
          for (let i = 0; i < 3; i++) {
            const addr = yield* kmalloc(cur, size, GFP_KERNEL);
            out.push({ size, addr, ksize: ksize(m, addr) });
          }
        }
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]);
    expect(new Set(out.map((o) => o.addr)).size).to.equal(out.length);
    for (const o of out) {
      const cls = SIZES.find((s) => o.size <= s)!;
      expect(o.addr, `size ${o.size}`).to.be.greaterThan(PAGE_OFFSET);
      expect(o.ksize, `size ${o.size}`).to.equal(cls);
      // Power-of-two classes are naturally aligned; 96 and 192 to 32 and 64.
      const align = cls === 96 ? 32 : cls === 192 ? 64 : cls;
      expect((o.addr - PAGE_OFFSET) % align, `size ${o.size}`).to.equal(0);
    }
  });

  it('gives empty slabs back: after freeing everything only one empty slab per cache remains', () => {
    const seen: { before: number; during: number; after: number; kept: number; info: ReturnType<typeof slabinfo> } = { before: 0, during: 0, after: 0, kept: 0, info: [] };
    const p = memProgram('slab-free-all', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        seen.before = mm(m).nrFree();
        const addrs: number[] = [];
        for (let i = 0; i < 300; i++) for (const s of [32, 512, 4096, 20000]) addrs.push(yield* kmalloc(cur, s, GFP_KERNEL));
        seen.during = mm(m).nrFree();
        seen.info = slabinfo(m);
        // Free in an interleaved order so partial slabs come and go.
        for (let i = 0; i < addrs.length; i += 2) yield* kfree(cur, addrs[i]);
        for (let i = 1; i < addrs.length; i += 2) yield* kfree(cur, addrs[i]);
        seen.after = mm(m).nrFree();
        seen.kept = slab_pages(m);
        for (const c of slabinfo(m)) expect(c.active_objs, c.name).to.equal(0);
        expect(mm(m).phys.checkInvariants()).to.equal(null);
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]);
    expect(seen.during).to.be.lessThan(seen.before - 300 * 8);
    const k32 = seen.info.find((c) => c.name === 'kmalloc-32')!;
    expect(k32).to.include({ objperslab: 128, pagesperslab: 1, active_objs: 300, num_slabs: 3 });
    const k4k = seen.info.find((c) => c.name === 'kmalloc-4k')!;
    expect(k4k).to.include({ objperslab: 8, pagesperslab: 8 });
    // One empty slab each of kmalloc-32 (1 page), -512 (2 pages), -4k (8 pages); large blocks all back.
    expect(seen.kept).to.equal(1 + 2 + 8);
    expect(seen.after + seen.kept).to.equal(seen.before);
    expect(r.metrics.counters?.['mm.kmalloc']).to.equal(1200);
    expect(r.metrics.counters?.['mm.kmalloc_large']).to.equal(300);
  });

  it('GFP_ATOMIC from a hardirq handler works without might_sleep', () => {
    const got: number[] = [];
    const p = memProgram('slab-atomic-irq', { memory: 64 * MIB }, (m) => {
      got.length = 0;
      const line = request_irq(m, 0, 'nic_irq', function* (cur) {
        for (const s of [64, 256, 2048, 100000]) got.push(yield* kmalloc(cur, s, GFP_ATOMIC));
      });
      m.kthread('t', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.point();
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]);
    expect(got).to.have.length(4);
    for (const a of got) expect(a).to.be.greaterThan(PAGE_OFFSET);
  });

  it('GFP_KERNEL under a spinlock splats (might_alloc) even when the cache has a free object', () => {
    let slabsBefore = 0;
    let slabsAfter = 0;
    const p = memProgram('slab-kernel-atomic', { memory: 64 * MIB }, (m) => {
      const lock = DEFINE_SPINLOCK(m, 'dev_lock');
      m.kthread('t', 0, function* (cur) {
        const a = yield* kmalloc(cur, 128, GFP_KERNEL); // brings a slab with free objects
        slabsBefore = kmalloc_cache(m, 128).nrSlabs;
        yield* spin_lock(cur, lock);
        const b = yield* kmalloc(cur, 128, GFP_KERNEL);
        yield* spin_unlock(cur, lock);
        slabsAfter = kmalloc_cache(m, 128).nrSlabs;
        yield* kfree(cur, a);
        yield* kfree(cur, b);
      });
    });
    const r = once(p);
    expect(kinds(r)).to.include('might_sleep');
    const f = r.findings.find((x) => x.kind === 'might_sleep')!;
    expect(f.fingerprint).to.equal('might_sleep:might_alloc@__kmalloc');
    expect(f.text).to.match(/in_atomic\(\): 1, irqs_disabled\(\): 0/);
    expect(slabsAfter).to.equal(slabsBefore); // no new slab: the object came from the free list
  });

  it('kmalloc(0) is ZERO_SIZE_PTR, a negative size is a model error, a huge one fails in the page allocator', () => {
    const got: Record<string, number> = {};
    const p = memProgram('slab-odd-sizes', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        got.zero = yield* kmalloc(cur, 0, GFP_KERNEL);
        yield* kfree(cur, got.zero); // ZERO_OR_NULL_PTR: a no-op
        yield* kfree(cur, 0);
        got.huge = yield* kmalloc(cur, 64 * MIB, GFP_KERNEL | __GFP_NOWARN);
        got.max = yield* kmalloc(cur, KMALLOC_MAX_CACHE_SIZE + 1, GFP_KERNEL);
        got.ksizeMax = ksize(m, got.max);
        got.overflow = yield* kmalloc_array(cur, 2 ** 40, 2 ** 40, GFP_KERNEL);
        got.z = yield* kzalloc(cur, 40, GFP_KERNEL);
        got.zsize = ksize(m, got.z);
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]);
    expect(got).to.deep.include({ zero: ZERO_SIZE_PTR, huge: 0, ksizeMax: 16384, overflow: 0, zsize: 64 });
    // Without __GFP_NOWARN the order-14 request is the page allocator's warning.
    const loud = memProgram('slab-huge-loud', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        expect(yield* kmalloc(cur, 64 * MIB, GFP_KERNEL)).to.equal(0);
      });
    });
    expect(kinds(once(loud))).to.include('alloc_failure');
    const neg = memProgram('slab-negative', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        yield* kmalloc(cur, -1, GFP_KERNEL);
      });
    });
    // the model refusing its caller: a scenario_error placed at the caller (this file)
    const rn = once(neg);
    expect(rn.findings.map((f) => f.kind)).to.deep.equal(['scenario_error']);
    expect(rn.findings[0].text).to.match(/kmalloc: size must be a non-negative integer, got -1/);
    expect(rn.findings[0].text).to.match(/test\/mm\/slab\.test\.ts/);
    const bad = memProgram('slab-bad-free', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        const a = yield* kmalloc(cur, 64, GFP_KERNEL);
        yield* kfree(cur, a + 8);
      });
    });
    const rb = once(bad);
    expect(rb.findings.map((f) => f.kind)).to.deep.equal(['scenario_error']);
    expect(rb.findings[0].text).to.match(/kfree\(ffff8880[0-9a-f]+\) from t at .*not the start of a kmalloc-64 object/);
  });

  it('a new slab tries its order without reclaim first, then falls back to the minimum order', () => {
    const st: Record<string, number> = {};
    const p = memProgram('slab-order-fallback', { memory: 64 * MIB }, (m) => {
      // Fragment memory: every other page allocated (unmovable), so only order-0 blocks are free.
      const phys = mm(m).phys;
      const taken: number[] = [];
      for (const z of phys.zones) for (let pfn = phys.rmqueue(z, 0, 0, 0); pfn >= 0; pfn = phys.rmqueue(z, 0, 0, 0)) taken.push(pfn);
      for (const pfn of taken) if (pfn % 2 === 1) phys.free(pfn, 0);
      m.kthread('t', 0, function* (cur) {
        const a = yield* kmalloc(cur, 4096, GFP_KERNEL);
        const c = kmalloc_cache(m, 4096);
        st.a = a > 0 ? 1 : 0;
        st.order = c.order;
        st.fallbacks = c.orderFallbacks;
        st.pages = slab_pages(m);
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]); // the order-3 attempt is __GFP_NOWARN
    expect(st).to.deep.equal({ a: 1, order: 3, fallbacks: 1, pages: 1 });
  });

  it('kmem_cache_create / alloc / free, and a free to the wrong cache warns', () => {
    const seen: number[] = [];
    const p = memProgram('slab-caches', { memory: 64 * MIB }, (m) => {
      seen.length = 0;
      m.kthread('t', 0, function* (cur) {
        const c = kmem_cache_create(m, 'bio-0', 200);
        const other = kmem_cache_create(m, 'skbuff_head_cache', 232);
        const a = yield* kmem_cache_alloc(cur, c, GFP_KERNEL);
        const b = yield* kmem_cache_alloc(cur, c, GFP_KERNEL);
        seen.push(b - a, c.objects, c.order);
        yield* kmem_cache_free(cur, c, a);
        yield* kmem_cache_free(cur, other, b);
        seen.push(c.activeObjs);
      });
    });
    const r = once(p);
    expect(seen).to.deep.equal([200, 20, 0, 0]); // 200 bytes, 8-aligned; 4096/200 = 20 per slab
    expect(r.findings.map((f) => f.headline)).to.deep.equal(['WARNING at kmem_cache_free: cache_from_obj: Wrong slab cache. skbuff_head_cache but object is from bio-0']);
  });

  it('kmalloc_obj objects live in slab memory: kfree and kfree_rcu give it back, a double free is reported once', () => {
    const st: Record<string, number> = {};
    const p = memProgram('slab-objects', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        const c = kmalloc_cache(m, 64);
        const a = (yield* kmalloc_obj(cur, 'conn', { state: 1, next: 0 }, 64, GFP_KERNEL))!;
        const b = (yield* kmalloc_obj(cur, 'conn', { state: 2, next: 0 }, 64, GFP_KERNEL))!;
        st.addrA = kobject_addr(m, a);
        st.active = c.activeObjs;
        st.state = yield* READ_ONCE(cur, b, 'state');
        yield* kfree(cur, a);
        st.afterKfree = c.activeObjs;
        yield* kfree(cur, a); // double free: the object model reports, the slab frees once
        st.afterDouble = c.activeObjs;
        yield* kfree_rcu(cur, b);
        yield* rcu_barrier(cur);
        st.afterRcu = c.activeObjs;
      });
    });
    const r = once(p);
    expect(st).to.deep.include({ active: 2, state: 2, afterKfree: 1, afterDouble: 1, afterRcu: 0 });
    expect(st.addrA).to.be.greaterThan(PAGE_OFFSET);
    // a plain kfree twice: KASAN's double-free, no RCU involved
    expect(kinds(r)).to.deep.equal(['use_after_free']);
    expect(r.findings[0].headline).to.match(/double.free/i);
  });
});
