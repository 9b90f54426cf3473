/**
 * S3 (seeds/000, Petr Tesarik's RFC 'swiotlb: Allow dynamic allocation of bounce buffers', 2023-03,
 * quoted in Christoph Hellwig's reply of 2023-03-28): "Software IO TLB is used from interrupt
 * context. The maple tree implementation is not IRQ-safe (MT_FLAGS_LOCK_IRQ does nothing AFAICS).
 * Instead, I use an external lock, spin_lock_irqsave() and spin_unlock_irqrestore()."
 *
 * An NVMe SSD at high queue depth on 4 CPUs, every mapping bounced through a small swiotlb
 * (swiotlb=force, as in a confidential guest), so the boot pool runs out and the RFC gives most
 * mappings a buffer of their own, recorded in the per-device index. Completions unmap in hardirq
 * context on the submitting CPUs (nvme_irq -> blk_mq_complete_request -> nvme_pci_complete_rq ->
 * dma_unmap_sg -> swiotlb_tbl_unmap_single -> lookup_dyn_slot / swiotlb_dyn_unmap). An index lock
 * taken with a plain spin_lock on the map path (process context, IRQs on) and again from the
 * completion interrupt is an IRQ-unsafe lock used in IRQ context: lockdep reports the inconsistent
 * {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage, and the interleaving where the completion interrupt
 * arrives on the CPU holding the lock spins forever (the deadlock detector's wait-for cycle).
 *
 * The `policy` parameter runs the other per-mapping designs with the variant's lock flavour
 * (v2-list and rbtree keep their index under dev->dma_io_tlb_lock: the same bug with spin_lock),
 * or a pool-granular design (static, upstream, chunked-growth: no per-device index lock, so both
 * variants are clean there).
 */
import { runScenarioFile } from '../lib/cli/main';
import { dma_init } from '../lib/dma/init';
import type { PolicySpec } from '../lib/dma/swiotlb/policy';
import { swiotlb_prepare, type SwiotlbImage } from '../lib/dma/swiotlb/setup';
import { fio, nvme_probe, parseSizes } from '../lib/devices/nvme';
import type { CompletionMode } from '../lib/devices/block';
import { mm_init, mm_prepare, MIB, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';

/** The index lock flavour each variant transcribes. */
export const VARIANT_LOCK: Record<string, 'spin_lock' | 'spin_lock_irqsave'> = {
  buggy: 'spin_lock',
  fixed: 'spin_lock_irqsave',
};

/** Designs that keep a per-device index under a lock whose flavour is a parameter. */
export const INDEXED_DESIGNS = ['rfc-dynamic', 'v2-list', 'rbtree'];

/** The swiotlb design a run uses: `policy` with the variant's index lock where the design has one. */
export function policySpec(policy: string, variant: string): PolicySpec {
  return INDEXED_DESIGNS.includes(policy) ? { name: policy, indexLock: VARIANT_LOCK[variant] } : { name: policy };
}

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  restore(): void;
}

// the per-mapping path and its index were exercised (a clean run is not a vacuous one)
const METRICS = ['blk.requests', 'swiotlb.dyn_allocs', 'swiotlb.index_lookups'];

const scenario = defineScenario({
  id: 'S3',
  name: 'swiotlb dynamic-buffer index lock taken from the NVMe completion interrupt: spin_lock vs spin_lock_irqsave',
  description:
    "Claim S3, from Petr Tesarik's RFC 'swiotlb: Allow dynamic allocation of bounce buffers' (2023-03-20, quoted by Christoph Hellwig, seeds/000): the maple tree is not IRQ-safe and swiotlb is used from interrupt context, so the index needs an external spin_lock_irqsave. fio on every CPU keeps iodepth requests in flight on an NVMe device whose mappings all bounce (swiotlb=force) through a 1 MiB pool, so most get a per-mapping buffer recorded in the per-device index (rfc-dynamic: the RFC's maple tree); completions unmap in the hardirq handler on the submitting CPU. buggy: the index lock taken with plain spin_lock in swiotlb_dyn_map (process context, IRQs on) and in lookup_dyn_slot/swiotlb_dyn_unmap from the completion IRQ -> lockdep 'inconsistent lock state' and, where the interrupt hits the CPU holding the lock, a real self-deadlock (confirmed). fixed: spin_lock_irqsave, as the RFC did -> clean. policy=v2-list or rbtree runs the same lock flavours on their per-device lists.",
  params: {
    cpus: 4,
    memoryMiB: 1024,
    poolKiB: 1024,
    queueDepth: 64,
    iodepth: 64,
    requests: 64,
    sizes: '65536*2,131072',
    completion: 'hardirq',
    policy: 'rfc-dynamic',
  },
  // lock_stat and the irqsoff tracer: every run reports lock wait/hold and IRQs-off time per CPU
  machine: (p) => ({ cpus: p.cpus, lockdep: true, lockStat: true, irqsoffTracer: true }),
  variants: [
    { name: 'buggy', expect: { findings: ['lockdep', 'deadlock'] }, confirm: true, options: { iterations: 40 } },
    { name: 'fixed', expect: { clean: true, metrics: METRICS }, options: { iterations: 20 } },
  ],
  // PCT with many change points reaches the interrupt-on-the-holder's-CPU interleaving within a
  // few schedules, and its schedules shrink fast (a random walk's thousands of deviations do not)
  options: { strategy: 'pct', depth: 12 },
  // how often the index lock is taken (in process context and from the completion IRQ), and for how long
  keyMetrics: ['swiotlb.index_lookups', 'swiotlb.dyn_allocs', 'swiotlb.index_lock_hold_ns', 'swiotlb.index_lock_wait_ns'],
  perturbations: [
    { name: 'cpus-2', params: { cpus: 2 } },
    { name: 'cpus-8', params: { cpus: 8, requests: 32 }, scale: 2 },
    { name: 'qd-256', params: { queueDepth: 256, iodepth: 256, requests: 256, memoryMiB: 2048 } },
    { name: 'softirq-completion', params: { completion: 'softirq' } },
    { name: 'ipi-completion', params: { completion: 'ipi' } },
    { name: 'v2-list', params: { policy: 'v2-list' } },
  ],
  prepare(p, variant): Prepared {
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    const swiotlb = swiotlb_prepare(image, { cpus: p.cpus, size: p.poolKiB * 1024, force: true, policy: policySpec(String(p.policy), variant) });
    return { image, swiotlb, restore: () => image.restore() };
  },
  build(m, { params, state }) {
    mm_init(m, { image: state.image });
    dma_init(m, { swiotlb: state.swiotlb });
    const nvme = nvme_probe(m, { queueDepth: params.queueDepth, completion: params.completion as CompletionMode });
    fio(m, nvme, { iodepth: params.iodepth, requests: params.requests, sizes: parseSizes(params.sizes), rw: 'write' });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
