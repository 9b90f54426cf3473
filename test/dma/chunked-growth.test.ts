/**
 * `chunked-growth` (Hellwig's "allocate another chunk of the same size in the background"): the
 * reserve threshold, buddy versus CMA chunks, a mapping storm that outruns the worker, and the
 * same burst run through static, upstream and chunked-growth for the figures.
 */
import { expect } from 'chai';
import { runIteration, type Program, type RunResult } from '../../scheduler';
import { DMA_MAPPING_ERROR, DMA_TO_DEVICE, device_register, dma_init, swiotlb_map, swiotlb_prepare, swiotlb_state, swiotlb_tbl_unmap_single, type device, type PolicySpec, type SwiotlbImage } from '../../lib/dma';
import { ChunkedGrowthPolicy } from '../../lib/dma/swiotlb/policies/chunked-growth';
import { swiotlb_policy } from '../../lib/dma/swiotlb/policy';
import type { Machine } from '../../lib/kernel/machine';
import { msleep, schedule_timeout } from '../../lib/kernel/sched';
import type { Task } from '../../lib/kernel/task';
import { cma_declare_contiguous, MIB, mm_prepare, type MemoryImage } from '../../lib/mm';
import { memProgram } from '../support/memory';

const KIB = 1024;
const SZ = 64 * KIB; // 32 slots
const ORIG = 0x2000000;

interface World {
  m: Machine;
  dev: device;
}

function program(name: string, policy: string | PolicySpec, body: (w: World) => void, o: { img?: MemoryImage; cpus?: number } = {}): Program {
  const img = o.img ?? mm_prepare({ memory: 256 * MIB });
  const cpus = o.cpus ?? 4;
  const sw: SwiotlbImage = swiotlb_prepare(img, { cpus, size: 1 * MIB, policy });
  return memProgram(name, { image: img, cpus }, (m) => {
    dma_init(m, { swiotlb: sw });
    body({ m, dev: device_register(m, { name: 'nvme0' }) });
  });
}

const counters = (r: RunResult) => r.metrics.counters ?? {};
const peaks = (r: RunResult) => r.metrics.peaks ?? {};

/** Sleep `ns` of virtual time (an I/O submission gap). */
function* nap(cur: Task, ns: number) {
  yield* schedule_timeout(cur, ns, { kind: 'wait_queue', what: 'io gap' });
}

describe('swiotlb chunked-growth', () => {
  it('validates its parameters', () => {
    const p = swiotlb_policy({ name: 'chunked-growth' }) as ChunkedGrowthPolicy;
    expect(p.params).to.deep.equal({ reserve: 0.25, chunkBytes: null, maxChunks: 8 });
    expect(() => swiotlb_policy({ name: 'chunked-growth', reserve: 1.5 })).to.throw(/reserve must be a fraction/);
    expect(() => swiotlb_policy({ name: 'chunked-growth', chunkBytes: 100_000 })).to.throw(/multiple of 256 KiB/);
    expect(() => swiotlb_policy({ name: 'chunked-growth', maxChunks: 0 })).to.throw(/maxChunks must be a positive integer/);
    expect(() => swiotlb_policy({ name: 'chunked-growth', chunk: 1 })).to.throw(/unknown parameter 'chunk'/);
  });

  it('kicks the worker when free slots drop below the reserve, and adds a chunk the size of the boot pool', () => {
    const growingAfter: boolean[] = [];
    let after = { pools: 0, nslabs: 0, from: '', chunkBytes: 0 };
    const p = program('chunked-threshold', 'chunked-growth', ({ m, dev }) => {
      growingAfter.length = 0;
      m.kthread('io', 0, function* (cur: Task) {
        const st = swiotlb_state(m);
        const pol = st.policy as ChunkedGrowthPolicy;
        for (let i = 0; i < 13; i++) {
          yield* swiotlb_map(cur, dev, ORIG + i * SZ, SZ, DMA_TO_DEVICE, 0);
          growingAfter.push(pol.growing || pol.chunks > 0);
        }
        yield* msleep(cur, 5);
        after = { pools: st.mem.pools.length, nslabs: st.mem.nslabs, from: st.mem.pools[0].backing.from, chunkBytes: pol.params.chunkBytes as number };
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings.map((f) => f.headline)).to.deep.equal([]);
    // 512 slots, reserve 0.25 = 128: after 12 maps 128 are free (not below), after 13 only 96
    expect(growingAfter.indexOf(true)).to.equal(12);
    expect(after).to.deep.equal({ pools: 2, nslabs: 1024, from: 'buddy', chunkBytes: 1 * MIB });
    expect(counters(r)['swiotlb.grow_kicks']).to.equal(1);
    expect(counters(r)['swiotlb.grow_bytes']).to.equal(1 * MIB);
  });

  it('a 4 MiB chunk comes from the buddy allocator (one MAX_PAGE_ORDER block), a 16 MiB chunk from CMA', () => {
    const got: { from: string; order: number; pages: number; nareas: number }[] = [];
    const img = mm_prepare({ memory: 256 * MIB });
    cma_declare_contiguous(img, 32 * MIB, 'reserved');
    for (const chunkBytes of [4 * MIB, 16 * MIB]) {
      let last = { from: '', order: 0, pages: 0, nareas: 0 };
      const p = program(`chunked-${chunkBytes >> 20}m`, { name: 'chunked-growth', chunkBytes }, ({ m, dev }) => {
        m.kthread('io', 0, function* (cur: Task) {
          for (let i = 0; i < 14; i++) yield* swiotlb_map(cur, dev, ORIG + i * SZ, SZ, DMA_TO_DEVICE, 0);
          yield* msleep(cur, 50);
          const pool = swiotlb_state(m).mem.pools[0];
          last = { from: pool.backing.from, order: pool.backing.order, pages: pool.backing.pages, nareas: pool.nareas };
        });
      }, { img });
      const r = runIteration(p, { iteration: 0 });
      got.push(last);
      expect(r.findings.map((f) => f.headline)).to.deep.equal([]);
      const c = counters(r);
      expect(c['swiotlb.grow_bytes']).to.equal(chunkBytes);
      expect(c['swiotlb.grow_cma_bytes'] ?? 0).to.equal(chunkBytes > 4 * MIB ? chunkBytes : 0);
    }
    expect(got).to.deep.equal([
      { from: 'buddy', order: 10, pages: 1024, nareas: 4 },
      { from: 'cma', order: 12, pages: 4096, nareas: 4 },
    ]);
    // without a CMA area a chunk above a MAX_PAGE_ORDER block is refused at attach
    const noCma = program('chunked-nocma', { name: 'chunked-growth', chunkBytes: 16 * MIB }, () => {});
    expect(() => runIteration(noCma, { iteration: 0 })).to.throw(/needs CMA: declare an area with cma_declare_contiguous/);
  });

  it('a mapping storm faster than the worker fails maps until the chunk lands (the kick-to-chunk latency measured)', () => {
    const results: { t: number; ok: boolean }[] = [];
    let landed = -1;
    const p = program('chunked-storm', 'chunked-growth', ({ m, dev }) => {
      results.length = 0;
      for (let c = 0; c < 4; c++) {
        m.kthread(`io${c}`, c, function* (cur: Task) {
          for (let i = 0; i < 8; i++) {
            const a = yield* swiotlb_map(cur, dev, ORIG + (c * 8 + i) * SZ, SZ, DMA_TO_DEVICE, 0);
            results.push({ t: m.sim.now(), ok: a !== DMA_MAPPING_ERROR });
            const pol = swiotlb_state(m).policy as ChunkedGrowthPolicy;
            if (landed < 0 && pol.chunks > 0) landed = m.sim.now();
            yield* nap(cur, 2_000);
          }
        });
      }
    });
    const r = runIteration(p, { iteration: 0 });
    const c = counters(r);
    const failed = results.filter((x) => !x.ok);
    expect(failed.length).to.be.greaterThan(0);
    expect(landed).to.be.greaterThan(0);
    expect(failed[0].t).to.be.lessThan(landed); // the first failures come before the first chunk
    expect(c['swiotlb.full']).to.equal(failed.length);
    expect(c['swiotlb.chunk_misses']).to.equal(failed.length);
    expect(c['swiotlb.misses_while_growing']).to.be.greaterThan(0);
    expect(c['swiotlb.grow_pools']).to.be.at.least(1);
    // the window, kick to chunk on the list: tens of microseconds here (the worker's turn, the allocation)
    const lat = peaks(r)['swiotlb.grow_latency_max_ns'];
    expect(lat).to.be.within(1_000, 1_000_000);
    expect(c['swiotlb.grow_latency_ns']).to.be.at.least(lat);
    expect(r.findings.every((f) => f.kind === 'swiotlb_full')).to.equal(true);
  });

  it('figures: failed maps and footprint under one burst for static, upstream and chunked-growth', () => {
    const rows: string[] = [];
    const fig: Record<string, { failed: number; footprintPeak: number; footprintEnd: number; pools: number; lookupSteps: number }> = {};
    for (const policy of ['static', 'upstream', 'chunked-growth']) {
      let end = { footprint: 0, pools: 0 };
      // 4 CPUs, 24 x 64 KiB each held at once (6 MiB against a 1 MiB pool), 5 us between maps
      const p = program(`burst-${policy}`, policy, ({ m, dev }) => {
        let done = 0;
        for (let c = 0; c < 4; c++) {
          m.kthread(`io${c}`, c, function* (cur: Task) {
            const got: number[] = [];
            for (let i = 0; i < 24; i++) {
              const a = yield* swiotlb_map(cur, dev, ORIG + (c * 24 + i) * SZ, SZ, DMA_TO_DEVICE, 0);
              if (a !== DMA_MAPPING_ERROR) got.push(a);
              yield* nap(cur, 5_000);
            }
            for (const a of got) yield* swiotlb_tbl_unmap_single(cur, dev, a, SZ, DMA_TO_DEVICE, 0);
            if (++done === 4) {
              yield* msleep(cur, 5);
              const st = swiotlb_state(m);
              end = { footprint: st.policy.footprint(st), pools: st.mem.pools.length };
            }
          });
        }
      });
      const r = runIteration(p, { iteration: 0 });
      const c = counters(r);
      fig[policy] = { failed: c['swiotlb.full'] ?? 0, footprintPeak: peaks(r)['swiotlb.footprint_bytes_peak'] ?? 0, footprintEnd: end.footprint, pools: end.pools, lookupSteps: c['swiotlb.lookup_steps'] ?? 0 };
      const f = fig[policy];
      rows.push(`${policy.padEnd(15)} failed ${String(f.failed).padStart(3)}/96  footprint peak ${(f.footprintPeak / MIB).toFixed(2).padStart(5)} MiB  after ${(f.footprintEnd / MIB).toFixed(2).padStart(5)} MiB  pools ${f.pools}  lookup steps ${f.lookupSteps}`);
    }
    console.log(rows.map((x) => `      ${x}`).join('\n'));
    expect(fig.static.failed).to.equal(96 - 16); // the pool holds 16 mappings
    expect(fig.static.footprintEnd).to.equal(1 * MIB);
    expect(fig.upstream.failed).to.equal(0);
    expect(fig['chunked-growth'].failed).to.be.greaterThan(0);
    expect(fig['chunked-growth'].failed).to.be.lessThan(fig.static.failed);
    expect(fig['chunked-growth'].footprintEnd).to.be.at.most(9 * MIB); // the boot pool and at most maxChunks chunks
  });
});
