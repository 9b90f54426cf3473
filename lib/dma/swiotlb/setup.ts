/**
 * Boot-time swiotlb (docs/kernel-facts.md §1.3, 9): the size (64 MiB by default; 6% of memory clamped
 * to [64 MiB, 1 GiB] in a CoCo guest), the area count (CPUs rounded up to a power of two), the
 * slot count rounded so every area holds whole segments, and the pool's placement (low memory,
 * or anywhere with SWIOTLB_ANY in a CoCo guest). swiotlb_prepare builds the pool once in a
 * scenario's prepare; swiotlb_init restores it for each run and attaches the design in use.
 */
import { machineConversionCost } from '../../mm/decrypt';
import { ProgramError } from '../../../scheduler';
import type { Machine } from '../../kernel/machine';
import { phys_contents } from '../../mm/contents';
import type { MemoryImage } from '../../mm/image';
import { mmIfPresent } from '../../mm/mm';
import type { PhysMem } from '../../mm/buddy';
import { DEFINE_SPINLOCK } from '../../kernel/spinlock';
import { BOUNCE_BYTES_PER_NS, IO_TLB_DEFAULT_SIZE, IO_TLB_MIN_SLABS, IO_TLB_SEGSIZE, IO_TLB_SHIFT, IO_TLB_SIZE } from './constants';
import { io_tlb_mem, type SearchOrder } from './mem';
import { swiotlb_policy, type PolicySpec } from './policy';
import { io_tlb_pool } from './pool';
import { swiotlb_profile } from './profile';
import { attachSwiotlb, SwiotlbState } from './state';
import './policies';

const MIB = 1 << 20;

/** Hypercalls of the boot pool's one-time decryption in a CoCo guest (swiotlb_update_mem_attributes). */
export const M_BOOT_DECRYPT_HYPERCALLS = 'swiotlb.boot_decrypt_hypercalls';
const GIB = 1 << 30;

export interface SwiotlbOptions {
  /** Pool size in bytes (swiotlb_adjust_size); default 64 MiB, or 6% of memory in a CoCo guest. */
  size?: number;
  /** swiotlb=<nslabs> (overrides size). */
  nslabs?: number;
  /** swiotlb=,<nareas> (default: the CPU count). */
  nareas?: number;
  /** swiotlb=force: every device bounces (implied in a CoCo guest). */
  force?: boolean;
  /** The design (policy.ts); default 'static'. */
  policy?: string | PolicySpec;
  /** The kernel version whose swiotlb runs (profile.ts; default the newest, 6.12). */
  kernel?: string;
  /** Override the profile's search order: area-major (v6.8+) or pool-major (v6.6). */
  searchOrder?: SearchOrder;
  /** Bounce copy speed (default 8 bytes/ns). */
  copyBytesPerNs?: number;
  /** Without a memory model: the pool's physical address (default 16 MiB). */
  base?: number;
}

export interface SwiotlbSizing {
  nslabs: number;
  nareas: number;
  /** What the kernel logs while sizing. */
  messages: string[];
}

function roundupPow2(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

/**
 * The boot sizing rules: nslabs aligned to a segment, the area count from the CPUs (a power
 * of two), then nslabs raised to 128 per area or rounded up to a power of two.
 */
export function swiotlb_sizing(o: { size?: number; nslabs?: number; nareas?: number; cpus: number; cc?: boolean; memory?: number }): SwiotlbSizing {
  const messages: string[] = [];
  let nslabs: number;
  if (o.nslabs !== undefined) {
    if (!Number.isSafeInteger(o.nslabs) || o.nslabs <= 0) throw new ProgramError(`swiotlb nslabs must be a positive integer, got ${o.nslabs}`);
    nslabs = Math.ceil(o.nslabs / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE;
  } else {
    let size = o.size ?? IO_TLB_DEFAULT_SIZE;
    if (o.size === undefined && o.cc && o.memory !== undefined) {
      // mem_encrypt_setup_arch: 6% of memory, at least 64 MiB, at most 1 GiB
      size = Math.min(Math.max(Math.floor((o.memory * 6) / 100), IO_TLB_DEFAULT_SIZE), GIB);
      messages.push(`SWIOTLB bounce buffer size adjusted to ${Math.floor(size / MIB)}MB`);
    }
    if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`swiotlb size must be a positive number of bytes, got ${size}`);
    nslabs = Math.ceil(size / IO_TLB_SIZE / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE;
  }
  const want = o.nareas ?? o.cpus;
  if (!Number.isInteger(want) || want < 0 || want > 1024) throw new ProgramError(`swiotlb nareas must be an integer from 0 to 1024, got ${want}`);
  let nareas = roundupPow2(want);
  if (nslabs < IO_TLB_SEGSIZE * nareas) nslabs = IO_TLB_SEGSIZE * nareas;
  else if ((nslabs & (nslabs - 1)) !== 0) {
    nslabs = roundupPow2(nslabs);
    messages.push(`SWIOTLB bounce buffer size roundup to ${Math.floor((nslabs << IO_TLB_SHIFT) / MIB)}MB`);
  }
  // limit_nareas: every area must hold at least one segment
  if (nslabs < nareas * IO_TLB_SEGSIZE) nareas = nslabs / IO_TLB_SEGSIZE;
  messages.push(`area num ${nareas}.`);
  return { nslabs, nareas, messages };
}

/** A boot pool built once (prepare) and restored for every run. */
export class SwiotlbImage {
  runs = 0;

  constructor(
    readonly pool: io_tlb_pool,
    readonly sizing: SwiotlbSizing,
    readonly opts: SwiotlbOptions,
    readonly cc: boolean,
  ) {}
}

/**
 * memblock_alloc_low for the pool: the highest free, pageblock-aligned range below 4 GiB
 * (anywhere with SWIOTLB_ANY), taken out of the buddy allocator for good. Halves down to
 * IO_TLB_MIN_SLABS when memory is short, as swiotlb_init_remap does.
 */
function placePool(phys: PhysMem, sizing: SwiotlbSizing, any: boolean): { start: number; nslabs: number; messages: string[] } {
  const messages: string[] = [];
  let nslabs = sizing.nslabs;
  const limitPfn = any ? phys.nrPages : Math.min(phys.nrPages, phys.physToPfn(4 * GIB));
  const align = 2 ** phys.pageblockOrder;
  while (nslabs >= IO_TLB_MIN_SLABS) {
    const pages = Math.ceil((nslabs * IO_TLB_SIZE) / phys.pageSize);
    for (let start = Math.floor((limitPfn - pages) / align) * align; start >= 0; start -= align) {
      if (phys.isolateFreeRange(start, pages)) {
        if (nslabs !== sizing.nslabs) messages.push(`SWIOTLB bounce buffer size adjusted ${sizing.nslabs} -> ${nslabs} slabs`);
        messages.push(`software IO TLB: mapped [mem 0x${phys.pfnToPhys(start).toString(16)}-0x${(phys.pfnToPhys(start) + nslabs * IO_TLB_SIZE - 1).toString(16)}] (${Math.floor((nslabs * IO_TLB_SIZE) / MIB)}MB)`);
        return { start: phys.pfnToPhys(start), nslabs, messages };
      }
    }
    nslabs = Math.max(IO_TLB_SEGSIZE, Math.floor(nslabs / 2 / IO_TLB_SEGSIZE) * IO_TLB_SEGSIZE);
    if (nslabs < IO_TLB_MIN_SLABS) break;
  }
  throw new ProgramError(`swiotlb: no room for a ${Math.floor((sizing.nslabs * IO_TLB_SIZE) / MIB)} MiB bounce pool in memory`);
}

function checkOptions(o: SwiotlbOptions): void {
  const known = ['size', 'nslabs', 'nareas', 'force', 'policy', 'kernel', 'searchOrder', 'copyBytesPerNs', 'base'];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new ProgramError(`unknown swiotlb option '${k}' (known: ${known.join(', ')})`);
  if (o.searchOrder !== undefined && o.searchOrder !== 'area-major' && o.searchOrder !== 'pool-major') throw new ProgramError(`swiotlb searchOrder must be area-major or pool-major, got ${String(o.searchOrder)}`);
  swiotlb_profile(o.kernel);
  if (o.copyBytesPerNs !== undefined && !(o.copyBytesPerNs > 0)) throw new ProgramError(`swiotlb copyBytesPerNs must be positive, got ${o.copyBytesPerNs}`);
}

/**
 * Build the boot pool once. With a memory image the pool is carved out of it (and the image
 * re-snapshotted); without one it sits at `base`. `cpus` decides the area count.
 */
export function swiotlb_prepare(image: MemoryImage | null, o: SwiotlbOptions & { cpus: number; cc?: boolean }): SwiotlbImage {
  return prepare(image, o, true);
}

/** `snapshot`: make the carved pool part of the image (prepare); a per-run pool must not be. */
function prepare(image: MemoryImage | null, o: SwiotlbOptions & { cpus: number; cc?: boolean }, snapshot: boolean): SwiotlbImage {
  const { cpus, cc: ccOpt, ...opts } = o;
  checkOptions(opts);
  const cc = ccOpt ?? false;
  const sizing = swiotlb_sizing({ size: opts.size, nslabs: opts.nslabs, nareas: opts.nareas, cpus, cc, memory: image ? image.phys.nrPages * image.phys.pageSize : undefined });
  let start: number;
  let nslabs = sizing.nslabs;
  if (image !== null) {
    const placed = placePool(image.phys, sizing, cc);
    start = placed.start;
    nslabs = placed.nslabs;
    sizing.messages.push(...placed.messages);
    if (snapshot) image.snapshot();
  } else {
    start = opts.base ?? 16 * MIB;
  }
  let nareas = sizing.nareas;
  // a pool halved to fit keeps whole segments per area (largest power of two that fits)
  while (nareas > 1 && nslabs < nareas * IO_TLB_SEGSIZE) nareas /= 2;
  const pool = new io_tlb_pool(start, nslabs, nareas);
  pool.backing = { from: image ? 'memblock' : 'none', pfn: image ? image.phys.physToPfn(start) : -1, order: 0, pages: image ? Math.ceil((nslabs * IO_TLB_SIZE) / image.phys.pageSize) : 0, decrypted: cc };
  pool.snapshot();
  return new SwiotlbImage(pool, { ...sizing, nslabs, nareas }, opts, cc);
}

/**
 * swiotlb_init for a run: restore (or build) the boot pool, make the area locks and the
 * io_tlb_mem, and attach the design. Returns the run's swiotlb.
 */
export function swiotlb_init(m: Machine, src: SwiotlbImage | SwiotlbOptions = {}): SwiotlbState {
  const model = mmIfPresent(m);
  const cc = model !== null && model.coco !== 'none';
  let img: SwiotlbImage;
  if (src instanceof SwiotlbImage) {
    img = src;
    if (img.runs++ > 0) img.pool.restore();
  } else {
    // Built per run: with a memory model, carve from the run's (already restored) image; the
    // next run's restore gives the pages back, so the image's snapshot stays as it was.
    img = prepare(model ? model.image : null, { ...src, cpus: m.cpus.length, cc }, false);
    img.runs = 1;
  }
  const opts = img.opts;
  const pageSize = model ? model.image.phys.pageSize : 4096;
  const mem = new io_tlb_mem(img.pool, pageSize);
  mem.force_bounce = (opts.force ?? false) || cc || img.cc;
  mem.profile = swiotlb_profile(opts.kernel);
  mem.searchOrder = opts.searchOrder ?? mem.profile.searchOrder;
  mem.lock = DEFINE_SPINLOCK(m, 'io_tlb_default_mem.lock');
  img.pool.attach(m, 'io_tlb_default_mem');
  if (cc) {
    // swiotlb_update_mem_attributes (mem_encrypt_init): the boot pool is made shared once, one
    // set_memory_decrypted call over the whole pool (its exits counted as decrypt.ts counts them),
    // before any run's clock starts, and never re-encrypted. Counted apart from mm.hypercalls,
    // which counts the conversions made while the run goes.
    const c = machineConversionCost(m, img.pool.start, Math.ceil((img.pool.end - img.pool.start) / pageSize), false);
    m.sim.count(M_BOOT_DECRYPT_HYPERCALLS, c.pscExits + c.mapGpa);
  }
  const policy = swiotlb_policy(opts.policy ?? 'static');
  const st = new SwiotlbState(m, mem, policy, cc || img.cc, opts.copyBytesPerNs ?? BOUNCE_BYTES_PER_NS, phys_contents(m));
  attachSwiotlb(m, st);
  policy.attach(m, st);
  return st;
}
