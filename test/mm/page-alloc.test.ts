import { expect } from 'chai';
import { hunt, runIteration, type RunResult } from '../../scheduler';
import {
  __GFP_NORETRY,
  __GFP_NOWARN,
  gfpflags_allow_blocking,
  GFP_ATOMIC,
  GFP_KERNEL,
  GFP_NOFS,
  GFP_NOIO,
  GFP_NOWAIT,
  memalloc_noio_restore,
  memalloc_noio_save,
  memalloc_nofs_restore,
  memalloc_nofs_save,
  __GFP_IO,
  __GFP_FS,
} from '../../lib/kernel/gfp';
import type { Machine } from '../../lib/kernel/machine';
import { DEFINE_SPINLOCK, spin_lock, spin_unlock } from '../../lib/kernel/spinlock';
import { PF_MEMALLOC, PF_MEMALLOC_NOFS, PF_MEMALLOC_NOIO } from '../../lib/kernel/task';
import { request_irq, raise_irq } from '../../lib/kernel/irq';
import {
  ALLOC_HIGHATOMIC,
  ALLOC_MIN_RESERVE,
  ALLOC_NON_BLOCK,
  alloc_pages,
  gfp_to_alloc_flags,
  handle_mm_fault,
  mm,
  mm_prepare,
  __free_pages,
  MIB,
  IdealDisk,
  wmark_pages,
} from '../../lib/mm';
import { memProgram } from '../support/memory';

const SEC = 1_000_000_000;
const kinds = (r: RunResult) => r.findings.map((f) => f.kind);

describe('mm: GFP composites', () => {
  it('say whether they may sleep, do I/O or FS reclaim, and which reserves they get', () => {
    const table = [
      // name, gfp, sleeps, io, fs, min reserve, non-block
      ['GFP_KERNEL', GFP_KERNEL, true, true, true, false, false],
      ['GFP_NOFS', GFP_NOFS, true, true, false, false, false],
      ['GFP_NOIO', GFP_NOIO, true, false, false, false, false],
      ['GFP_ATOMIC', GFP_ATOMIC, false, false, false, true, true],
      ['GFP_NOWAIT', GFP_NOWAIT, false, false, false, false, true],
    ] as const;
    for (const [name, gfp, sleeps, io, fs, minres, nonblock] of table) {
      expect(gfpflags_allow_blocking(gfp), name).to.equal(sleeps);
      expect((gfp & __GFP_IO) !== 0, name).to.equal(io);
      expect((gfp & __GFP_FS) !== 0, name).to.equal(fs);
      const f = gfp_to_alloc_flags(gfp, 0);
      expect((f & ALLOC_MIN_RESERVE) !== 0, `${name} min reserve`).to.equal(minres);
      expect((f & ALLOC_NON_BLOCK) !== 0, `${name} non-block`).to.equal(nonblock);
      // order > 0 non-blocking allocations may dip into the highatomic reserve
      expect((gfp_to_alloc_flags(gfp, 2) & ALLOC_HIGHATOMIC) !== 0, `${name} highatomic`).to.equal(nonblock);
    }
  });

  it('scopes narrow every nested allocation: GFP_KERNEL inside memalloc_noio_save never swaps', () => {
    // all memory anonymous, an ideal swap disk: only swap-out can free memory
    const swapped = (scoped: boolean) => {
      const p = memProgram('scope', { memory: 64 * MIB, processes: [{ comm: 'db', anon: 64 * MIB - 40 * 4096 }], kswapd: false, swapDevice: (m) => new IdealDisk(m, 'zram0') }, (m) => {
        m.process('t', 0, function* (cur) {
          const noio = scoped ? memalloc_noio_save(cur) : -1;
          const nofs = scoped ? memalloc_nofs_save(cur) : -1;
          if (scoped) memalloc_nofs_restore(cur, nofs); // nested scopes restore in order
          yield* alloc_pages(cur, GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, 0);
          if (scoped) memalloc_noio_restore(cur, noio);
          expect(cur.flags & (PF_MEMALLOC_NOIO | PF_MEMALLOC_NOFS | PF_MEMALLOC)).to.equal(0);
        });
      });
      const r = runIteration(p, { iteration: 0 });
      return r.metrics.counters?.['mm.swap_submitted'] ?? 0;
    };
    expect(swapped(false)).to.be.greaterThan(0);
    expect(swapped(true)).to.equal(0);
  });

  it('GFP_KERNEL in atomic context is a might_sleep finding; GFP_ATOMIC and GFP_NOWAIT are not', () => {
    for (const [gfp, expectSplat] of [
      [GFP_KERNEL, true],
      [GFP_NOIO, true],
      [GFP_ATOMIC, false],
      [GFP_NOWAIT, false],
    ] as const) {
      const p = memProgram('atomic', { memory: 64 * MIB }, (m) => {
        const l = DEFINE_SPINLOCK(m, 'dev_lock');
        m.kthread('t', 0, function* (cur) {
          yield* spin_lock(cur, l);
          const pfn = yield* alloc_pages(cur, gfp, 0);
          yield* spin_unlock(cur, l);
          __free_pages(cur, pfn, 0);
        });
      });
      const r = runIteration(p, { iteration: 0 });
      expect(kinds(r).includes('might_sleep'), `gfp 0x${gfp.toString(16)}`).to.equal(expectSplat);
    }
  });

  it('a GFP_ATOMIC allocation from a hardirq handler succeeds without a splat', () => {
    let got = -2;
    const p = memProgram('irq', { memory: 64 * MIB }, (m) => {
      const line = request_irq(m, 0, 'nic', function* (cur) {
        got = yield* alloc_pages(cur, GFP_ATOMIC, 1);
      });
      m.kthread('t', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.work(1000);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(got).to.be.at.least(0);
  });

  it('GFP_ATOMIC may go below the min watermark where GFP_NOWAIT fails', () => {
    // 64 MiB with 62 MiB of anonymous memory and no swap: free memory sits near the min watermark
    const image = mm_prepare({ memory: 64 * MIB, processes: [{ comm: 'bloat', anon: 64 * MIB - 700 * 4096 }] });
    const results: Record<string, number> = {};
    for (const [name, gfp] of [
      ['nowait', GFP_NOWAIT],
      ['atomic', GFP_ATOMIC],
    ] as const) {
      image.restore();
      const p = memProgram('reserves', { image, kswapd: false }, (m) => {
        m.kthread('t', 0, function* (cur) {
          let n = 0;
          while ((yield* alloc_pages(cur, gfp | __GFP_NOWARN, 0)) >= 0) n++;
          results[name] = n;
        });
      });
      runIteration(p, { iteration: 0 });
    }
    // Only ZONE_DMA has free pages: GFP_NOWAIT stops at its min watermark, GFP_ATOMIC at 3/8 of it
    const min = wmark_pages(image.phys.zoneByIdx(0)!, 0);
    const atomicMin = min - (min >> 1) - (min >> 3);
    expect(results.atomic - results.nowait).to.equal(min - atomicMin);
  });
});

describe('mm: OOM rules', () => {
  const greedy = (order: number, gfp: number) =>
    memProgram(
      `greedy-o${order}`,
      { memory: 64 * MIB, processes: [{ comm: 'chrome', anon: 40 * MIB }] },
      (m, log) => {
        m.process('greedy', 0, function* (cur) {
          // the greedy task faults memory in until the allocator stops it
          const got = yield* handle_mm_fault(cur, 8192);
          log.push(`faulted ${got}`);
          const pfn = yield* alloc_pages(cur, gfp, order);
          log.push(`alloc ${pfn >= 0 ? 'ok' : 'failed'}`);
        });
      },
    );

  it('order-0 GFP_KERNEL on a small machine under a greedy workload kills the biggest process', () => {
    const r = runIteration(greedy(0, GFP_KERNEL), { iteration: 0 });
    const oom = r.findings.filter((f) => f.kind === 'oom_kill');
    expect(oom, r.findings.map((f) => f.headline).join('\n')).to.have.length.greaterThan(0);
    expect(oom[0].headline).to.match(/Killed process \d+ \((chrome|greedy)\)/);
    expect(oom[0].text).to.include('invoked oom-killer: gfp_mask=');
    expect(r.metrics.counters?.['mm.oom_kill']).to.be.at.least(1);
  });

  it('order 4+ never invokes the OOM killer: it fails with a page allocation failure', () => {
    const p = memProgram('costly', { memory: 64 * MIB, processes: [{ comm: 'chrome', anon: 62 * MIB }] }, (m) => {
      m.kthread('t', 0, function* (cur) {
        for (let i = 0; i < 64; i++) if ((yield* alloc_pages(cur, GFP_KERNEL, 4)) < 0) break;
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(kinds(r)).to.include('alloc_failure');
    expect(kinds(r)).to.not.include('oom_kill');
    const f = r.findings.find((x) => x.kind === 'alloc_failure')!;
    expect(f.text).to.match(/page allocation failure: order:4, mode:0x[0-9a-f]+\(GFP_KERNEL\)/);
  });

  it('__GFP_NOWARN failures are a metric, not a finding', () => {
    const p = memProgram('nowarn', { memory: 64 * MIB, processes: [{ comm: 'chrome', anon: 62 * MIB }] }, (m) => {
      m.kthread('t', 0, function* (cur) {
        for (let i = 0; i < 64; i++) if ((yield* alloc_pages(cur, GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, 4)) < 0) break;
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(kinds(r)).to.not.include('alloc_failure');
    expect(r.metrics.counters?.['mm.alloc_fail_nowarn']).to.be.at.least(1);
  });

  it('GFP_NOIO never invokes the OOM killer: it keeps retrying (a stall in timed mode)', () => {
    const p = memProgram('noio', { memory: 64 * MIB, processes: [{ comm: 'chrome', anon: 63 * MIB }] }, (m) => {
      m.process('writer', 0, function* (cur) {
        for (let i = 0; i < 4096; i++) if ((yield* alloc_pages(cur, GFP_NOIO, 0)) < 0) break;
      });
    });
    const r = runIteration(p, { iteration: 0, window: 0, horizon: SEC / 2 });
    expect(kinds(r)).to.not.include('oom_kill');
    expect(kinds(r)).to.include('stall');
    expect(kinds(r)).to.not.include('deadlock');
  });

  it('counts allocations per order and GFP class', () => {
    const p = memProgram('counts', { memory: 64 * MIB }, (m) => {
      m.kthread('t', 0, function* (cur) {
        for (let i = 0; i < 3; i++) yield* alloc_pages(cur, GFP_KERNEL, 0);
        yield* alloc_pages(cur, GFP_ATOMIC, 2);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.metrics.counters?.['mm.alloc.o0.GFP_KERNEL']).to.equal(3);
    expect(r.metrics.counters?.['mm.alloc.o2.GFP_ATOMIC']).to.equal(1);
    expect(r.metrics.peaks?.['mm.used_pages_peak']).to.be.greaterThan(0);
  });

  it('a prepared image restores identically for every run of a hunt', () => {
    const image = mm_prepare({ memory: 64 * MIB, uptime: 20, ageSeed: 3, pageCache: 8 * MIB });
    const frees: number[] = [];
    const p = memProgram('restore', { image }, (m) => {
      frees.push(mm(m).nrFree());
      m.kthread('t', 0, function* (cur) {
        for (let i = 0; i < 100; i++) yield* alloc_pages(cur, GFP_KERNEL, i % 3);
      });
    });
    hunt(p, { iterations: 5, stopAtFirst: false });
    expect(new Set(frees).size).to.equal(1);
    expect(frees.length).to.be.at.least(5);
  });
});
