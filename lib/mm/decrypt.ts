/**
 * set_memory_decrypted / set_memory_encrypted (arch/x86/mm/pat/set_memory.c,
 * __set_memory_enc_pgtable; docs/kernel-facts.md §9): converting guest pages between private and shared
 * in a confidential-computing guest.
 *
 * Without memory encryption (mm(m).coco === 'none', cc_platform_has(CC_ATTR_MEM_ENCRYPT) false)
 * both return 0 and do nothing, as upstream. In a CoCo guest, in order:
 *  1. vm_unmap_aliases(): vmap_purge_lock (a mutex: may sleep) and, when lazily freed vmap
 *     areas exist, a kernel TLB flush on every CPU;
 *  2. cpa_flush() when the platform needs a TLB flush before the change (SEV-SNP always; TDX
 *     only for private -> shared), with the cache flush TDX requires: a TLB flush on every CPU
 *     by IPI (on_each_cpu, wait: IRQs must be on) and CLFLUSH of the pages on this CPU;
 *  3. enc_status_change_prepare, 4. the page-table change (C-bit / shared bit) of each page,
 *  5. cpa_flush() again (TLB only), 6. enc_status_change_finish.
 *
 * What the hooks ask of the hypervisor is counted from the range, per platform (conversionCost):
 *  - SEV-SNP (arch/x86/coco/sev/core.c, v6.12: set_pages_state / __set_pages_state /
 *    vmgexit_psc; arch/x86/mm/mem_encrypt_amd.c: amd_enc_status_change_prepare/_finish,
 *    enc_dec_hypercall): to shared, the prepare hook builds page-state-change descriptors of up to
 *    VMGEXIT_PSC_MAX_ENTRY entries (64 since v6.5, "x86/sev: Limit the PSC entries"; 253 before),
 *    one 2M entry per PMD-aligned 2 MiB of the direct map, else one 4K entry per page, and issues
 *    one PSC VMGEXIT per descriptor (the per-CPU GHCB protocol; before the GHCBs exist the MSR
 *    protocol takes one exit per page). PVALIDATE (rescinding before shared, validating after
 *    private) is an instruction, not an exit: counted as mm.pvalidate, no VMM time. To private,
 *    the finish hook does the same PSC. Then, both ways, on KVM with migration control
 *    (arch/x86/kernel/kvm.c, kvm_sev_hc_page_enc_status), enc_dec_hypercall issues one
 *    KVM_HC_MAP_GPA_RANGE hypercall per direct-map mapping unit (lookup_address: 1G, 2M, or 4K once
 *    the conversion split the large page).
 *  - TDX (arch/x86/coco/tdx/tdx.c, v6.12: tdx_enc_status_changed, tdx_map_gpa,
 *    tdx_accept_memory/try_accept_one): one MapGPA TDVMCALL for the whole range (to shared in the
 *    finish hook, to private in the prepare hook; the VMM's RETRY answers are not modelled), and
 *    to private one TDG.MEM.PAGE.ACCEPT per accepted granule (1G, else 2M, else 4K, aligned):
 *    calls to the TDX module, not to the VMM, counted apart (mm.tdx_accepts) and not in
 *    mm.hypercalls.
 * Counters: mm.hypercalls (every exit to the VMM), mm.psc_exits, mm.map_gpa_hypercalls,
 * mm.tdx_accepts, mm.pvalidate, mm.decrypted_pages / mm.encrypted_pages, mm.set_memory_calls.
 * Each exit to the VMM costs mm(m).hypercallNs; a TDX accept is charged the same (not measured).
 *
 * Hypervisor failure: off by default; set_memory_vmm_faults(m, p) makes each exit an
 * injected-fault choice (the engine's FAULT kind, within the hunt's fault budget). A failure
 * WARNs once "CPA VMM failure to convert memory (addr=..., numpages=...) to shared|private: -5"
 * and returns -EIO, as TDX's hooks do (an SEV-SNP guest terminates instead; not modelled).
 *
 * Simplifications: the direct map is taken to map every PMD-aligned 2 MiB (and PUD-aligned 1 GiB)
 * of a converted range with a large page, and anything smaller with 4K pages (a conversion splits
 * the large page; upstream does not merge it back); no page-table allocation for the split;
 * CPA_PAGE_NS (50 ns) per page-table entry changed and CLFLUSH_PAGE_NS (300 ns: 64 CLFLUSHOPT of a
 * 4 KiB page) per page cache-flushed, scaled with the page size.
 */
import { ProgramError } from '../../scheduler';
import { WARN_ON_ONCE } from '../kernel/bug';
import type { KernelBody, Machine } from '../kernel/machine';
import { fn } from '../kernel/stack';
import type { Task } from '../kernel/task';
import { mm } from './mm';
import { fmtAddr } from './slab';
import { flush_tlb_kernel_range, vm_unmap_aliases } from './vmalloc';
import { EIO } from '../kernel/errno';
import { SZ_1G, SZ_2M } from '../kernel/sizes';

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

/** What the guest and the hypervisor offer (set_memory_platform); defaults as on a current KVM host. */
export interface CocoPlatformConfig {
  /** SEV-SNP entries per page-state-change request: 64 since v6.5, 253 before. */
  pscMaxEntry: number;
  /** The per-CPU GHCBs exist (false: early boot's MSR protocol, one exit per page). */
  ghcb: boolean;
  /** KVM advertises KVM_FEATURE_MIGRATION_CONTROL: SEV guests report each change by KVM_HC_MAP_GPA_RANGE. */
  kvmMigrationControl: boolean;
}

export const PSC_MAX_ENTRY = 64;
export const PSC_MAX_ENTRY_BEFORE_6_5 = 253;
const DEFAULT_PLATFORM: CocoPlatformConfig = { pscMaxEntry: PSC_MAX_ENTRY, ghcb: true, kvmMigrationControl: true };
const platforms = new WeakMap<Machine, CocoPlatformConfig>();

export function set_memory_platform(m: Machine, c: Partial<CocoPlatformConfig>): void {
  const cfg = { ...DEFAULT_PLATFORM, ...(platforms.get(m) ?? {}), ...c };
  if (!Number.isInteger(cfg.pscMaxEntry) || cfg.pscMaxEntry < 1) throw new ProgramError(`set_memory_platform: pscMaxEntry must be a positive integer, got ${cfg.pscMaxEntry}`);
  platforms.set(m, cfg);
}

/** What one conversion of [addr, addr + numpages pages) asks of the hypervisor and the TDX module. */
export interface ConversionCost {
  /** SEV-SNP page-state-change entries and the PSC VMGEXITs that carry them. */
  pscEntries: number;
  pscExits: number;
  /** PVALIDATE instructions (SEV-SNP; no exit). */
  pvalidate: number;
  /** KVM_HC_MAP_GPA_RANGE hypercalls (SEV) or MapGPA TDVMCALLs (TDX). */
  mapGpa: number;
  /** TDG.MEM.PAGE.ACCEPT calls to the TDX module (TDX, to private only). */
  accepts: number;
}

/** Split [addr, end) greedily into aligned units of the given sizes, largest first (4K last). */
function units(addr: number, end: number, sizes: number[], pageSize: number): number {
  let n = 0;
  for (let a = addr; a < end; n++) {
    const s = sizes.find((z) => a % z === 0 && end - a >= z) ?? pageSize;
    a += s;
  }
  return n;
}

/**
 * The cost of converting `numpages` pages at `addr` (a direct-map address) to private (`enc`) or
 * shared, on a platform: the counting behind set_memory_*, also used for the boot-time decryption
 * of the swiotlb pool (swiotlb_update_mem_attributes).
 */
export function conversionCost(coco: 'none' | 'sev-snp' | 'tdx', addr: number, numpages: number, pageSize: number, enc: boolean, c: Partial<CocoPlatformConfig> = {}): ConversionCost {
  const cfg = { ...DEFAULT_PLATFORM, ...c };
  const none = { pscEntries: 0, pscExits: 0, pvalidate: 0, mapGpa: 0, accepts: 0 };
  if (coco === 'none' || numpages === 0) return none;
  const end = addr + numpages * pageSize;
  if (coco === 'tdx') {
    // tdx_map_gpa: one MapGPA for the range; tdx_accept_memory: try_accept_one at 1G, 2M, then 4K.
    return { ...none, mapGpa: 1, accepts: enc ? units(addr, end, [SZ_1G, SZ_2M], pageSize) : 0 };
  }
  // __set_pages_state: a 2M entry where the direct map is PMD-aligned with 2 MiB left, else 4K.
  const entries = units(addr, end, [SZ_2M], pageSize);
  const pscExits = cfg.ghcb ? Math.ceil(entries / cfg.pscMaxEntry) : numpages;
  // enc_dec_hypercall: one KVM_HC_MAP_GPA_RANGE per mapping unit lookup_address finds.
  const mapGpa = cfg.kvmMigrationControl ? units(addr, end, [SZ_1G, SZ_2M], pageSize) : 0;
  return { ...none, pscEntries: entries, pscExits, pvalidate: entries, mapGpa };
}

/** The conversion cost with the machine's platform configuration. */
export function machineConversionCost(m: Machine, addr: number, numpages: number, enc: boolean): ConversionCost {
  const model = mm(m);
  return conversionCost(model.coco, addr, numpages, model.phys.pageSize, enc, platforms.get(m) ?? {});
}

/**
 * `n` exits to the VMM (or, for `counter` 'tdx_accepts', calls to the TDX module) made by one hook:
 * their cost, their count, and maybe an injected failure (-EIO).
 */
function* vmmCalls(cur: Task, what: string, n: number, counter: string): KernelBody<number> {
  if (n === 0) return 0;
  const m = cur.cpu.machine;
  const model = mm(m);
  return yield* fn(cur, what, (function* () {
    yield cur.thread.work(n * model.hypercallNs);
    model.count(counter, n);
    if (counter !== 'tdx_accepts') model.count('hypercalls', n);
    const p = vmmFaults.get(m) ?? 0;
    return p > 0 && m.sim.fault(p) ? -EIO : 0;
  })());
}

/** enc_status_change_prepare (`finish` false) or _finish: the platform's calls, in upstream's order. */
function* statusChangeHook(cur: Task, cost: ConversionCost, enc: boolean, finish: boolean): KernelBody<number> {
  const model = mm(cur.cpu.machine);
  if (model.coco === 'tdx') {
    // tdx_enc_status_change_prepare converts to private, _finish to shared.
    if (enc === finish) return 0;
    return yield* fn(cur, 'tdx_enc_status_changed', (function* () {
      const r = yield* vmmCalls(cur, 'tdx_map_gpa', cost.mapGpa, 'map_gpa_hypercalls');
      if (r !== 0 || !enc) return r;
      return yield* vmmCalls(cur, 'tdx_accept_memory', cost.accepts, 'tdx_accepts');
    })());
  }
  // SEV-SNP: shared before the page-table change (prepare), private after it (finish).
  if (enc === finish && cost.pscExits > 0) {
    model.count('pvalidate', cost.pvalidate);
    const r = yield* vmmCalls(cur, enc ? 'snp_set_memory_private' : 'snp_set_memory_shared', cost.pscExits, 'psc_exits');
    if (r !== 0) return r;
  }
  if (!finish) return 0;
  return yield* vmmCalls(cur, 'enc_dec_hypercall', cost.mapGpa, 'map_gpa_hypercalls');
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
    const cost = machineConversionCost(m, addr, numpages, enc);
    let ret = yield* fn(cur, 'enc_status_change_prepare', statusChangeHook(cur, cost, enc, false));
    if (ret === 0) {
      // __change_page_attr_set_clr: the C-bit / shared bit of each page.
      if (numpages > 0) yield cur.thread.work(Math.round((numpages * CPA_PAGE_NS * ps) / 4096));
      yield* cpa_flush(cur, addr, numpages, false);
      ret = yield* fn(cur, 'enc_status_change_finish', statusChangeHook(cur, cost, enc, true));
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
