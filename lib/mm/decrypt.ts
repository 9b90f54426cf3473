/**
 * set_memory_decrypted / set_memory_encrypted (arch/x86/mm/pat/set_memory.c,
 * __set_memory_enc_pgtable; KERNEL-FACTS 9): converting guest pages between private and shared
 * in a confidential-computing guest.
 *
 * Without memory encryption (mm(m).coco === 'none', cc_platform_has(CC_ATTR_MEM_ENCRYPT) false)
 * both return 0 and do nothing, as upstream. In a CoCo guest, in order:
 *  1. vm_unmap_aliases(): vmap_purge_lock (a mutex: may sleep) and, when lazily freed vmap
 *     areas exist, a kernel TLB flush on every CPU;
 *  2. cpa_flush() when the platform needs a TLB flush before the change (SEV-SNP always; TDX
 *     only for private -> shared), with the cache flush TDX requires: a TLB flush on every CPU
 *     by IPI (on_each_cpu, wait: IRQs must be on) and CLFLUSH of the pages on this CPU;
 *  3. enc_status_change_prepare: one hypercall (mm(m).hypercallNs);
 *  4. the page-table change (C-bit / shared bit) for each page;
 *  5. cpa_flush() again (TLB only), then enc_status_change_finish: one more hypercall.
 * Counters: mm.hypercalls, mm.decrypted_pages / mm.encrypted_pages, mm.set_memory_calls.
 *
 * Hypervisor failure: off by default; set_memory_vmm_faults(m, p) makes each hypercall an
 * injected-fault choice (the engine's FAULT kind, within the hunt's fault budget). A failure
 * WARNs once "CPA VMM failure to convert memory (addr=..., numpages=...) to shared|private: -5"
 * and returns -EIO, as TDX's hooks do (an SEV-SNP guest terminates instead; not modelled).
 *
 * Simplifications: one hypercall per hook whatever the page count (SNP batches page-state
 * changes up to 253 entries per GHCB request; TDX MapGPA covers the range, with TDG.MEM.PAGE.ACCEPT
 * per page when converting back to private: not charged); no large-page split (which would
 * allocate page tables); CPA_PAGE_NS (50 ns) per page-table entry changed and CLFLUSH_PAGE_NS
 * (300 ns: 64 CLFLUSHOPT of a 4 KiB page) per page cache-flushed, scaled with the page size.
 */
import { ProgramError } from '../../scheduler';
import { WARN_ON_ONCE } from '../kernel/bug';
import type { KernelBody, Machine } from '../kernel/machine';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { mm } from './mm';
import { fmtAddr } from './slab';
import { flush_tlb_kernel_range, vm_unmap_aliases } from './vmalloc';

export const EIO = 5;
/** Changing one page-table entry (and its split bookkeeping) on this CPU. */
export const CPA_PAGE_NS = 50;
/** CLFLUSHOPT of one 4 KiB page (64 lines). */
export const CLFLUSH_PAGE_NS = 300;

const vmmFaults = new WeakMap<Machine, number>();

/** Let each conversion hypercall fail with probability `p` as an injected fault (0 = never). */
export function set_memory_vmm_faults(m: Machine, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new ProgramError(`set_memory_vmm_faults: probability must be in [0, 1], got ${p}`);
  vmmFaults.set(m, p);
}

/** One page-state hypercall: its cost, its count, and maybe an injected failure (-EIO). */
function* hypercall(cur: Task, what: string): KernelBody<number> {
  const m = cur.cpu.machine;
  const model = mm(m);
  return yield* fn(cur, what, (function* () {
    yield cur.thread.work(model.hypercallNs);
    model.count('hypercalls');
    const p = vmmFaults.get(m) ?? 0;
    return p > 0 && m.sim.fault(p) ? -EIO : 0;
  })());
}

/**
 * cpa_flush(data, cache): the TLB flush on every CPU (flush_tlb_all past the single-page
 * ceiling, else the range: on_each_cpu with wait), then CLFLUSH of the pages here if `cache`.
 */
function* cpa_flush(cur: Task, addr: number, numpages: number, cache: boolean): KernelBody<void> {
  const ps = mm(cur.cpu.machine).phys.pageSize;
  yield* fn(cur, 'cpa_flush', (function* () {
    yield* flush_tlb_kernel_range(cur, addr, addr + numpages * ps);
    if (cache && numpages > 0) yield cur.thread.work(Math.round((numpages * CLFLUSH_PAGE_NS * ps) / 4096));
  })());
}

function* setMemoryEnc(cur: Task, addrIn: number, numpages: number, enc: boolean): KernelBody<number> {
  const m = cur.cpu.machine;
  const model = mm(m);
  if (!Number.isSafeInteger(numpages) || numpages < 0) throw new ProgramError(`set_memory_${enc ? 'encrypted' : 'decrypted'}: numpages must be a non-negative integer, got ${numpages}`);
  if (model.coco === 'none') return 0; // !cc_platform_has(CC_ATTR_MEM_ENCRYPT)
  return yield* fn(cur, '__set_memory_enc_pgtable', (function* () {
    const ps = model.phys.pageSize;
    let addr = addrIn;
    if (WARN_ON_ONCE(cur, addr % ps !== 0, `misaligned address: 0x${addr.toString(16)}`)) addr -= addr % ps;
    model.count('set_memory_calls');
    yield* vm_unmap_aliases(cur); // kmap_flush_unused() has nothing to do on x86-64
    // enc_tlb_flush_required / enc_cache_flush_required, per platform.
    const tdx = model.coco === 'tdx';
    const tlbFirst = tdx ? !enc : true;
    const cache = tdx; // SEV-SNP parts are SME_COHERENT
    if (tlbFirst) yield* cpa_flush(cur, addr, numpages, cache);
    let ret = yield* hypercall(cur, 'enc_status_change_prepare');
    if (ret === 0) {
      // __change_page_attr_set_clr: the C-bit / shared bit of each page.
      if (numpages > 0) yield cur.thread.work(Math.round((numpages * CPA_PAGE_NS * ps) / 4096));
      yield* cpa_flush(cur, addr, numpages, false);
      ret = yield* hypercall(cur, 'enc_status_change_finish');
    }
    if (ret !== 0) {
      WARN_ON_ONCE(cur, true, `CPA VMM failure to convert memory (addr=${fmtAddr(addr)}, numpages=${numpages}) to ${enc ? 'private' : 'shared'}: ${ret}`);
      model.count('set_memory_failures');
      return ret;
    }
    model.count(enc ? 'encrypted_pages' : 'decrypted_pages', numpages);
    return 0;
  })());
}

/** set_memory_decrypted(addr, numpages): make the pages shared with the host. 0 or -errno. */
export function* set_memory_decrypted(cur: Task, addr: number, numpages: number): KernelBody<number> {
  return yield* fn(cur, 'set_memory_decrypted', setMemoryEnc(cur, addr, numpages, false));
}

/** set_memory_encrypted(addr, numpages): make the pages private again. 0 or -errno. */
export function* set_memory_encrypted(cur: Task, addr: number, numpages: number): KernelBody<number> {
  return yield* fn(cur, 'set_memory_encrypted', setMemoryEnc(cur, addr, numpages, true));
}
