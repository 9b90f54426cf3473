/**
 * A swiotlb design behind one interface, so the designs argued about in the threads run the
 * same drivers side by side (docs/design.md, "swiotlb"). map.ts does what every design
 * shares (size and alignment arithmetic, the bounce copies, the "buffer is full" report,
 * stats); a policy decides where a bounce buffer comes from, how it is found again, and how it
 * is given back, and counts what that costs:
 *
 *   static          the boot pool only (no CONFIG_SWIOTLB_DYNAMIC)
 *   rfc-dynamic     Tesarik RFC (2023-03): a per-mapping buffer on a miss, indexed per device
 *   v2-list         Tesarik v2: per-device list under a spinlock, most recently used first
 *   rbtree          Marinas's suggestion: the per-device index as an rbtree
 *   chunked-growth  Hellwig's suggestion: a worker adds chunks past a reserve threshold
 *   upstream        v6.6+ CONFIG_SWIOTLB_DYNAMIC: growth pools + transient pools
 */
import { ProgramError } from '../../../scheduler';
import type { KernelBody, Machine } from '../../kernel/machine';
import type { Task } from '../../kernel/task';
import type { device } from '../device';
import type { io_tlb_pool } from './pool';
import type { SwiotlbState } from './state';

/** Where a bounce address points (filled by a policy's find; reused, never allocated per call). */
export class BounceRef {
  /** The pool holding it, or null for a per-mapping buffer. */
  pool: io_tlb_pool | null = null;
  /** Original address corresponding to the bounce address (INVALID_PHYS_ADDR: none). */
  orig = -1;
  /** Bytes of the mapping from the bounce address's slot on (the slot's alloc_size). */
  remaining = 0;
  /** A per-mapping design's own record of the buffer. */
  rec: unknown = null;
}

/** A design's parameters: its name plus its own knobs (validated by the factory). */
export interface PolicySpec {
  name: string;
  [param: string]: unknown;
}

export interface SwiotlbPolicy {
  readonly name: string;
  /** The parameters in effect (defaults filled in), for reports. */
  readonly params: Readonly<Record<string, unknown>>;
  /**
   * Once per run, after the default pool and its locks exist: make the design's locks, work
   * items and per-device state on this machine.
   */
  attach(m: Machine, st: SwiotlbState): void;
  /**
   * Room for a bounce buffer (swiotlb_find_slots and what the design does on a miss):
   * `allocSize` bytes already include `offset` (orig & min_align_mask & (alloc_align_mask |
   * 2047)). The design records `orig` for each data slot and returns tlb_addr (the bounce
   * address matching `orig`, offset included), or -1 when it has no room. Never blocks unless
   * the design says so (rfc-dynamic with DMA_ATTR_MAY_SLEEP).
   */
  map(cur: Task, dev: device, orig: number, allocSize: number, offset: number, allocAlignMask: number, attrs: number): KernelBody<number>;
  /**
   * is_swiotlb_buffer + the slot lookup: whether `tlbAddr` is one of `dev`'s bounce buffers,
   * filling `out`. Counts its lookup steps.
   */
  find(cur: Task, dev: device, tlbAddr: number, out: BounceRef): KernelBody<boolean>;
  /** Give back the buffer `find` resolved into `ref` (swiotlb_release_slots / free). */
  release(cur: Task, dev: device, tlbAddr: number, ref: BounceRef): KernelBody<void>;
  /** Bytes of bounce memory the design holds now (pools, chunks, per-mapping buffers). */
  footprint(st: SwiotlbState): number;
}

export type PolicyFactory = (spec: PolicySpec) => SwiotlbPolicy;

const factories = new Map<string, PolicyFactory>();

export function registerSwiotlbPolicy(name: string, factory: PolicyFactory): void {
  factories.set(name, factory);
}

export function swiotlbPolicyNames(): string[] {
  return [...factories.keys()].sort();
}

/** Build a design from its name or spec. */
export function swiotlb_policy(spec: string | PolicySpec): SwiotlbPolicy {
  const s: PolicySpec = typeof spec === 'string' ? { name: spec } : spec;
  const f = factories.get(s.name);
  if (f === undefined) throw new ProgramError(`unknown swiotlb policy '${s.name}' (known: ${swiotlbPolicyNames().join(', ')})`);
  return f(s);
}

/** Reject unknown parameters of a spec (a typo must not silently run the default). */
export function checkPolicyParams(spec: PolicySpec, known: readonly string[]): void {
  for (const k of Object.keys(spec)) {
    if (k !== 'name' && !known.includes(k)) throw new ProgramError(`swiotlb policy ${spec.name}: unknown parameter '${k}' (known: ${known.join(', ') || 'none'})`);
  }
}
