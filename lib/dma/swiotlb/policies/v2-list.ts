/**
 * `v2-list`: Tesarik's v2 (2023-04-19, RESEND 2023-05-09; docs/kernel-facts.md §1.12). Off unless the
 * kernel was booted with swiotlb=dynamic (v2 5/7; the `dynamic` parameter, default false: then it
 * is the static pool). Dynamic buffers, tried before the pool for mappings swiotlb_dyn_map accepts
 * (dyn-buffer.ts), sit on a per-device list under the device's dma_io_tlb_lock taken irqsave; a
 * lookup walks it from the front and moves the hit to the front (most recently used first), so a
 * buffer looked up repeatedly (sync, then unmap) is found in one step. Blocking allocations use
 * GFP_NOIO with DMA_ATTR_MAY_SLEEP (after Hellwig's deadlock remark). A per-device "has dynamic
 * buffers" flag (v2 patch 7/7) lets lookups skip the lock while the list is empty.
 *
 * Cost model: a lookup costs one step per list node visited (LIST_NODE_NS each); unmap walks
 * again under the lock (lookup_dyn_slot_locked) before list_del.
 */
import type { KernelBody } from '../../../kernel/machine';
import type { device } from '../../device';
import { registerSwiotlbPolicy, type PolicySpec } from '../policy';
import { DynBufferPolicy, dynParams, type DynDeviceIndex, type DynIndex, type DynParams, type io_tlb_dyn_slot } from './dyn-buffer';

/** Model cost of visiting one list node (load, two bound compares, next pointer). */
export const LIST_NODE_NS = 4;

class ListIndex implements DynIndex {
  /** Front first (list_add puts new buffers at the head). */
  private readonly list: io_tlb_dyn_slot[] = [];
  lastSteps = 0;

  get count(): number {
    return this.list.length;
  }

  lookup(addr: number, mru: boolean): io_tlb_dyn_slot | null {
    const l = this.list;
    for (let i = 0; i < l.length; i++) {
      if (l[i].contains(addr)) {
        this.lastSteps = i + 1;
        const b = l[i];
        if (mru && i > 0) {
          // list_move to the head
          l.copyWithin(1, 0, i);
          l[0] = b;
        }
        return b;
      }
    }
    this.lastSteps = l.length;
    return null;
  }

  *insert(_cur: unknown, b: io_tlb_dyn_slot): KernelBody<boolean> {
    this.list.unshift(b);
    return true;
  }

  *remove(_cur: unknown, b: io_tlb_dyn_slot): KernelBody<void> {
    const i = this.list.indexOf(b);
    if (i >= 0) this.list.splice(i, 1);
  }
}

export class V2ListPolicy extends DynBufferPolicy {
  protected readonly skipWhenEmpty = true;
  protected readonly stepNs = LIST_NODE_NS;
  protected override readonly mru = true;

  constructor(p: DynParams) {
    super('v2-list', p);
  }

  protected newIndex(_m: unknown, dev: device): DynDeviceIndex {
    return { lock: dev.dma_io_tlb_lock, index: new ListIndex(), lockedAt: 0 };
  }
}

// v2 5/7: dynamic buffers only with swiotlb=dynamic on the command line (`dynamic: true`)
registerSwiotlbPolicy('v2-list', (spec: PolicySpec) => new V2ListPolicy(dynParams(spec, { maySleepGfp: 'GFP_NOIO', indexLock: 'spin_lock_irqsave', dynamicFirst: true, dynamic: false })));
