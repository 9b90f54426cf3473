/**
 * `rfc-dynamic`: Tesarik's RFC v1 (2023-03-20, KERNEL-FACTS 1.12). When the boot pool has no
 * room, the mapping gets its own buffer (dyn-buffer.ts) recorded in a maple tree under an
 * external lock. Blocking allocations use GFP_KERNEL with DMA_ATTR_MAY_SLEEP (maySleepGfp, the
 * RFC's choice; Hellwig: "Without GFP_NOIO allocations this will deadlock eventually").
 *
 * The index lock's flavour is a parameter: spin_lock_irqsave (default, what the RFC did, since
 * unmap runs from hardirq completion) or spin_lock, the bug in which a completion interrupt
 * landing on the CPU that holds the lock in process context spins forever (lockdep reports the
 * inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage first).
 *
 * Cost model of the maple tree: a lookup walks ceil(log16 n) levels (at least one) of fanout-16
 * nodes at MAPLE_LEVEL_NS each; every store allocates a node (kmalloc of MAPLE_NODE_BYTES with
 * GFP_NOWAIT under the lock, as mtree_store_range was called) and may fail, failing the mapping;
 * an erase frees one. Every lookup of an address outside the pool takes the lock, even on a
 * device without dynamic buffers (the overhead Hellwig objected to).
 *
 * Simplified: one index per device (the RFC had one per io_tlb_mem; v2 moved it per device); the
 * node bookkeeping is one node per entry instead of the maple tree's real splits and RCU frees.
 */
import { GFP_NOWAIT, __GFP_NOWARN } from '../../../kernel/gfp';
import type { KernelBody, Machine } from '../../../kernel/machine';
import type { Task } from '../../../kernel/task';
import { kfree, kmalloc } from '../../../mm/slab';
import type { device } from '../../device';
import { registerSwiotlbPolicy, type PolicySpec } from '../policy';
import { RbTree, type RbNode } from '../rbtree';
import { DynBufferPolicy, dynIndexLock, dynParams, type DynDeviceIndex, type DynIndex, type DynParams, type io_tlb_dyn_slot } from './dyn-buffer';

/** sizeof(struct maple_node). */
export const MAPLE_NODE_BYTES = 256;
/** Model cost of searching one fanout-16 node (pivot scan). */
export const MAPLE_LEVEL_NS = 12;
export const M_MAPLE_NODES = 'swiotlb.maple_node_allocs';

/** ceil(log16 n), at least 1: the levels a lookup walks. */
export function mapleLevels(n: number): number {
  let levels = 1;
  for (let cap = 16; cap < n; cap *= 16) levels++;
  return levels;
}

class MapleIndex implements DynIndex {
  private readonly tree = new RbTree<io_tlb_dyn_slot>();
  private readonly nodes: number[] = [];
  lastSteps = 0;

  get count(): number {
    return this.tree.size;
  }

  lookup(addr: number): io_tlb_dyn_slot | null {
    this.lastSteps = mapleLevels(this.tree.size);
    const n = this.tree.floor(addr);
    return n !== null && n.value.contains(addr) ? n.value : null;
  }

  *insert(cur: Task, b: io_tlb_dyn_slot): KernelBody<boolean> {
    const node = yield* kmalloc(cur, MAPLE_NODE_BYTES, GFP_NOWAIT | __GFP_NOWARN);
    if (node === 0) return false;
    cur.thread.sim.count(M_MAPLE_NODES, 1);
    this.nodes.push(node);
    b.node = this.tree.insert(b.base, b);
    return true;
  }

  *remove(cur: Task, b: io_tlb_dyn_slot): KernelBody<void> {
    this.tree.erase(b.node as RbNode<io_tlb_dyn_slot>);
    b.node = null;
    const node = this.nodes.pop();
    if (node !== undefined) yield* kfree(cur, node);
  }
}

export class RfcDynamicPolicy extends DynBufferPolicy {
  protected readonly skipWhenEmpty = false;
  protected readonly stepNs = MAPLE_LEVEL_NS;

  constructor(p: DynParams) {
    super('rfc-dynamic', p);
  }

  protected newIndex(m: Machine, dev: device): DynDeviceIndex {
    return { lock: dynIndexLock(m, dev, '&dev->dma_io_tlb_dyn_lock'), index: new MapleIndex(), lockedAt: 0 };
  }
}

registerSwiotlbPolicy('rfc-dynamic', (spec: PolicySpec) => new RfcDynamicPolicy(dynParams(spec, { maySleepGfp: 'GFP_KERNEL', indexLock: 'spin_lock_irqsave', dynamicFirst: false })));
