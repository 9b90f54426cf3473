/**
 * Memory-model benchmark (npm run bench runs it after the engine bench). Figures are ratios
 * against baselines measured in the same run:
 *  (e) the buddy allocator: order-0 and mixed-order allocate+free pairs per second, against a
 *      plain Int32Array free stack of the same pages (the cheapest possible page allocator);
 *  (f) alloc_pages/__free_pages through the kernel model inside an engine run (might_alloc,
 *      a visible step, counters) against (e)'s raw buddy pairs;
 *  (g) a prepared 512 MiB aged image: restoring it per run against building it.
 */
import { Engine, makeStrategy, type Program } from '../scheduler';
import { installDetectors } from '../lib/check';
import { GFP_KERNEL } from '../lib/kernel/gfp';
import { Machine } from '../lib/kernel/machine';
import { __free_pages, alloc_pages, MIB, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, mm_init, mm_prepare, PhysMem } from '../lib/mm';
import { best as bestOf } from './best';

const QUICK = process.argv.includes('--quick');
const PAIRS = (QUICK ? 200_000 : 2_000_000);
const RUNS = 5;

const best = (f: () => unknown): number => bestOf(RUNS, f);

/** A stack of free page numbers: pop to allocate, push to free. */
function baseline(pairs: number): number {
  const n = (512 * MIB) / 4096;
  const stack = new Int32Array(n);
  for (let i = 0; i < n; i++) stack[i] = i;
  let top = n;
  const held = new Int32Array(64);
  let sink = 0;
  for (let i = 0; i < pairs; i++) {
    const k = i & 63;
    if (i >= 64) stack[top++] = held[k];
    held[k] = stack[--top];
    sink += held[k];
  }
  return sink;
}

function buddy(pairs: number, mixed: boolean): number {
  const phys = new PhysMem({ memory: 512 * MIB });
  const z = phys.zones[phys.zones.length - 1];
  const held = new Int32Array(64);
  const orders = new Int8Array(64);
  let sink = 0;
  for (let i = 0; i < pairs; i++) {
    const k = i & 63;
    if (i >= 64 && held[k] >= 0) phys.free(held[k], orders[k]);
    const order = mixed ? (i * 7) % 4 : 0;
    orders[k] = order;
    held[k] = phys.rmqueue(z, order, mixed && (i & 1) ? MIGRATE_UNMOVABLE : MIGRATE_MOVABLE, 0);
    sink += held[k];
  }
  return sink;
}

function modelProgram(pairs: number): Program {
  const image = mm_prepare({ memory: 512 * MIB });
  return {
    name: 'mm-bench',
    setup(sim) {
      image.restore();
      const m = new Machine(sim, { cpus: 1 });
      installDetectors(m);
      mm_init(m, { image, kswapd: false });
      m.kthread('t', 0, function* (cur) {
        const held = new Int32Array(64).fill(-1);
        for (let i = 0; i < pairs; i++) {
          const k = i & 63;
          if (held[k] >= 0) __free_pages(cur, held[k], 0);
          held[k] = yield* alloc_pages(cur, GFP_KERNEL, 0);
        }
      });
    },
  };
}

function main(): void {
  console.log(`irqsim memory-model bench${QUICK ? ' --quick' : ''}: node ${process.version}; best of ${RUNS} after 1 warm-up`);
  const tBase = best(() => baseline(PAIRS));
  const tBuddy0 = best(() => buddy(PAIRS, false));
  const tBuddyMix = best(() => buddy(PAIRS, true));
  const modelPairs = PAIRS / 20;
  const prog = modelProgram(modelPairs);
  const tModel = best(() => {
    new Engine({ stepBudget: Infinity }).run(prog, makeStrategy({ strategy: 'random' }), 1, 100);
    return 0;
  });
  let built: ReturnType<typeof mm_prepare> | null = null;
  const tBuild = best(() => {
    built = mm_prepare({ memory: 512 * MIB, uptime: 20 });
    return 0;
  });
  const tRestore = best(() => {
    for (let i = 0; i < 100; i++) built!.restore();
    return 0;
  }) / 100;

  const rate = (pairs: number, s: number) => pairs / s;
  const si = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(1)}k`);
  const r = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log('');
  console.log(`(e) buddy order-0 pairs/s      ${si(rate(PAIRS, tBuddy0)).padStart(8)}   baseline free stack ${si(rate(PAIRS, tBase))}/s   ratio ${r(rate(PAIRS, tBuddy0), rate(PAIRS, tBase))}`);
  console.log(`(e) buddy mixed-order pairs/s  ${si(rate(PAIRS, tBuddyMix)).padStart(8)}   vs buddy order-0 ${r(rate(PAIRS, tBuddyMix), rate(PAIRS, tBuddy0))}`);
  console.log(`(f) alloc_pages in a run       ${si(rate(modelPairs, tModel)).padStart(8)}   vs raw buddy order-0 ${r(rate(modelPairs, tModel), rate(PAIRS, tBuddy0))}`);
  console.log(`(g) 512 MiB aged image: build ${(tBuild * 1e3).toFixed(1)} ms, restore ${(tRestore * 1e3).toFixed(3)} ms: restore costs 1/${Math.round(tBuild / tRestore)} of a build`);
}

main();
