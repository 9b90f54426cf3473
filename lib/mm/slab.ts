/**
 * The slab allocator (SLUB-like): kmalloc size classes and named caches carved out of pages
 * from the page allocator, kmalloc_large for sizes past KMALLOC_MAX_CACHE_SIZE, and kmalloc'd
 * KObjects (lib/kernel/object.ts) backed by slab memory.
 *
 * Addresses: a slab object's address is its page's direct-map address plus its offset, as
 * page_address() gives it: PAGE_OFFSET + phys. Addresses are numbers, so PAGE_OFFSET is the low
 * 48 bits of x86-64's 0xffff888000000000 (printed with the ffff prefix by fmtAddr).
 *
 * What follows upstream (mm/slub.c, mm/slab_common.c):
 * - slab_pre_alloc_hook calls might_alloc(gfp) on every allocation, so a GFP_KERNEL kmalloc in
 *   atomic context splats even when the cache has a free object;
 * - the slab order comes from calculate_order (below), a new slab is tried at that order with
 *   __GFP_NOWARN|__GFP_NORETRY and without __GFP_RECLAIM (plus __GFP_NOMEMALLOC) when the
 *   caller could reclaim, then at the minimum order (one object) with the caller's gfp;
 * - kmalloc(0) returns ZERO_SIZE_PTR (16), which kfree accepts as it accepts NULL;
 * - kmalloc_large: order get_order(size) straight from the page allocator with __GFP_COMP
 *   (an order past MAX_PAGE_ORDER fails there, warning unless __GFP_NOWARN);
 * - a failed new slab prints slab_out_of_memory's "SLUB: Unable to allocate memory" lines.
 *
 * Simplifications:
 * - no per-CPU slabs or per-CPU partial lists: one "current" slab per cache, then the node
 *   partial list in FIFO order, then a new slab; objects come off a LIFO freelist per slab;
 * - the fast path takes no visible step (the per-CPU freelist cmpxchg is CPU-local); only the
 *   page allocator's calls can block;
 * - min_partial: at most one empty slab stays per cache, a further empty slab goes back to the
 *   page allocator at once (upstream keeps min_partial = 5..10 partial slabs per node);
 * - no object contents, red zones, poisoning, KFENCE or KASAN quarantine: a freed object is
 *   reusable at once;
 * - a kfree of an address that is not an allocated object is a model error (ProgramError), not a
 *   SLUB debug report.
 */
import { ProgramError } from '../../scheduler';
import { WARN } from '../kernel/bug';
import { might_alloc } from '../kernel/fs-reclaim';
import { __GFP_COMP, __GFP_DIRECT_RECLAIM, __GFP_NOFAIL, __GFP_NOMEMALLOC, __GFP_NORETRY, __GFP_NOWARN, __GFP_RECLAIM, __GFP_ZERO, gfpName } from '../kernel/gfp';
import type { KernelBody, Machine } from '../kernel/machine';
import { kfree as kobject_free, kmalloc_cache_name, kobject_alloc, isKObject, type KObject } from '../kernel/object';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { get_order } from '../kernel/sizes';
import { mm } from './mm';
import { __free_pages, alloc_pages } from './page-alloc';

/** Low 48 bits of x86-64's direct map base (0xffff888000000000). */
export const PAGE_OFFSET = 0x888000000000;
/** kmalloc(0) returns this; kfree ignores it (ZERO_OR_NULL_PTR). */
export const ZERO_SIZE_PTR = 16;
/** Largest size served by kmalloc caches (2 * PAGE_SIZE with 4K pages: kmalloc-8k). */
export const KMALLOC_MAX_CACHE_SIZE = 8192;
/** SIZE_MAX on a 64-bit kernel, for kmalloc_array's overflow check. */
const SIZE_MAX = 2 ** 64 - 1;
/** slub_max_order default: PAGE_ALLOC_COSTLY_ORDER. */
const SLUB_MAX_ORDER = 3;
/** MAX_OBJS_PER_PAGE: objects per slab are counted in 15 bits. */
const MAX_OBJS_PER_PAGE = 32767;
/** The kmalloc size classes (KMALLOC_MIN_SIZE 8, x86-64), as object.ts names them. */
const KMALLOC_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];

/** get_order lives in lib/kernel/sizes.ts (include/asm-generic/getorder.h); re-exported for importers. */
export { get_order };

/** "ffff888100042000": a kernel address as the kernel prints it. */
export function fmtAddr(addr: number): string {
  return `ffff${addr.toString(16).padStart(12, '0')}`;
}

/** fls(x): 1-based index of the most significant set bit, 0 for 0. */
function fls(x: number): number {
  return x <= 0 ? 0 : Math.floor(Math.log2(x)) + 1;
}

/**
 * calculate_order (mm/slub.c, v6.8+): min_objects = 4 * (fls(nr_cpus) + 1), capped by what a
 * slub_max_order slab holds; start at the order that fits min_objects, and take the first order
 * up to slub_max_order whose leftover is at most 1/16, 1/8, 1/4 of the slab; else the order of
 * one object. With 4K pages and 2 CPUs (min_objects 12): kmalloc-8 .. kmalloc-256 order 0,
 * kmalloc-512 order 1, kmalloc-1k order 2, kmalloc-2k, -4k and -8k order 3 (8 CPUs,
 * min_objects 20: kmalloc-256 order 1) -- as /proc/slabinfo shows on such machines.
 */
export function calculate_order(size: number, pageSize: number, nrCpus: number): number {
  const orderObjects = (order: number): number => Math.floor((pageSize * 2 ** order) / size);
  let minObjects = 4 * (fls(nrCpus) + 1);
  const maxObjects = Math.max(orderObjects(SLUB_MAX_ORDER), 1);
  minObjects = Math.min(minObjects, maxObjects);
  const minOrder = get_order(minObjects * size, pageSize);
  if (orderObjects(minOrder) > MAX_OBJS_PER_PAGE) return get_order(size * MAX_OBJS_PER_PAGE, pageSize) - 1;
  for (let fraction = 16; fraction > 1; fraction /= 2) {
    let order = minOrder;
    for (; order <= SLUB_MAX_ORDER; order++) {
      const slabSize = pageSize * 2 ** order;
      if (slabSize % size <= slabSize / fraction) break;
    }
    if (order <= SLUB_MAX_ORDER) return order;
  }
  return get_order(size, pageSize);
}

/** One slab: 2^order pages holding `objects` objects of the cache's size. */
export class Slab {
  inuse = 0;
  /** Free object indices; the last one is handed out next (SLUB's LIFO freelist). */
  readonly freelist: number[] = [];
  /** Which object indices are allocated. */
  readonly used: Uint8Array;
  constructor(
    readonly cache: kmem_cache,
    readonly pfn: number,
    readonly order: number,
    readonly objects: number,
    /** Direct-map address of the first page. */
    readonly base: number,
  ) {
    this.used = new Uint8Array(objects);
    for (let i = objects - 1; i >= 0; i--) this.freelist.push(i);
  }
}

/** struct kmem_cache: one object size, its slab orders and its slabs. */
export class kmem_cache {
  /** s->oo: the preferred slab order and objects per slab; s->min: the order of one object. */
  readonly order: number;
  readonly objects: number;
  readonly minOrder: number;
  readonly minObjects: number;
  /** The slab objects are taken from first (the model's stand-in for the CPU slab). */
  current: Slab | null = null;
  /** Slabs with free objects, oldest first (the node partial list). */
  readonly partial: Slab[] = [];
  /** Every slab of the cache, by head pfn. */
  readonly slabs = new Map<number, Slab>();
  /** Statistics (slabinfo and metrics). */
  nrSlabs = 0;
  activeObjs = 0;
  allocs = 0;
  frees = 0;
  failures = 0;
  /** Slabs allocated at the minimum order after the preferred order failed (ORDER_FALLBACK). */
  orderFallbacks = 0;

  constructor(
    readonly m: Machine,
    readonly name: string,
    /** s->object_size (what the caller asked for). */
    readonly objectSize: number,
    /** s->size: the object size rounded up to its alignment (8 bytes). */
    readonly size: number,
    pageSize: number,
  ) {
    this.order = calculate_order(size, pageSize, m.cpus.length);
    this.objects = Math.floor((pageSize * 2 ** this.order) / size);
    this.minOrder = get_order(size, pageSize);
    this.minObjects = Math.floor((pageSize * 2 ** this.minOrder) / size);
  }

  toString(): string {
    return this.name;
  }
}

interface SlabState {
  readonly kmalloc: (kmem_cache | undefined)[];
  readonly caches: kmem_cache[];
  /** Every page of every slab -> its slab (objects are found from their page). */
  readonly pageSlab: Map<number, Slab>;
  /** kmalloc_large allocations: head pfn -> order. */
  readonly large: Map<number, number>;
  /** kmalloc_obj's objects, both ways. */
  readonly objAddr: WeakMap<KObject<object>, number>;
  readonly addrObj: Map<number, KObject<object>>;
  pages: number;
}

const states = new WeakMap<Machine, SlabState>();

function state(m: Machine): SlabState {
  let s = states.get(m);
  if (s !== undefined) return s;
  s = { kmalloc: [], caches: [], pageSlab: new Map(), large: new Map(), objAddr: new WeakMap(), addrObj: new Map(), pages: 0 };
  states.set(m, s);
  const st = s;
  // The slab's own bookkeeping, as the workqueue's is on `sleep`: whichever path frees a
  // kmalloc_obj object (kfree, kfree_rcu's callback), its slab memory goes back with it, once.
  m.addHooks({
    objectFree(cur: Task, obj: unknown) {
      if (!isKObject(obj) || obj.frees !== 1) return;
      const addr = st.objAddr.get(obj);
      if (addr === undefined) return;
      st.addrObj.delete(addr);
      st.objAddr.delete(obj);
      freeAddr(cur, st, addr, 'kfree');
    },
  });
  return s;
}

function pageSizeOf(m: Machine): number {
  return mm(m).phys.pageSize;
}

/** page_address(pfn): the direct-map address of a page. */
export function page_address(m: Machine, pfn: number): number {
  return PAGE_OFFSET + mm(m).phys.pfnToPhys(pfn);
}

/** virt_to_pfn(addr) for a direct-map address. */
export function virt_to_pfn(m: Machine, addr: number): number {
  return mm(m).phys.physToPfn(addr - PAGE_OFFSET);
}

/** kmalloc_index: which kmalloc cache serves `size` (1..KMALLOC_MAX_CACHE_SIZE). */
function kmallocIndex(size: number): number {
  for (let i = 0; i < KMALLOC_SIZES.length; i++) if (size <= KMALLOC_SIZES[i]) return i;
  throw new ProgramError(`kmalloc: no cache for ${size} bytes`);
}

/** The kmalloc-N cache serving `size` bytes (created on first use). */
export function kmalloc_cache(m: Machine, size: number): kmem_cache {
  const st = state(m);
  const i = kmallocIndex(size);
  let c = st.kmalloc[i];
  if (c === undefined) {
    const sz = KMALLOC_SIZES[i];
    c = new kmem_cache(m, kmalloc_cache_name(sz), sz, sz, pageSizeOf(m));
    st.kmalloc[i] = c;
    st.caches.push(c);
  }
  return c;
}

/** kmem_cache_create(name, size, align 8, flags 0, ctor NULL). */
export function kmem_cache_create(m: Machine, name: string, size: number): kmem_cache {
  if (!Number.isSafeInteger(size) || size <= 0) throw new ProgramError(`kmem_cache_create(${name}): size must be a positive integer, got ${size}`);
  const ps = pageSizeOf(m);
  const aligned = Math.ceil(size / 8) * 8;
  if (aligned > ps * 2 ** mm(m).phys.maxOrder) throw new ProgramError(`kmem_cache_create(${name}): object of ${size} bytes exceeds MAX_PAGE_ORDER`);
  const c = new kmem_cache(m, name, size, aligned, ps);
  state(m).caches.push(c);
  return c;
}

/** Every cache of the machine (kmalloc caches once used, and created caches). */
export function slab_caches(m: Machine): readonly kmem_cache[] {
  return state(m).caches;
}

/** /proc/slabinfo's columns for one cache. */
export interface SlabInfo {
  name: string;
  active_objs: number;
  num_objs: number;
  objsize: number;
  objperslab: number;
  pagesperslab: number;
  num_slabs: number;
}

export function slabinfo(m: Machine): SlabInfo[] {
  return state(m).caches.map((c) => {
    let num = 0;
    for (const s of c.slabs.values()) num += s.objects;
    return { name: c.name, active_objs: c.activeObjs, num_objs: num, objsize: c.size, objperslab: c.objects, pagesperslab: 2 ** c.order, num_slabs: c.nrSlabs };
  });
}

/** Pages the slab allocator holds now (slabs and kmalloc_large). */
export function slab_pages(m: Machine): number {
  return state(m).pages;
}

/** alloc_slab_page: one attempt at `order`; -1 on failure. */
function* allocSlabPage(cur: Task, gfp: number, order: number): KernelBody<number> {
  return yield* fn(cur, 'alloc_slab_page', alloc_pages(cur, gfp, order));
}

/** allocate_slab / new_slab: a slab at the preferred order, else at the minimum order. */
function* newSlab(cur: Task, s: kmem_cache, gfp: number): KernelBody<Slab | null> {
  const m = s.m;
  const flags = gfp | __GFP_COMP; // s->allocflags
  let order = s.order;
  let objects = s.objects;
  // Let the higher order fail under memory pressure rather than reclaim for it.
  let allocGfp = (flags | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL;
  if ((allocGfp & __GFP_DIRECT_RECLAIM) !== 0 && s.order > s.minOrder) allocGfp = (allocGfp | __GFP_NOMEMALLOC) & ~__GFP_RECLAIM;
  let pfn = yield* allocSlabPage(cur, allocGfp, order);
  if (pfn < 0) {
    // allocate_slab retries at s->min with the caller's own flags even when that is the same
    // order: the first try had __GFP_NORETRY, which a small GFP_KERNEL allocation must not keep.
    order = s.minOrder;
    objects = s.minObjects;
    pfn = yield* allocSlabPage(cur, flags, order);
    if (pfn >= 0) s.orderFallbacks++;
  }
  if (pfn < 0) return null;
  const st = state(m);
  const slab = new Slab(s, pfn, order, objects, page_address(m, pfn));
  for (let i = 0; i < 2 ** order; i++) st.pageSlab.set(pfn + i, slab);
  s.slabs.set(pfn, slab);
  s.nrSlabs++;
  st.pages += 2 ** order;
  mm(m).count('slabs');
  m.sim.peak('mm.slab_pages', st.pages);
  return slab;
}

/** discard_slab: the slab's pages go back to the page allocator. */
function discardSlab(cur: Task, slab: Slab): void {
  const s = slab.cache;
  const st = state(s.m);
  for (let i = 0; i < 2 ** slab.order; i++) st.pageSlab.delete(slab.pfn + i);
  s.slabs.delete(slab.pfn);
  s.nrSlabs--;
  st.pages -= 2 ** slab.order;
  __free_pages(cur, slab.pfn, slab.order);
}

/** Take one object from `slab` (which has a free one). */
function takeObject(slab: Slab): number {
  const i = slab.freelist.pop()!;
  slab.used[i] = 1;
  slab.inuse++;
  slab.cache.activeObjs++;
  return slab.base + i * slab.cache.size;
}

/** The slab to allocate from: the current one, else the oldest partial slab. */
function usableSlab(s: kmem_cache): Slab | null {
  if (s.current !== null && s.current.freelist.length > 0) return s.current;
  while (s.partial.length > 0) {
    const p = s.partial.shift()!;
    if (p.freelist.length > 0 && s.slabs.get(p.pfn) === p) {
      s.current = p;
      return p;
    }
  }
  return null;
}

/** slab_out_of_memory: the ratelimited SLUB message (unless __GFP_NOWARN). */
function slabOutOfMemory(cur: Task, s: kmem_cache, gfp: number): void {
  const m = s.m;
  if (gfp & __GFP_NOWARN) return;
  if (!m.log.ratelimit('slab_out_of_memory', 5_000_000_000, 10)) return;
  const ps = pageSizeOf(m);
  m.log.printk(
    cur.cpu.id,
    [
      `SLUB: Unable to allocate memory on node -1, gfp=0x${gfp.toString(16)}(${gfpName(gfp)})`,
      `  cache: ${s.name}, object size: ${s.objectSize}, buffer size: ${s.size}, default order: ${s.order}, min order: ${s.minOrder}`,
      `  node 0: slabs: ${s.nrSlabs}, objs: ${[...s.slabs.values()].reduce((a, x) => a + x.objects, 0)}, free: ${[...s.slabs.values()].reduce((a, x) => a + x.freelist.length, 0)} (page size ${ps})`,
    ].join('\n'),
  );
}

/** slab_alloc_node: might_alloc, then an object from a slab with room or from a new slab. */
function* slabAlloc(cur: Task, s: kmem_cache, gfp: number): KernelBody<number> {
  const m = s.m;
  yield* might_alloc(cur, gfp); // slab_pre_alloc_hook: on every allocation
  let slab = usableSlab(s);
  if (slab === null) {
    const fresh = yield* fn(cur, '___slab_alloc', newSlab(cur, s, gfp));
    if (fresh === null) {
      // Another context may have freed objects while this one was in the page allocator.
      slab = usableSlab(s);
      if (slab === null) {
        s.failures++;
        mm(m).count('kmalloc_fail');
        slabOutOfMemory(cur, s, gfp);
        return 0;
      }
    } else {
      // Others may have refilled the cache meanwhile: the new slab is a partial slab then.
      const other = usableSlab(s);
      if (other !== null) s.partial.push(fresh);
      else s.current = fresh;
      slab = other ?? fresh;
    }
  }
  s.allocs++;
  mm(m).count('kmalloc');
  m.emit('alloc', cur, 'slab', s.size, gfp);
  return takeObject(slab);
}

/** Return an object to its slab; an empty slab beyond the one kept goes back to the page allocator. */
function slabFree(cur: Task, slab: Slab, index: number): void {
  const s = slab.cache;
  const wasFull = slab.freelist.length === 0;
  slab.used[index] = 0;
  slab.freelist.push(index);
  slab.inuse--;
  s.activeObjs--;
  s.frees++;
  if (slab.inuse === 0) {
    // min_partial, simplified: keep one empty slab (the current one, or one on the partial list).
    let empties = 0;
    for (const x of s.slabs.values()) if (x.inuse === 0 && x !== slab) empties++;
    if (empties >= 1) {
      if (s.current === slab) s.current = null;
      const k = s.partial.indexOf(slab);
      if (k >= 0) s.partial.splice(k, 1);
      discardSlab(cur, slab);
      return;
    }
  }
  if (wasFull && slab !== s.current) s.partial.push(slab);
}

/** The slab and object index of a slab address, or null with the reason. */
function findObject(st: SlabState, m: Machine, addr: number): { slab: Slab; index: number } | string {
  if (addr < PAGE_OFFSET) return 'not a direct-map address';
  const slab = st.pageSlab.get(virt_to_pfn(m, addr));
  if (slab === undefined) return 'not in a slab page';
  const off = addr - slab.base;
  const index = off / slab.cache.size;
  if (!Number.isInteger(index) || index >= slab.objects) return `not the start of a ${slab.cache.name} object (offset ${off} in the slab)`;
  if (slab.used[index] === 0) return `a free ${slab.cache.name} object (double free?)`;
  return { slab, index };
}

/** Free a kmalloc / kmem_cache / kmalloc_large address (not NULL, not ZERO_SIZE_PTR). */
function freeAddr(cur: Task, st: SlabState, addr: number, how: string): void {
  const m = cur.cpu.machine;
  if (addr >= PAGE_OFFSET) {
    const pfn = virt_to_pfn(m, addr);
    const order = st.large.get(pfn);
    if (order !== undefined && addr === page_address(m, pfn)) {
      st.large.delete(pfn);
      st.pages -= 2 ** order;
      __free_pages(cur, pfn, order);
      return;
    }
  }
  const o = findObject(st, m, addr);
  if (typeof o === 'string') throw new ProgramError(`${how}(${fmtAddr(addr)}) from ${cur.comm} at ${cur.site}: ${o}`);
  slabFree(cur, o.slab, o.index);
}

function checkSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new ProgramError(`${what}: size must be a non-negative integer, got ${size}`);
}

/**
 * kmalloc_large (__kmalloc_large_node): order get_order(size) from the page allocator with
 * __GFP_COMP; no might_alloc of its own (the page allocator's covers it).
 */
export function* kmalloc_large(cur: Task, size: number, gfp: number): KernelBody<number> {
  checkSize(size, 'kmalloc_large');
  return yield* fn(cur, '__kmalloc_large_node', (function* () {
    const m = cur.cpu.machine;
    const order = get_order(size, pageSizeOf(m));
    const pfn = yield* alloc_pages(cur, gfp | __GFP_COMP, order);
    if (pfn < 0) {
      mm(m).count('kmalloc_fail');
      return 0;
    }
    const st = state(m);
    st.large.set(pfn, order);
    st.pages += 2 ** order;
    m.sim.peak('mm.slab_pages', st.pages);
    mm(m).count('kmalloc');
    mm(m).count('kmalloc_large');
    return page_address(m, pfn);
  })());
}

/**
 * kmalloc(size, gfp): an object of the kmalloc-N cache serving `size`, ZERO_SIZE_PTR for 0, a
 * kmalloc_large block past KMALLOC_MAX_CACHE_SIZE; 0 (NULL) on failure. A negative size is a
 * model error (size_t cannot be negative; a wrapped one would just fail).
 */
export function* kmalloc(cur: Task, size: number, gfp: number): KernelBody<number> {
  checkSize(size, 'kmalloc');
  if (size > KMALLOC_MAX_CACHE_SIZE) return yield* kmalloc_large(cur, size, gfp);
  if (size === 0) return ZERO_SIZE_PTR;
  const s = kmalloc_cache(cur.cpu.machine, size);
  return yield* fn(cur, '__kmalloc', slabAlloc(cur, s, gfp));
}

/** kzalloc: kmalloc with __GFP_ZERO (the model keeps no contents). */
export function* kzalloc(cur: Task, size: number, gfp: number): KernelBody<number> {
  return yield* kmalloc(cur, size, gfp | __GFP_ZERO);
}

/** kmalloc_array(n, size, gfp): NULL when n * size overflows size_t. */
export function* kmalloc_array(cur: Task, n: number, size: number, gfp: number): KernelBody<number> {
  checkSize(n, 'kmalloc_array');
  checkSize(size, 'kmalloc_array');
  const bytes = n * size;
  if (bytes > SIZE_MAX) return 0;
  if (!Number.isSafeInteger(bytes)) throw new ProgramError(`kmalloc_array(${n}, ${size}): product beyond the model's integer range`);
  return yield* kmalloc(cur, bytes, gfp);
}

/** kcalloc: a zeroed kmalloc_array. */
export function* kcalloc(cur: Task, n: number, size: number, gfp: number): KernelBody<number> {
  return yield* kmalloc_array(cur, n, size, gfp | __GFP_ZERO);
}

/** kmem_cache_alloc(cache, gfp): 0 (NULL) on failure. */
export function* kmem_cache_alloc(cur: Task, s: kmem_cache, gfp: number): KernelBody<number> {
  if (s.m !== cur.cpu.machine) throw new ProgramError(`kmem_cache_alloc(${s.name}): cache of another machine`);
  return yield* fn(cur, 'kmem_cache_alloc', slabAlloc(cur, s, gfp));
}

/** kmem_cache_zalloc. */
export function* kmem_cache_zalloc(cur: Task, s: kmem_cache, gfp: number): KernelBody<number> {
  return yield* kmem_cache_alloc(cur, s, gfp | __GFP_ZERO);
}

/**
 * kmem_cache_free(cache, addr): an object of another cache is freed to its own cache after the
 * kernel's warning (cache_from_obj: "Wrong slab cache").
 */
export function* kmem_cache_free(cur: Task, s: kmem_cache, addr: number): KernelBody<void> {
  if (addr === 0) return;
  const st = state(cur.cpu.machine);
  const o = findObject(st, cur.cpu.machine, addr);
  if (typeof o === 'string') throw new ProgramError(`kmem_cache_free(${s.name}, ${fmtAddr(addr)}) from ${cur.comm} at ${cur.site}: ${o}`);
  yield* fn(cur, 'kmem_cache_free', (function* () {
    if (o.slab.cache !== s) WARN(cur, true, `cache_from_obj: Wrong slab cache. ${s.name} but object is from ${o.slab.cache.name}`);
    slabFree(cur, o.slab, o.index);
  })());
}

/**
 * kfree(p): NULL and ZERO_SIZE_PTR are no-ops; a KObject from kmalloc_obj (or its address) is
 * freed as lib/kernel/object.ts frees objects (a visible write, the lifetime hooks, double-free
 * detection), its memory going back through the objectFree hook; any other address must be an
 * allocated slab object or kmalloc_large block.
 */
export function* kfree(cur: Task, p: number | KObject<object> | null): KernelBody<void> {
  if (p === null || p === 0 || p === ZERO_SIZE_PTR) return;
  const st = state(cur.cpu.machine);
  if (typeof p !== 'number') {
    yield* kobject_free(cur, p);
    return;
  }
  const obj = st.addrObj.get(p);
  if (obj !== undefined) {
    yield* kobject_free(cur, obj);
    return;
  }
  freeAddr(cur, st, p, 'kfree');
}

/** kfree_obj: kfree of a kmalloc_obj object. */
export const kfree_obj = (cur: Task, obj: KObject<object> | null): KernelBody<void> => kfree(cur, obj);

/** ksize(p): the usable size of an allocation (its cache's object size, or the whole block). */
export function ksize(m: Machine, p: number): number {
  if (p === 0 || p === ZERO_SIZE_PTR) return 0;
  const st = state(m);
  const pfn = virt_to_pfn(m, p);
  const order = st.large.get(pfn);
  if (order !== undefined) return pageSizeOf(m) * 2 ** order;
  const o = findObject(st, m, p);
  if (typeof o === 'string') throw new ProgramError(`ksize(${fmtAddr(p)}): ${o}`);
  return o.slab.cache.size;
}

/** The slab address of a kmalloc_obj object (0 once it is freed). */
export function kobject_addr(m: Machine, obj: KObject<object>): number {
  return state(m).objAddr.get(obj) ?? 0;
}

/**
 * kmalloc(sizeof(struct name), gfp) as a KObject: the object model's lifetime tracking (READ_ONCE,
 * WRITE_ONCE, RCU, KASAN-style reports) over real slab memory. `size` defaults to 8 bytes per
 * field. Returns null when the allocation fails. The KObject keeps its own printed address
 * (object.ts assigns it); kobject_addr gives the slab address.
 */
export function* kmalloc_obj<F extends object>(cur: Task, name: string, fields: F, size: number | undefined, gfp: number): KernelBody<KObject<F> | null> {
  const m = cur.cpu.machine;
  const bytes = size ?? Math.max(8, Object.keys(fields).length * 8);
  const addr = yield* kmalloc(cur, bytes, gfp);
  if (addr === 0) return null;
  const obj = kobject_alloc(m, name, fields, { size: bytes, cur });
  const st = state(m);
  st.objAddr.set(obj as KObject<object>, addr);
  st.addrObj.set(addr, obj as KObject<object>);
  return obj;
}

/** kzalloc_obj with a gfp and an allocator behind it (kmalloc_obj with __GFP_ZERO). */
export function* kzalloc_obj_gfp<F extends object>(cur: Task, name: string, fields: F, size: number | undefined, gfp: number): KernelBody<KObject<F> | null> {
  return yield* kmalloc_obj(cur, name, fields, size, gfp | __GFP_ZERO);
}
