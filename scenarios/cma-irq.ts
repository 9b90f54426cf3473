/**
 * CMA from interrupt context (docs/kernel-facts.md §7): cma_alloc takes cma->alloc_mutex and migrates
 * movable pages out of the range, so it sleeps, and it has no GFP argument to say otherwise.
 * A capture driver that grabs its next frame buffer from CMA in its completion interrupt gets
 * the might_sleep splat and a cma_atomic warning; the fix defers the allocation to a worker.
 */
import { runScenarioFile } from '../lib/scenario/self-run';
import { DECLARE_WORK, fn, raise_irq, request_irq, schedule_work, type Task } from '../lib/kernel';
import { cma_alloc, cma_area, cma_declare_contiguous, cma_release, handle_mm_fault, mm_init, mm_prepare, MIB, type MemoryImage } from '../lib/mm';
import { defineScenario } from '../lib/scenario/define';

const scenario = defineScenario({
  id: 'cma-irq',
  name: 'cma_alloc from a hardirq handler versus from a worker',
  description:
    'A camera-like device completes a frame in hardirq; its handler allocates the next frame buffer (frameMiB) from the default CMA area (cmaMiB). buggy: cma_alloc in the handler (might_sleep, cma_atomic); fixed: the handler schedules work and the worker allocates, migrating the movable pages a user task faulted into the area.',
  params: { cpus: 2, memoryMiB: 128, cmaMiB: 16, frameMiB: 4, userMiB: 24 },
  machine: (p) => ({ cpus: Math.max(1, p.cpus) }),
  variants: [
    // lockdep too: alloc_mutex taken in hardirq and in process context is an inconsistent lock state
    { name: 'buggy', expect: { findings: ['might_sleep', 'cma_atomic', 'lockdep'] } },
    { name: 'fixed', expect: { clean: true, metrics: ['mm.cma_alloc'] } },
  ],
  options: { iterations: 50 },
  prepare(p): MemoryImage {
    const image = mm_prepare({ memory: p.memoryMiB * MIB });
    cma_declare_contiguous(image, p.cmaMiB * MIB, 'reserved');
    return image;
  },
  build(m, { variant, params, state }) {
    mm_init(m, { image: state as MemoryImage });
    const pages = (params.frameMiB * MIB) / 4096;
    const allocFrame = (cur: Task) =>
      fn(cur, 'cam_alloc_frame', (function* () {
        const c = cma_area(m);
        const pfn = yield* cma_alloc(cur, c, pages, 8);
        if (pfn >= 0) yield* cma_release(cur, c, pfn, pages);
      })());
    const work = DECLARE_WORK(m, 'cam_refill_work', allocFrame);
    const line = request_irq(m, 0, 'cam_irq', function* (cur) {
      if (variant === 'buggy') yield* allocFrame(cur);
      else yield* schedule_work(cur, work);
    });
    // a user task whose movable pages land in the CMA area, so the allocation has to migrate them
    m.process('app', params.cpus > 1 ? 1 : 0, function* (cur) {
      yield* handle_mm_fault(cur, (params.userMiB * MIB) / 4096);
    });
    m.kthread('cam_stream', 0, function* (cur) {
      yield cur.thread.work(100_000);
      yield* raise_irq(cur, line);
      yield cur.thread.work(100_000);
    });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
