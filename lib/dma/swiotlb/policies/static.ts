/**
 * `static`: the boot pool and nothing else (a kernel without CONFIG_SWIOTLB_DYNAMIC). A miss is
 * a failed mapping. Lookup is a range check; release frees the slots under the area lock.
 */
import type { KernelBody } from '../../../kernel/machine';
import type { Task } from '../../../kernel/task';
import type { device } from '../../device';
import { IO_TLB_SIZE } from '../constants';
import { pool_assign, pool_containing, pool_lookup, swiotlb_find_in_pools, swiotlb_release_slots } from '../find';
import { BounceRef, checkPolicyParams, registerSwiotlbPolicy, type PolicySpec, type SwiotlbPolicy } from '../policy';
import type { SwiotlbState } from '../state';

export const M_LOOKUP_STEPS = 'swiotlb.lookup_steps';

export class StaticPolicy implements SwiotlbPolicy {
  readonly name: string = 'static';
  readonly params: Readonly<Record<string, unknown>> = {};

  attach(): void {}

  *map(cur: Task, dev: device, orig: number, allocSize: number, offset: number, allocAlignMask: number): KernelBody<number> {
    const mem = dev.dma_io_tlb_mem!;
    const ref = new BounceRef();
    const slot = yield* swiotlb_find_in_pools(cur, dev, mem, mem.pools, orig, allocSize, allocAlignMask, ref);
    if (slot < 0) return -1;
    return pool_assign(ref.pool!, slot, orig, allocSize, offset);
  }

  *find(cur: Task, dev: device, tlbAddr: number, out: BounceRef): KernelBody<boolean> {
    const mem = dev.dma_io_tlb_mem;
    if (mem === null) return false;
    cur.thread.sim.count(M_LOOKUP_STEPS, 1);
    const pool = pool_containing(mem.pools, tlbAddr);
    if (pool === null) return false;
    pool_lookup(pool, tlbAddr, out);
    return true;
  }

  *release(cur: Task, dev: device, tlbAddr: number, ref: BounceRef): KernelBody<void> {
    yield* swiotlb_release_slots(cur, dev, dev.dma_io_tlb_mem!, ref.pool!, tlbAddr);
  }

  footprint(st: SwiotlbState): number {
    return st.mem.nslabs * IO_TLB_SIZE;
  }
}

registerSwiotlbPolicy('static', (spec: PolicySpec) => {
  checkPolicyParams(spec, []);
  return new StaticPolicy();
});

