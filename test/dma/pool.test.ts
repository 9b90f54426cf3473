import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { ProgramError } from '../../scheduler/errors';
import { GFP_ATOMIC, __GFP_NOWARN } from '../../lib/kernel/gfp';
import { DEFINE_SPINLOCK, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore } from '../../lib/kernel/spinlock';
import { GIB, MIB, mm_prepare, type CocoKind } from '../../lib/mm';
import { device_register, dma_init } from '../../lib/dma';
import { dma_alloc_coherent } from '../../lib/dma/mapping';
import { atomic_pool_default_size, atomic_pools, dma_alloc_from_pool, dma_free_from_pool, type AtomicPools } from '../../lib/dma/pool';
import { memProgram } from '../support/memory';

const counters = (r: RunResult) => r.metrics.counters ?? {};
const KIB = 1024;

describe('dma: coherent atomic pools', () => {
  it('sizing: 128 KiB per GiB of RAM, at least 128 KiB, at most one MAX_PAGE_ORDER block', () => {
    const pages = (bytes: number) => bytes / 4096;
    expect(atomic_pool_default_size(pages(512 * MIB), 4096, 10)).to.equal(128 * KIB);
    expect(atomic_pool_default_size(pages(2 * GIB), 4096, 10)).to.equal(256 * KIB);
    expect(atomic_pool_default_size(pages(8 * GIB), 4096, 10)).to.equal(1024 * KIB);
    expect(atomic_pool_default_size(pages(64 * GIB), 4096, 10)).to.equal(4 * MIB);
    expect(atomic_pool_default_size(pages(1024 * GIB), 4096, 10)).to.equal(4 * MIB);
  });

  it('boot: three pools (kernel, dma32, dma) of coherent_pool= bytes, logged as the kernel does', () => {
    const img = mm_prepare({ memory: 128 * MIB });
    const sizes: string[] = [];
    const log: string[] = [];
    const p = memProgram('pool-boot', { image: img }, (m) => {
      dma_init(m, { coherentPool: 256 * KIB });
      const pools = atomic_pools(m)!;
      sizes.length = 0;
      for (const pool of pools.all) sizes.push(`${pool.name}:${pool.size}:${pool.avail}`);
      log.length = 0;
      log.push(...m.log.lines.map((l) => l.text));
    });
    const r = runIteration(p, { iteration: 0 });
    expect(sizes).to.deep.equal(['atomic_pool_dma:262144:262144', 'atomic_pool_dma32:262144:262144', 'atomic_pool_kernel:262144:262144']);
    expect(log).to.include.members([
      'DMA: preallocated 256 KiB GFP_KERNEL pool for atomic allocations',
      'DMA: preallocated 256 KiB GFP_KERNEL|GFP_DMA pool for atomic allocations',
      'DMA: preallocated 256 KiB GFP_KERNEL|GFP_DMA32 pool for atomic allocations',
    ]);
    expect(r.metrics.peaks?.['dma.atomic_pool.size_bytes']).to.equal(3 * 256 * KIB);
    const bad = memProgram('pool-bad', { image: img }, (m) => dma_init(m, { coherentPool: -5 }));
    expect(() => runIteration(bad, { iteration: 0 })).to.throw(ProgramError, /coherentPool must be a positive number of bytes/);
  });

  it('first fit, order aligned: a 3-page request is aligned to 4 pages; free gives the range back', () => {
    const img = mm_prepare({ memory: 128 * MIB });
    const got: number[] = [];
    const p = memProgram('pool-fit', { image: img }, (m) => {
      dma_init(m, {});
      const dev = device_register(m, { name: 'd' });
      m.kthread('t', 0, function* (cur) {
        got.length = 0;
        const base = atomic_pools(m)!.atomic_pool_kernel!.chunks[0].phys_addr;
        const a = yield* dma_alloc_from_pool(cur, dev, 4096, GFP_ATOMIC);
        const b = yield* dma_alloc_from_pool(cur, dev, 3 * 4096, GFP_ATOMIC);
        const c = yield* dma_alloc_from_pool(cur, dev, 4096, GFP_ATOMIC);
        got.push(a!.phys - base, b!.phys - base, c!.phys - base);
        got.push(Number(yield* dma_free_from_pool(cur, dev, b!.phys, 3 * 4096)));
        got.push(Number(yield* dma_free_from_pool(cur, dev, 100 * MIB, 4096))); // not a pool address
        const d = yield* dma_alloc_from_pool(cur, dev, 2 * 4096, GFP_ATOMIC);
        got.push(d!.phys - base);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    // a at page 0, b at page 4 (aligned to 4), c fills page 1, d (2 pages, aligned to 2) at page 2
    expect(got).to.deep.equal([0, 4 * 4096, 4096, 1, 0, 2 * 4096]);
  });

  /**
   * Allocate `n` x `size` under a spinlock with IRQs off on a one-CPU machine (the worker cannot
   * run until the lock is dropped), then let it run.
   */
  function exhaust(name: string, coco: CocoKind, n: number, size: number, gfp: number, st: { ok: number; pools: AtomicPools | null; callerNs: number }) {
    const img = mm_prepare({ memory: 256 * MIB });
    return memProgram(name, { image: img, coco, cpus: 1 }, (m) => {
      dma_init(m, {});
      const dev = device_register(m, { name: 'virtio0' });
      const lock = DEFINE_SPINLOCK(m, 'vq->lock');
      st.pools = atomic_pools(m);
      m.kthread('drv', 0, function* (cur) {
        st.ok = 0;
        const flags = yield* spin_lock_irqsave(cur, lock);
        const t0 = m.sim.now();
        for (let i = 0; i < n; i++) if ((yield* dma_alloc_from_pool(cur, dev, size, gfp)) !== null) st.ok++;
        st.callerNs = m.sim.now() - t0;
        yield* spin_unlock_irqrestore(cur, lock, flags);
      });
    });
  }

  it('exhaustion WARNs "DMA pool exhausted for <dev>" once every pool is full; the worker then grows the short pools by their size', () => {
    const st = { ok: 0, pools: null as AtomicPools | null, callerNs: 0 };
    // 3 pools x 128 KiB = 24 buffers of 16 KiB; the 25th fails.
    const r = runIteration(exhaust('pool-exhaust', 'none', 25, 16 * KIB, GFP_ATOMIC, st), { iteration: 0 });
    expect(st.ok).to.equal(24);
    const f = r.findings.filter((x) => x.kind === 'dma_debug');
    expect(f.map((x) => x.subkind)).to.deep.equal(['pool_exhausted']);
    expect(f[0].text).to.match(/DMA pool exhausted for virtio0/);
    const c = counters(r);
    expect(c).to.deep.include({ 'dma.atomic_pool.exhausted': 1, 'dma.atomic_pool.allocs': 24, 'dma.atomic_pool.expansions': 3 });
    for (const pool of st.pools!.all) expect(pool.size).to.equal(256 * KIB);
    expect(r.metrics.peaks?.['dma.atomic_pool.size_bytes']).to.equal(3 * 256 * KIB);
    for (const pool of st.pools!.all) expect(pool.chunks[0].addedBy).to.match(/^kworker/);
  });

  it('__GFP_NOWARN: exhaustion is counted but not reported', () => {
    const st = { ok: 0, pools: null as AtomicPools | null, callerNs: 0 };
    const r = runIteration(exhaust('pool-exhaust-nowarn', 'none', 25, 16 * KIB, GFP_ATOMIC | __GFP_NOWARN, st), { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(counters(r)['dma.atomic_pool.exhausted']).to.equal(1);
  });

  it('in a CoCo guest the refill is decrypted by the worker, never by the atomic caller', () => {
    const st = { ok: 0, pools: null as AtomicPools | null, callerNs: 0 };
    const r = runIteration(exhaust('pool-coco-refill', 'tdx', 2, 64 * KIB, GFP_ATOMIC, st), { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(st.ok).to.equal(2);
    expect(st.callerNs).to.be.below(10_000); // not even one hypercall in the handler
    const c = counters(r);
    expect(c['dma.atomic_pool.expansions']).to.equal(1);
    expect(c['mm.hypercalls']).to.equal(1); // one MapGPA TDVMCALL for the refill's range
    expect(c['mm.decrypted_pages']).to.equal(32);
    const kernel = st.pools!.atomic_pool_kernel!;
    expect(kernel.size).to.equal(256 * KIB);
    expect(kernel.chunks[0].addedBy).to.match(/^kworker/);
    expect(kernel.chunks[1].addedBy).to.equal('boot');
  });

  it('dma_alloc_coherent(GFP_ATOMIC) under a spinlock in a CoCo guest: pool memory, no might_sleep', () => {
    const img = mm_prepare({ memory: 256 * MIB });
    const p = memProgram('pool-coherent-spinlock', { image: img, coco: 'sev-snp' }, (m) => {
      dma_init(m, {});
      const dev = device_register(m, { name: 'virtio0' });
      const lock = DEFINE_SPINLOCK(m, 'vq->lock');
      m.kthread('drv', 0, function* (cur) {
        yield* spin_lock(cur, lock);
        const b = yield* dma_alloc_coherent(cur, dev, 4096, GFP_ATOMIC);
        yield* spin_unlock(cur, lock);
        expect(b).to.not.equal(null);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(counters(r)['dma.coherent.from_pool']).to.equal(1);
  });
});
