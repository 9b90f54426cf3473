/**
 * An NVMe SSD at high queue depth on 4 CPUs, every mapping bounced through a small swiotlb
 * (swiotlb=force, as in a confidential guest), under each swiotlb design of the 2023 threads
 * (KERNEL-FACTS 1.12). The pool runs short, so the designs differ where it matters: `static`
 * fails mappings (BLK_STS_RESOURCE, blk-mq requeues); the dynamic designs find room elsewhere.
 * Completions unmap in hardirq context on the submitting CPUs, so a design whose buffer index
 * is taken with a plain spin_lock on the map path (IRQs on) and again from the completion
 * interrupt is an IRQ-unsafe lock used in IRQ context: lockdep says so, and the interleaving
 * where the interrupt arrives on the CPU holding the lock spins forever.
 */
import { runScenarioFile } from '../lib/cli/main';
import { dma_init } from '../lib/dma/init';
import type { PolicySpec } from '../lib/dma/swiotlb/policy';
import { swiotlb_prepare, type SwiotlbImage } from '../lib/dma/swiotlb/setup';
import { fio, nvme_probe } from '../lib/devices/nvme';
import type { CompletionMode } from '../lib/devices/block';
import { mm_init, mm_prepare, MIB, type MemoryImage } from '../lib/mm';
import { ProgramError } from '../scheduler';
import { defineScenario } from '../lib/scenario/define';

/** The design each variant runs (the `policy` parameter overrides the name). */
export const VARIANT_POLICY: Record<string, PolicySpec> = {
  static: { name: 'static' },
  buggy: { name: 'rfc-dynamic', indexLock: 'spin_lock' },
  fixed: { name: 'rfc-dynamic', indexLock: 'spin_lock_irqsave' },
  'v2-list': { name: 'v2-list' },
  rbtree: { name: 'rbtree' },
  upstream: { name: 'upstream' },
  'chunked-growth': { name: 'chunked-growth' },
};

/** "4096*4,65536*2,131072": sizes with integer weights. */
export function parseSizes(s: string): [number, number][] {
  return s.split(',').map((part) => {
    const [size, w] = part.trim().split('*');
    const out: [number, number] = [Number(size), w === undefined ? 1 : Number(w)];
    if (!Number.isSafeInteger(out[0]) || out[0] <= 0 || !Number.isInteger(out[1]) || out[1] < 1) throw new ProgramError(`sizes: bad entry '${part}' (want bytes or bytes*weight)`);
    return out;
  });
}

interface Prepared {
  image: MemoryImage;
  swiotlb: SwiotlbImage;
  restore(): void;
}

const METRICS = ['blk.requests', 'blk.bytes', 'nvme.completions_hardirq'];

const scenario = defineScenario({
  id: 'swiotlb-nvme',
  name: 'NVMe at high queue depth through a small forced swiotlb, per swiotlb design',
  description:
    'fio on every CPU keeps iodepth requests in flight on an NVMe device whose mappings all bounce (swiotlb=force) through a 1 MiB pool; completions unmap in the hardirq handler on the submitting CPU. static: the pool runs out, mappings fail, blk-mq requeues (BLK_STS_RESOURCE). buggy: rfc-dynamic (Tesarik RFC, 2023-03) with a spin_lock index lock: lockdep (IRQ-unsafe lock taken in hardirq) and the deadlock when the completion interrupt hits the CPU holding it; fixed: the same design with spin_lock_irqsave, clean. v2-list, rbtree, upstream, chunked-growth: clean, with their costs as metrics.',
  params: {
    cpus: 4,
    memoryMiB: 1024,
    poolKiB: 1024,
    queueDepth: 64,
    iodepth: 64,
    requests: 64,
    sizes: '65536*2,131072',
    completion: 'hardirq',
    policy: '',
  },
  // lock_stat and the irqsoff tracer: every run reports lock wait/hold and IRQs-off time per CPU
  machine: (p) => ({ cpus: p.cpus, lockdep: true, lockStat: true, irqsoffTracer: true }),
  variants: [
    { name: 'static', expect: { absent: ['lockdep', 'deadlock', 'no_progress'], metrics: ['blk.requests', 'blk.requeues', 'blk.sts_resource'] }, options: { iterations: 5 } },
    { name: 'buggy', expect: { findings: ['lockdep', 'deadlock'] }, options: { strategy: 'pct', stopWhenSeen: ['lockdep', 'deadlock'] } },
    { name: 'fixed', expect: { clean: true, metrics: METRICS } },
    { name: 'v2-list', expect: { clean: true, metrics: METRICS } },
    { name: 'rbtree', expect: { clean: true, metrics: METRICS } },
    { name: 'upstream', expect: { clean: true, metrics: METRICS } },
    // Misses before the worker's chunk arrives fail (swiotlb_full, requeues): the design's gap.
    { name: 'chunked-growth', expect: { absent: ['lockdep', 'deadlock', 'no_progress'], metrics: [...METRICS, 'blk.requeues'] } },
  ],
  options: { iterations: 20 },
  prepare(p, variant): Prepared {
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    const spec = { ...VARIANT_POLICY[variant] };
    if (p.policy !== '') spec.name = String(p.policy);
    const swiotlb = swiotlb_prepare(image, { cpus: p.cpus, size: p.poolKiB * 1024, force: true, policy: spec });
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
