/**
 * The kernel model's hook points. Detectors (lib/check) subscribe to them and emit findings;
 * they observe, they never change what the model does, and they never throw. One model part
 * subscribes too: the workqueue's wq_worker_sleeping, on `sleep`, as the scheduler calls it.
 */
import type { Cpu } from './cpu';
import type { Lock } from './lock';
import type { Machine } from './machine';
import type { KObject } from './object';
import type { Task } from './task';

/**
 * A MachineOptions key (a symbol, so the program hash, which hashes options by their string
 * keys, never sees it): called with the new Machine at the end of its constructor, before the
 * detectors and the scenario's build. A tracer subscribes there: an observed run hashes, and so
 * replays, exactly as an unobserved one.
 */
export const MACHINE_OBSERVER: unique symbol = Symbol('irqsim.machineObserver');
export type MachineObserver = (m: Machine) => void;

/**
 * The records of the hooks that lib/mm and lib/dma emit, by hook name. The kernel layer cannot
 * import those folders (they sit above it), so it declares the interface empty and each folder
 * adds its entries by declaration merging, next to the record's type:
 *
 *   declare module '../kernel/hooks' { interface HookPayloads { allocFailure: AllocFailureInfo } }
 *
 * A detector that imports the record's type sees the hook typed, and needs no cast.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface, @typescript-eslint/no-empty-object-type
export interface HookPayloads {}

/** The record of hook K, or `unknown` in a program that does not load the layer defining it. */
export type HookPayload<K extends string> = K extends keyof HookPayloads ? HookPayloads[K] : unknown;

/** What an `alloc` hook reports: the page allocator, a slab object, CMA, a DMA mapping or buffer. */
export type AllocKind = 'pages' | 'slab' | 'cma' | 'dma_map' | 'dma_map_sg' | 'dma_alloc';

export interface KernelHooks {
  /** A sleeping primitive was entered (the kernel's might_sleep()). */
  mightSleep?(cur: Task, where: string): void;
  /** The task is about to give up its CPU to sleep (the kernel's schedule()). */
  schedule?(cur: Task, where: string): void;
  /** A hardirq or softirq over the idle task tried to schedule ("bad: scheduling from the idle thread!"). */
  idleSchedule?(cur: Task): void;
  /** The task has given up its CPU and sleeps (TASK_UNINTERRUPTIBLE) from now. */
  sleep?(cur: Task): void;
  /** The sleep ended (the task was woken and goes back to waiting for its CPU). */
  sleepEnd?(cur: Task): void;
  /** wake_up_process: `task` is made runnable (by whatever runs now: a task, a timer). */
  wakeup?(task: Task): void;
  /** A context switch on `cpu`: `next` runs from now (null: the idle task). */
  cpuSwitch?(cpu: Cpu, prev: Task | null, next: Task | null): void;
  /** An acquisition is attempted (before waiting), and when it succeeds. */
  lockAcquire?(cur: Task, lock: Lock, how: string, trylock: boolean): void;
  lockAcquired?(cur: Task, lock: Lock, how: string): void;
  lockRelease?(cur: Task, lock: Lock, how: string): void;
  /** Memory holding these locks is freed or re-initialised (debug_check_no_locks_freed). */
  locksFreed?(cur: Task, locks: Lock[], why: string): void;
  /** A write hold became a read hold (downgrade_write; lockdep's lock_downgrade). */
  lockDowngrade?(cur: Task, lock: Lock): void;
  /** rcu_read_lock / rcu_read_unlock (after the nesting count changed). */
  rcuReadLock?(cur: Task): void;
  rcuReadUnlock?(cur: Task): void;
  /**
   * Generic hooks for the object-lifetime and RCU models (lib/kernel/object.ts, rcu.ts): an
   * object accessed, dereferenced under RCU, freed, or a grace-period event. rcuDereference
   * carries whatever the rcu_pointer holds (a scenario's own value, or null), hence `unknown`.
   */
  objectAccess?(cur: Task, obj: KObject<object>, how: 'read' | 'write'): void;
  rcuDereference?(cur: Task, obj: unknown): void;
  objectFree?(cur: Task, obj: KObject<object>, how: string): void;
  rcuGracePeriod?(event: 'start' | 'end', id: number): void;
  /**
   * Context changes (irq_enter / irq_exit, a softirq vector's action starting / returning), for
   * tracers and coverage. At hardirqEnter, `cur.held` still lists what the interrupted context
   * holds.
   */
  hardirqEnter?(cur: Task, irq: string): void;
  hardirqExit?(cur: Task, irq: string): void;
  softirqEnter?(cur: Task, vec: string): void;
  softirqExit?(cur: Task, vec: string): void;
  /** A cross-CPU function call is issued. */
  crossCall?(cur: Task, how: 'single' | 'many' | 'each', targets: Cpu[], wait: boolean): void;
  /**
   * The memory model (lib/mm): an allocation that failed (after the slow path gave up), the OOM
   * killer picking a victim, and cma_alloc being entered. `info` is the model's record
   * (HookPayloads, merged in by lib/mm/page-alloc.ts, oom.ts, cma.ts).
   */
  allocFailure?(cur: Task, info: HookPayload<'allocFailure'>): void;
  /**
   * An allocation that succeeded: `bytes` (the block for `pages`, the object size for `slab`,
   * the mapped length for DMA), with its GFP flags (0 where the API takes none).
   */
  alloc?(cur: Task, kind: AllocKind, bytes: number, gfp: number): void;
  oomKill?(cur: Task, info: HookPayload<'oomKill'>): void;
  cmaAlloc?(cur: Task, info: HookPayload<'cmaAlloc'>): void;
  /**
   * The DMA layer (lib/dma): swiotlb found no room for a bounce buffer ("swiotlb buffer is
   * full"), DMA-API debug caught a misuse (or a WARN of the mapping path), and iommu_map
   * refused a request. `info` is the DMA layer's record (HookPayloads, merged in by
   * lib/dma/swiotlb/map.ts, debug.ts, iommu/iommu.ts).
   */
  swiotlbFull?(cur: Task, info: HookPayload<'swiotlbFull'>): void;
  /** swiotlb slots were taken or given back: `state` is the machine's SwiotlbState. */
  swiotlbUsage?(cur: Task, state: HookPayload<'swiotlbUsage'>): void;
  dmaDebug?(cur: Task | null, info: HookPayload<'dmaDebug'>): void;
  iommuMap?(cur: Task, info: HookPayload<'iommuMap'>): void;
}

export type HookName = keyof KernelHooks;
