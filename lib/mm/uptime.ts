/**
 * Uptime on a running machine: the fragmenting workload of fragmenter.ts (fill with page cache and
 * kernel allocations, reclaim back down, a slowly turning-over set of long-lived kernel allocations
 * scattered wherever memory was free), applied to a machine *while it runs*, so a scenario can
 * allocate at several uptimes in one run and report a failure rate per uptime step.
 *
 * mm_uptime(cur, rounds) continues where the previous call on the same machine stopped: the
 * long-lived (pinned) set and its cap are per machine, not per call, so ten calls of 20 rounds
 * pin what one call of 200 would. Differences from age() (which builds boot images):
 *  - movable allocations are page cache from the start: on LRU_FILE_CLEAN, so direct reclaim can
 *    drop them, compaction and CMA can migrate them, and the workload's own "reclaim" takes its
 *    movable victims from the LRU list (whatever reclaim or migration did to them meanwhile);
 *  - movable fill allocations may use CMA pageblocks (ALLOC_CMA), as upstream's page cache does,
 *    so cma_alloc has pages to migrate; kernel allocations never land in CMA pageblocks;
 *  - at the end of a call the transient kernel allocations are freed (as age() does at the end),
 *    the long-lived ones stay.
 * The workload runs in one engine step per call (it is the rest of the machine, not a task under
 * test) and then lets `msPerRound` of virtual time pass per round (default 0: uptime is counted in
 * rounds, not seconds), so nothing else interleaves with it.
 *
 * Simplified: the workload sees each zone separately and picks movable victims from the node-wide
 * LRU list, retrying (a bounded number of times) until it finds one in the zone being reclaimed.
 */
import { ProgramError } from '../../scheduler/errors';
import { Rng } from '../../scheduler/rng';
import type { KernelBody, Machine } from '../kernel/machine';
import { msleep } from '../kernel/sched';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { drawAllocation, KIND_MIGRATETYPE, KIND_MOVABLE, workloadMix, type AgeOptions } from './fragmenter';
import { LRU_FILE_CLEAN } from './lru';
import { mm, type MemoryModel } from './mm';
import { ALLOC_CMA, WMARK_HIGH, type Zone } from './zone';

/** The fragmenter's workload knobs (fragmenter.ts documents them), plus a seed and a pace. */
export interface UptimeOptions extends Partial<Omit<AgeOptions, 'seed' | 'rounds' | 'zones'>> {
  /** Seed of the workload's choices (default 1); the same seed and rounds give the same memory. */
  seed?: number;
  /** Virtual milliseconds per round (default 0). */
  msPerRound?: number;
}

/** Per-zone long-lived set, kept across calls. */
interface ZoneState {
  longPfn: number[];
  longOrder: number[];
  pinned: number;
}

/** The workload's state on one machine. */
class UptimeState {
  readonly rng: Rng;
  readonly zones = new Map<Zone, ZoneState>();
  /** Rounds run so far. */
  rounds = 0;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
}

const states = new WeakMap<Machine, UptimeState>();

/** Rounds of uptime the machine has had from mm_uptime (0 before the first call). */
export function mm_uptime_rounds(m: Machine): number {
  return states.get(m)?.rounds ?? 0;
}

/**
 * Let the machine run `rounds` rounds of the fragmenting workload (see the header). Callable from
 * any task that may sleep when msPerRound > 0.
 */
export function* mm_uptime(cur: Task, rounds: number, opts: UptimeOptions = {}): KernelBody<void> {
  if (!Number.isSafeInteger(rounds) || rounds < 0) throw new ProgramError(`mm_uptime: rounds must be a non-negative integer, got ${String(rounds)}`);
  const m = cur.cpu.machine;
  const model = mm(m);
  const seed = opts.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ProgramError(`mm_uptime: seed must be a non-negative integer, got ${String(seed)}`);
  let st = states.get(m);
  if (st === undefined) states.set(m, (st = new UptimeState(seed)));
  const ms = opts.msPerRound ?? 0;
  if (!(ms >= 0)) throw new ProgramError(`mm_uptime: msPerRound must be >= 0, got ${ms}`);
  yield* fn(cur, 'mm_uptime', (function* () {
    if (rounds === 0) return;
    // One visible step: the rest of the machine runs for a while.
    yield cur.thread.write(model.m.sim.object('uptime'));
    runRounds(model, st!, rounds, opts);
    st!.rounds += rounds;
    model.count('uptime_rounds', rounds);
    model.sample();
    if (ms > 0) yield* msleep(cur, ms * rounds);
  })());
}

/** The workload itself (synchronous: no task of the scenario runs meanwhile). */
function runRounds(model: MemoryModel, st: UptimeState, rounds: number, opts: UptimeOptions): void {
  const phys = model.phys;
  const lru = model.lru;
  const mix = workloadMix(opts, 'uptime');
  const { peak, trough, pLong, maxPinned } = mix;
  const rng = st.rng;
  for (const z of phys.zones) {
    if (z.managed === 0) continue;
    let zs = st.zones.get(z);
    if (zs === undefined) st.zones.set(z, (zs = { longPfn: [], longOrder: [], pinned: 0 }));
    const pinCap = Math.floor(z.managed * maxPinned);
    const floorFree = z.watermark[WMARK_HIGH] + 1;
    const peakFree = Math.max(floorFree, Math.ceil(z.managed * (1 - peak)));
    const troughFree = Math.max(peakFree, Math.floor(z.managed * (1 - trough)));
    // Transient kernel allocations of this call (swap-remove arrays).
    const tPfn: number[] = [];
    const tOrder: number[] = [];
    const freeTransient = (i: number): void => {
      phys.free(tPfn[i], tOrder[i]);
      const last = tPfn.length - 1;
      tPfn[i] = tPfn[last];
      tOrder[i] = tOrder[last];
      tPfn.pop();
      tOrder.pop();
    };
    for (let r = 0; r < rounds; r++) {
      // Fill: page cache grows, the kernel allocates alongside.
      while (z.nr_free > peakFree) {
        const drawn = drawAllocation(rng, mix);
        const kind = drawn >> 2;
        let order = drawn & 3;
        const mt = KIND_MIGRATETYPE[kind];
        let pfn = phys.rmqueue(z, order, mt, kind === KIND_MOVABLE ? ALLOC_CMA : 0);
        if (pfn < 0 && order > 0) {
          order = 0;
          pfn = phys.rmqueue(z, 0, mt, 0);
        }
        if (pfn < 0) break;
        if (kind === KIND_MOVABLE) {
          lru.add(LRU_FILE_CLEAN, pfn);
          continue;
        }
        if (rng.double() < pLong) {
          zs.longPfn.push(pfn);
          zs.longOrder.push(order);
          zs.pinned += 1 << order;
          // Turn over: an old long-lived allocation finally goes.
          while (zs.pinned > pinCap && zs.longPfn.length > 1) {
            const i = rng.int(zs.longPfn.length - 1);
            phys.free(zs.longPfn[i], zs.longOrder[i]);
            zs.pinned -= 1 << zs.longOrder[i];
            const last = zs.longPfn.length - 1;
            zs.longPfn[i] = zs.longPfn[last];
            zs.longOrder[i] = zs.longOrder[last];
            zs.longPfn.pop();
            zs.longOrder.pop();
          }
          continue;
        }
        tPfn.push(pfn);
        tOrder.push(order);
      }
      // Reclaim: random victims (page cache of this zone, or transient kernel memory) until the trough.
      let misses = 0;
      while (z.nr_free < troughFree) {
        const cache = lru.len[LRU_FILE_CLEAN];
        if (cache === 0 && tPfn.length === 0) break;
        const i = rng.int(cache + tPfn.length);
        if (i >= cache) {
          freeTransient(i - cache);
          continue;
        }
        const pfn = lru.at(LRU_FILE_CLEAN, i);
        if (!z.spans(pfn) || phys.allocatedOrder(pfn) !== 0) {
          // Another zone's page: try again; give up on the page cache after many misses.
          if (++misses > 64 && tPfn.length > 0) freeTransient(rng.int(tPfn.length));
          else if (misses > 4096) break;
          continue;
        }
        misses = 0;
        lru.remove(pfn);
        phys.free(pfn, 0);
      }
    }
    // Transient kernel allocations end; the long-lived ones stay.
    while (tPfn.length > 0) freeTransient(tPfn.length - 1);
  }
}
