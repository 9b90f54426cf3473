import { expect } from 'chai';
import { hunt, runIteration, type RunResult } from '../../scheduler';
import { GFP_ATOMIC, GFP_KERNEL, GFP_NOIO } from '../../lib/kernel/gfp';
import { DEFINE_MUTEX, mutex_lock, mutex_unlock } from '../../lib/kernel/mutex';
import {
  add_to_page_cache,
  alloc_pages,
  IdealDisk,
  LRU_ANON,
  LRU_WRITEBACK,
  try_to_free_pages,
  __free_pages,
  mempool_alloc,
  mempool_create_page_pool,
  mempool_free,
  MIB,
  mm,
  TaggedSwapDevice,
} from '../../lib/mm';
import type { Machine } from '../../lib/kernel/machine';
import { memProgram } from '../support/memory';

const SEC = 1_000_000_000;
const kinds = (r: RunResult) => r.findings.map((f) => f.kind);

/**
 * The block-I/O path under memory pressure: all memory is anonymous (nothing clean to drop), the
 * only way to free memory is to swap out through the device whose tag the submitter holds.
 */
const pressure = { memory: 64 * MIB, processes: [{ comm: 'db', anon: 64 * MIB - 40 * 4096 }] };

function ioPath(name: string, gfp: number, opts: { tags?: number; submitLock?: boolean; lockHeld?: boolean; mempool?: boolean; process?: boolean } = {}) {
  let dev: TaggedSwapDevice | null = null;
  return memProgram(
    name,
    { ...pressure, swapDevice: (m: Machine) => (dev = new TaggedSwapDevice(m, { tags: opts.tags ?? 1, submitLock: opts.submitLock })) },
    (m, log) => {
      const spawn = opts.process ? m.process.bind(m) : m.kthread.bind(m);
      spawn('nvme_submit', 0, function* (cur) {
        const d = dev!;
        // created at probe time with GFP_KERNEL (which reclaims, through the device, before any tag is held)
        const pool = opts.mempool ? yield* mempool_create_page_pool(cur, 2, 0, GFP_KERNEL) : null;
        if (opts.lockHeld && d.submitLock) yield* mutex_lock(cur, d.submitLock);
        const tag = yield* d.blk_mq_get_tag(cur);
        // the driver's per-request allocation (a DMA mapping's metadata, an SG table)
        const page = pool ? yield* mempool_alloc(cur, pool, gfp) : yield* alloc_pages(cur, gfp, 0);
        log.push(`alloc ${page === null || page < 0 ? 'failed' : 'ok'}`);
        d.dispatch(tag);
        if (opts.lockHeld && d.submitLock) yield* mutex_unlock(cur, d.submitLock);
        if (pool && page !== null) yield* mempool_free(cur, page, pool);
        else if (typeof page === 'number' && page >= 0) __free_pages(cur, page, 0);
      });
    },
  );
}

describe('mm: reclaim recursion through the swap device', () => {
  it('the submitter holding the last tag allocates with GFP_KERNEL: deadlock (within 5 schedules)', () => {
    const h = hunt(ioPath('tag-kernel', GFP_KERNEL), { iterations: 5, seed: 1 });
    const d = h.findings.find((f) => f.kind === 'deadlock');
    expect(d, h.findings.map((f) => f.headline).join('\n')).to.not.equal(undefined);
    expect(d!.text).to.include('swapdev:tags');
    expect(d!.text).to.include('swap_writepage');
  });

  it('holding the submission mutex: lockdep names fs_reclaim and the run deadlocks (within 20 schedules)', () => {
    const h = hunt(ioPath('lock-kernel', GFP_KERNEL, { submitLock: true, lockHeld: true, tags: 4 }), { iterations: 20, seed: 1, stopWhenSeen: ['lockdep', 'deadlock'] });
    const ks = h.findings.map((f) => f.kind);
    expect(ks).to.include('lockdep');
    expect(ks).to.include('deadlock');
    const l = h.findings.find((f) => f.kind === 'lockdep')!;
    expect(l.text).to.match(/fs_reclaim|submit_mutex/);
  });

  it('GFP_NOIO with a mempool reserve stays clean (200 schedules)', () => {
    const h = hunt(ioPath('noio-mempool', GFP_NOIO, { mempool: true }), { iterations: 200, seed: 1 });
    expect(h.findings.map((f) => `${f.kind}: ${f.headline}`)).to.deep.equal([]);
  });

  it('GFP_NOIO alone with nothing else reclaimable stalls in timed mode, without a cycle', () => {
    const r = runIteration(ioPath('noio-alone', GFP_NOIO, { process: true }), { iteration: 0, window: 0, horizon: 2 * SEC });
    expect(kinds(r)).to.include('stall');
    expect(kinds(r)).to.not.include('deadlock');
    expect(kinds(r)).to.not.include('oom_kill');
    expect(r.metrics.counters?.['mm.reclaim_throttled']).to.be.greaterThan(10);
  });
});

describe('mm: reclaim', () => {
  it('drops clean page cache without I/O; dirty cache is written only by the flusher, never by direct reclaim', () => {
    const writers = new Set<string>();
    const p = memProgram('cache', { memory: 64 * MIB, pageCache: 40 * MIB, dirty: 35 * MIB, processes: [{ comm: 'db', anon: 23 * MIB }], kswapd: false }, (m) => {
      const bdi = mm(m).bdi;
      const write = bdi.writepage.bind(bdi);
      bdi.writepage = function* (cur, pfn, done) {
        writers.add(cur.comm);
        return yield* write(cur, pfn, done);
      };
      m.process('reader', 0, function* (cur) {
        for (let i = 0; i < 4000; i++) if ((yield* alloc_pages(cur, GFP_KERNEL, 0)) < 0) break;
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(kinds(r)).to.not.include('oom_kill');
    const c = r.metrics.counters ?? {};
    expect(c['mm.alloc.o0.GFP_KERNEL']).to.equal(4000);
    expect(c['mm.pgsteal']).to.be.greaterThan(1280); // more than the clean cache: written-back pages too
    expect(c['mm.flusher_written']).to.be.greaterThan(0);
    expect([...writers]).to.deep.equal(['kworker/u:flush-8:0']);
  });

  it('kswapd swaps out through the device and brings free memory back above the high watermark', () => {
    let freeAfter = 0;
    let high = 0;
    const p = memProgram('kswapd', { ...pressure, swapDevice: (m) => new TaggedSwapDevice(m, { tags: 8 }) }, (m) => {
      m.process('app', 1, function* (cur) {
        yield* alloc_pages(cur, GFP_ATOMIC, 0); // wakes kswapd, never sleeps
        yield cur.thread.work(500_000_000);
        const model = mm(m);
        freeAfter = model.nrFree();
        high = model.phys.zones.reduce((s, z) => s + z.watermark[2], 0);
      });
    });
    const r = runIteration(p, { iteration: 0, window: 0 });
    expect(r.metrics.counters?.['mm.pswpout']).to.be.greaterThan(0);
    expect(freeAfter).to.be.greaterThan(high);
  });

  // mm/swap.c folio_rotate_reclaimable (from folio_end_writeback for a PG_reclaim folio) puts a
  // folio whose swap write completed at the inactive tail; the next shrink_folio_list frees it
  // and counts it in nr_reclaimed, so the next reclaim round reports progress. Meanwhile the
  // folio under writeback is still on the LRU, counted by zone_reclaimable_pages.
  it('pages whose swap write completed count as progress of the next reclaim pass; pages under writeback stay reclaimable', () => {
    const got: number[] = [];
    const p = memProgram('rotate', { ...pressure, kswapd: false, swapDevice: (m) => new IdealDisk(m, 'swap0', 1 << 20, 100_000) }, (m) => {
      m.process('app', 0, function* (cur) {
        got.length = 0;
        const model = mm(m);
        const anon0 = model.lru.len[LRU_ANON];
        got.push(yield* try_to_free_pages(cur, model, 0, GFP_KERNEL)); // submits, frees nothing yet
        // (the completion that ended the throttle already freed its page)
        got.push(model.lru.len[LRU_WRITEBACK], model.lru.rotated, anon0 - model.lru.reclaimable(true));
        yield cur.thread.work(1_000_000); // every write completes
        got.push(model.lru.len[LRU_WRITEBACK]);
        got.push(yield* try_to_free_pages(cur, model, 0, GFP_KERNEL)); // frees the rotated pages
        got.push(model.lru.len[LRU_WRITEBACK]);
      });
    });
    const r = runIteration(p, { iteration: 0, window: 0 });
    expect(r.findings).to.deep.equal([]);
    const [first, wb, done, notCounted, wbAfter, second, wbSecond] = got;
    expect(first).to.equal(0);
    expect(wb).to.be.greaterThan(0);
    expect(wb + done).to.equal(32); // SWAP_CLUSTER_MAX submitted
    expect(notCounted).to.equal(done); // only the freed pages left zone_reclaimable_pages, not those under writeback
    expect(wbAfter).to.equal(0);
    expect(second).to.equal(32);
    expect(wbSecond).to.equal(0); // the rotated pages filled nr_to_reclaim: nothing new submitted
    expect(r.metrics.counters?.['mm.pswpout']).to.equal(32);
    expect(r.metrics.counters?.['mm.swap_submitted']).to.equal(32);
  });

  it('page cache added by a writer becomes reclaimable', () => {
    const p = memProgram('writer', { memory: 64 * MIB }, (m) => {
      m.process('dd', 0, function* (cur) {
        const n = yield* add_to_page_cache(cur, 1000, true);
        expect(n).to.equal(1000);
        expect(mm(m).lru.reclaimable(false)).to.be.at.least(1000);
      });
    });
    expect(runIteration(p, { iteration: 0 }).findings).to.deep.equal([]);
  });

  it('swap-out never recurses into reclaim: the mutex variant holds PF_MEMALLOC inside the device', () => {
    let flags = -1;
    const p = memProgram('memalloc', { ...pressure, swapDevice: (m) => {
      const d = new TaggedSwapDevice(m, { tags: 2 });
      const orig = d.writepage.bind(d);
      d.writepage = function* (cur, pfn, done) {
        flags = cur.flags;
        return yield* orig(cur, pfn, done);
      };
      return d;
    } }, (m) => {
      const mu = DEFINE_MUTEX(m, 'unused');
      void mu;
      m.process('app', 0, function* (cur) {
        yield* alloc_pages(cur, GFP_KERNEL, 0);
      });
    });
    runIteration(p, { iteration: 0 });
    expect(flags & 0x800).to.equal(0x800);
  });
});
