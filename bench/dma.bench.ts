/**
 * swiotlb benchmark (npm run bench runs it after the engine and memory benches). Ratios are
 * against baselines measured in the same run:
 *  (h) the slot allocator itself (search + assign + release, no simulation) at queue depth 32
 *      and 1024 on a 64 MiB and a 1 GiB pool, against a plain Int32Array free stack of slots;
 *  (i) map+unmap pairs/s through each registered design inside an engine run
 *      (swiotlb_tbl_map_single / swiotlb_tbl_unmap_single: area locks as visible steps, bounce
 *      copies charged), against (h) static on the same pool;
 *  (j) v2-list vs rbtree lookup steps per unmap with 32..4096 live dynamic buffers;
 *  (k) resetting a used 1 GiB pool for the next run, against building it.
 */
import { Engine, makeStrategy, type Program } from '../scheduler';
import { installDetectors } from '../lib/check';
import { Machine } from '../lib/kernel/machine';
import { MIB, mm_init, mm_prepare } from '../lib/mm';
import { DMA_BIDIRECTIONAL, device_register, dma_init, io_tlb_pool, IO_TLB_SIZE, swiotlb_prepare, swiotlbPolicyNames, swiotlb_tbl_map_single, swiotlb_tbl_unmap_single, type PolicySpec } from '../lib/dma';
import { best as bestOf } from './best';

const QUICK = process.argv.includes('--quick');
const PAIRS = QUICK ? 200_000 : 2_000_000;
const RUNS = QUICK ? 2 : 5;
const GIB = 1024 * MIB;
/** Request sizes of the mix: 4, 8, 16, 4, 64 KiB (a block-I/O-like mix, mean 19 KiB). */
const SIZES = [4096, 8192, 16384, 4096, 65536];

const best = (f: () => unknown): number => bestOf(RUNS, f);

/** A stack of free slot numbers (one slot per request: the cheapest possible allocator). */
function baseline(pairs: number, qd: number, nslabs: number): number {
  const stack = new Int32Array(nslabs);
  for (let i = 0; i < nslabs; i++) stack[i] = i;
  let top = nslabs;
  const held = new Int32Array(qd);
  let sink = 0;
  for (let i = 0; i < pairs; i++) {
    const k = i % qd;
    if (i >= qd) stack[top++] = held[k];
    held[k] = stack[--top];
    sink += held[k];
  }
  return sink;
}

/** The pool's own search/assign/release over `nareas` areas, requests spread over the CPUs' areas. */
function raw(pool: io_tlb_pool, pairs: number, qd: number): number {
  const held = new Float64Array(qd).fill(-1);
  let sink = 0;
  for (let i = 0; i < pairs; i++) {
    const k = i % qd;
    if (held[k] >= 0) pool.release(held[k], 0);
    const size = SIZES[i % SIZES.length];
    const orig = 0x100000000 + i * 4096;
    let slot = -1;
    const a0 = i & (pool.nareas - 1);
    for (let a = 0; a < pool.nareas && slot < 0; a++) slot = pool.search((a0 + a) & (pool.nareas - 1), orig, size, 0, 0, 0xffffffff, 4096);
    if (slot < 0) {
      held[k] = -1;
      continue;
    }
    held[k] = pool.start + pool.assign(slot, orig, size, 0) * IO_TLB_SIZE;
    sink += slot;
  }
  return sink;
}

/** One kthread per CPU keeping `qd / cpus` mappings live through swiotlb_tbl_map_single. */
function modelProgram(policy: PolicySpec, poolBytes: number, pairs: number, qd: number, cpus: number): Program {
  const image = mm_prepare({ memory: poolBytes >= GIB ? 2 * GIB : 256 * MIB });
  const sw = swiotlb_prepare(image, { cpus, size: poolBytes, policy });
  return {
    name: `dma-bench-${policy.name}`,
    setup(sim) {
      image.restore();
      const m = new Machine(sim, { cpus });
      installDetectors(m);
      mm_init(m, { image, kswapd: false });
      dma_init(m, { swiotlb: sw });
      const dev = device_register(m, { name: 'bench0' });
      const per = Math.max(1, Math.floor(qd / cpus));
      for (let c = 0; c < cpus; c++) {
        m.kthread(`io${c}`, c, function* (cur) {
          const held = new Float64Array(per).fill(-1);
          const sizes = new Int32Array(per);
          const n = pairs / cpus;
          for (let i = 0; i < n; i++) {
            const k = i % per;
            if (held[k] >= 0) yield* swiotlb_tbl_unmap_single(cur, dev, held[k], sizes[k], DMA_BIDIRECTIONAL, 0);
            const size = SIZES[(i + c) % SIZES.length];
            sizes[k] = size;
            held[k] = yield* swiotlb_tbl_map_single(cur, dev, 0x100000000 + ((c * n + i) % 65536) * 65536, size, 0, DMA_BIDIRECTIONAL, 0);
          }
          for (let k = 0; k < per; k++) if (held[k] >= 0) yield* swiotlb_tbl_unmap_single(cur, dev, held[k], sizes[k], DMA_BIDIRECTIONAL, 0);
        });
      }
    },
  };
}

function runOnce(p: Program): Record<string, number> {
  const e = new Engine({ stepBudget: Infinity });
  const r = e.run(p, makeStrategy({ strategy: 'random' }), 1, 100);
  return r.metrics.counters ?? {};
}

function main(): void {
  console.log(`irqsim swiotlb bench${QUICK ? ' --quick' : ''}: node ${process.version}; best of ${RUNS} after 1 warm-up`);
  const si = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(1)}k`);
  const r = (a: number, b: number) => `${(a / b).toFixed(3)}x`;
  const pools: [string, number][] = [['64 MiB', 64 * MIB], ['1 GiB', GIB]];
  const rawRate = new Map<string, number>();
  console.log('');
  for (const [pname, bytes] of pools) {
    for (const qd of [32, 1024]) {
      const nslabs = bytes / IO_TLB_SIZE;
      const tBase = best(() => void baseline(PAIRS, qd, nslabs));
      const pool = new io_tlb_pool(0x40000000, nslabs, 8);
      pool.snapshot();
      const tRaw = best(() => {
        pool.restore();
        raw(pool, PAIRS, qd);
      });
      rawRate.set(`${pname}/${qd}`, PAIRS / tRaw);
      console.log(`(h) static slot allocator, ${pname.padEnd(6)} qd ${String(qd).padStart(4)}: ${si(PAIRS / tRaw).padStart(7)} map+unmap pairs/s   baseline free stack ${si(PAIRS / tBase)}/s   ratio ${r(PAIRS / tRaw, PAIRS / tBase)}`);
    }
  }
  console.log('');
  const cpus = 4;
  const modelPairs = QUICK ? 8_000 : 40_000;
  for (const name of swiotlbPolicyNames()) {
    for (const [pname, bytes] of pools) {
      for (const qd of [32, 1024]) {
        // chunked-growth's default chunk is the boot pool's size: 4 MiB keeps it on the buddy allocator
        // v2-list and rbtree with swiotlb=dynamic (off, they would be the static pool)
        const spec: PolicySpec = name === 'chunked-growth' ? { name, chunkBytes: 4 * MIB } : name === 'v2-list' || name === 'rbtree' ? { name, dynamic: true } : { name };
        const p = modelProgram(spec, bytes, modelPairs, qd, cpus);
        let counters: Record<string, number> = {};
        const t = best(() => {
          counters = runOnce(p);
        });
        const done = counters['swiotlb.maps'] ?? 0;
        console.log(`(i) ${name.padEnd(15)} ${pname.padEnd(6)} qd ${String(qd).padStart(4)}: ${si(done / t).padStart(7)} pairs/s in a run   vs (h) static raw ${r(done / t, rawRate.get(`${pname}/${qd}`)!)}   failed ${counters['swiotlb.full'] ?? 0}`);
      }
    }
  }
  console.log('');
  const names = swiotlbPolicyNames();
  for (const name of ['v2-list', 'rbtree'].filter((n) => names.includes(n))) {
    const row: string[] = [];
    for (const live of [32, 256, 1024, 4096]) {
      // a 1 MiB pool: nearly every live mapping is a dynamic buffer the design must index
      // booted with swiotlb=dynamic (v2 5/7), else v2 and the rbtree on it never allocate
      const p = modelProgram({ name, dynamic: true }, 1 * MIB, live * 4, live, 1);
      const c = runOnce(p);
      row.push(`${live}: ${((c['swiotlb.lookup_steps'] ?? 0) / Math.max(1, c['swiotlb.unmaps'] ?? 1)).toFixed(1)}`);
    }
    console.log(`(j) ${name.padEnd(8)} lookup steps per unmap by live buffers   ${row.join('   ')}`);
  }
  console.log('');
  const bigPool = new io_tlb_pool(0x40000000, GIB / IO_TLB_SIZE, 8);
  bigPool.snapshot();
  const tBuild = best(() => void new io_tlb_pool(0x40000000, GIB / IO_TLB_SIZE, 8));
  // time the restore alone, after a run's worth of mappings dirtied the pool
  let tReset = Infinity;
  for (let i = 0; i < RUNS + 1; i++) {
    raw(bigPool, 20_000, 1024);
    const t0 = process.hrtime.bigint();
    bigPool.restore();
    tReset = Math.min(tReset, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(`(k) 1 GiB pool (524,288 slots): build ${(tBuild * 1e3).toFixed(1)} ms; reset after 20k mappings ${(tReset * 1e3).toFixed(3)} ms (${(tReset / tBuild).toFixed(2)}x a build)`);
}

main();
