/**
 * `rbtree`: v2 with Catalin Marinas's suggestion (2023-05-16, seeds/002): "You could replace the
 * list with an rbtree, O(log n) look-up vs O(n)". Dynamic buffers (dyn-buffer.ts) sit in a
 * per-device red-black tree keyed by buffer address, under the device's dma_io_tlb_lock taken
 * irqsave; otherwise as v2 (dynamic buffer first, the same refusals, opt-in with swiotlb=dynamic, GFP_NOIO
 * with DMA_ATTR_MAY_SLEEP, the lock skipped while the device has no dynamic buffer).
 *
 * Cost model: a lookup costs one step per tree node visited (RB_NODE_NS each, at most
 * 2 log2(n + 1)); insert and erase rebalance in place and allocate nothing (the node is embedded
 * in io_tlb_dyn_slot).
 */
import type { KernelBody } from '../../../kernel/machine';
import type { device } from '../../device';
import { registerSwiotlbPolicy, type PolicySpec } from '../policy';
import { RbTree, type RbNode } from '../rbtree';
import { DynBufferPolicy, dynParams, type DynDeviceIndex, type DynIndex, type DynParams, type io_tlb_dyn_slot } from './dyn-buffer';

/** Model cost of visiting one tree node (key compare, child pointer). */
export const RB_NODE_NS = 4;

class RbIndex implements DynIndex {
  private readonly tree = new RbTree<io_tlb_dyn_slot>();
  lastSteps = 0;

  get count(): number {
    return this.tree.size;
  }

  lookup(addr: number): io_tlb_dyn_slot | null {
    const n = this.tree.floor(addr);
    this.lastSteps = Math.max(1, this.tree.lastSteps);
    return n !== null && n.value.contains(addr) ? n.value : null;
  }

  *insert(_cur: unknown, b: io_tlb_dyn_slot): KernelBody<boolean> {
    b.node = this.tree.insert(b.base, b);
    return true;
  }

  *remove(_cur: unknown, b: io_tlb_dyn_slot): KernelBody<void> {
    this.tree.erase(b.node as RbNode<io_tlb_dyn_slot>);
    b.node = null;
  }
}

export class RbtreePolicy extends DynBufferPolicy {
  protected readonly skipWhenEmpty = true;
  protected readonly stepNs = RB_NODE_NS;

  constructor(p: DynParams) {
    super('rbtree', p);
  }

  protected newIndex(_m: unknown, dev: device): DynDeviceIndex {
    return { lock: dev.dma_io_tlb_lock, index: new RbIndex(), lockedAt: 0 };
  }
}

// built on v2: opt-in with swiotlb=dynamic as v2 5/7
registerSwiotlbPolicy('rbtree', (spec: PolicySpec) => new RbtreePolicy(dynParams(spec, { maySleepGfp: 'GFP_NOIO', indexLock: 'spin_lock_irqsave', dynamicFirst: true, dynamic: false })));
