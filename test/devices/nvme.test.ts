import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { GFP_KERNEL } from '../../lib/kernel/gfp';
import type { Machine } from '../../lib/kernel/machine';
import type { Task } from '../../lib/kernel/task';
import { dma_init } from '../../lib/dma/init';
import { swiotlb_prepare } from '../../lib/dma/swiotlb/setup';
import { fio, nvme_probe, parseSizes, sizePattern, type FioJob, type NvmeDevice } from '../../lib/devices/nvme';
import { COMPLETION_MODES, REQ_OP_READ, REQ_OP_WRITE, request, type CompletionMode } from '../../lib/devices/block';
import { alloc_pages, mm, mm_prepare, MIB, phys_contents, page_to_phys } from '../../lib/mm';
import { memProgram } from '../support/memory';

const counters = (r: RunResult) => r.metrics.counters ?? {};
const kinds = (r: RunResult) => r.findings.map((f) => `${f.kind}: ${f.headline}`);

describe('devices: NVMe-like block device', () => {
  it('sizePattern spreads a weighted mix deterministically', () => {
    expect(sizePattern([[4096, 2], 65536])).to.deep.equal([4096, 65536, 4096]);
    expect(sizePattern([4096])).to.deep.equal([4096]);
    expect(() => sizePattern([-1])).to.throw('positive integer');
  });

  for (const mode of COMPLETION_MODES) {
    it(`completes every request with completion in ${mode}, where that mode says`, () => {
      const where: string[] = [];
      let jobs: FioJob[] = [];
      let dev: NvmeDevice | null = null;
      const p = memProgram(`nvme-${mode}`, { cpus: 2, memory: 256 * MIB }, (m) => {
        dma_init(m);
        where.length = 0;
        dev = nvme_probe(m, { completion: mode, queueDepth: 8 });
        jobs = fio(m, dev, { iodepth: 4, requests: 12, sizes: [[4096, 2], 65536, 131072] });
        // one more submitter that records where its completions ran
        m.process('probe', 1, function* (cur: Task) {
          const pfn = yield* alloc_pages(cur, GFP_KERNEL, 0);
          for (let i = 0; i < 3; i++) {
            const rq = new request(REQ_OP_READ, pfn, 0, 4096, 1 << 20);
            rq.end_io = (c) => where.push(`${c.cpu.id} ${c.context}`);
            yield* dev!.submit(cur, rq);
          }
        });
      });
      for (const window of [Infinity, 0]) {
        const r = runIteration(p, { iteration: 1, window });
        expect(kinds(r)).to.deep.equal([]);
        const c = counters(r);
        expect(c['blk.requests']).to.equal(2 * 12 + 3);
        expect(c[`nvme.completions_${mode}`]).to.equal(2 * 12 + 3);
        expect(c['blk.requeues'] ?? 0).to.equal(0);
        for (const j of jobs) expect([j.completed, j.inflight]).to.deep.equal([12, 0]);
        expect(dev!.completed).to.equal(27);
      }
      // the last run's probe completions (submitted on CPU 1)
      expect(where).to.have.length(3);
      const want: Record<CompletionMode, string> = {
        hardirq: '1 hardirq nvme0q2',
        softirq: '1 softirq BLOCK',
        ipi: '1 hardirq call_function_ipi', // the interrupt goes to CPU 0, the IPI brings it back
      };
      for (const w of where) expect(w).to.equal(want[mode]);
    });
  }

  it('a mapping failure requeues (BLK_STS_RESOURCE) and every request still completes once the pool drains', () => {
    const image = mm_prepare({ memory: 256 * MIB });
    const sw = swiotlb_prepare(image, { cpus: 2, size: 1 * MIB, force: true });
    let jobs: FioJob[] = [];
    let dev: NvmeDevice | null = null;
    const p = memProgram('nvme-requeue', { cpus: 2, image }, (m) => {
      dma_init(m, { swiotlb: sw });
      dev = nvme_probe(m, { queueDepth: 16 });
      jobs = fio(m, dev, { iodepth: 16, requests: 24, sizes: [131072, 65536] });
    });
    for (const r of [runIteration(p, { iteration: 0, window: 0 }), runIteration(p, { iteration: 3 })]) {
      const c = counters(r);
      expect(r.findings.map((f) => f.kind).filter((k) => k !== 'swiotlb_full')).to.deep.equal([]);
      expect(c['blk.sts_resource']).to.be.greaterThan(0);
      expect(c['blk.requeues']).to.equal(c['blk.sts_resource']);
      expect(c['blk.requests']).to.equal(48);
      expect(dev!.completed).to.equal(48);
      for (const j of jobs) expect([j.completed, j.inflight]).to.deep.equal([24, 0]);
      expect(c['swiotlb.maps']).to.equal(c['swiotlb.unmaps']);
    }
  });

  it('moves the bytes through the bounce buffers when contents are tracked', () => {
    const image = mm_prepare({ memory: 256 * MIB });
    const sw = swiotlb_prepare(image, { cpus: 1, size: 4 * MIB, force: true });
    let back: number[] = [];
    const p = memProgram('nvme-data', { cpus: 1, image }, (m: Machine) => {
      dma_init(m, { swiotlb: sw, data: true });
      const dev = nvme_probe(m, {});
      m.process('dd', 0, function* (cur: Task) {
        const a = yield* alloc_pages(cur, GFP_KERNEL, 4);
        const b = yield* alloc_pages(cur, GFP_KERNEL, 4);
        const pc = phys_contents(m)!;
        for (let i = 0; i < 16; i++) pc.fill(page_to_phys(m, a) + i * 4096, 4096, i + 1);
        let done = 0;
        const w = new request(REQ_OP_WRITE, a, 0, 65536, 800);
        w.end_io = () => done++;
        yield* dev.submit(cur, w);
        while (done < 1) yield cur.thread.work(10_000);
        const r = new request(REQ_OP_READ, b, 0, 65536, 800);
        r.end_io = () => done++;
        yield* dev.submit(cur, r);
        while (done < 2) yield cur.thread.work(10_000);
        back = [];
        for (let i = 0; i < 16; i++) back.push(pc.read(page_to_phys(m, b) + i * 4096 + 7, 1)[0]);
      });
    });
    const r = runIteration(p, { iteration: 0, window: 0 });
    expect(kinds(r)).to.deep.equal([]);
    expect(back).to.deep.equal(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(counters(r)['swiotlb.bounce_bytes']).to.be.at.least(2 * 65536);
  });

  it('is the swap device: reclaim under memory pressure swaps out through it', () => {
    let dev: NvmeDevice | null = null;
    let freeAfter = 0;
    let high = 0;
    const p = memProgram(
      'nvme-swap',
      {
        cpus: 2,
        memory: 64 * MIB,
        processes: [{ comm: 'db', anon: 64 * MIB - 40 * 4096 }],
        swapDevice: (m) => {
          dma_init(m);
          return (dev = nvme_probe(m, { queueDepth: 8 }));
        },
      },
      (m) => {
        m.process('app', 1, function* (cur: Task) {
          for (let i = 0; i < 32; i++) yield* alloc_pages(cur, GFP_KERNEL, 0); // kswapd and direct reclaim
          yield cur.thread.work(300_000_000);
          const model = mm(m);
          freeAfter = model.nrFree();
          high = model.phys.zones.reduce((s, z) => s + z.watermark[2], 0);
        });
      },
    );
    const r = runIteration(p, { iteration: 0, window: 0 });
    expect(kinds(r)).to.deep.equal([]);
    const c = counters(r);
    expect(c['mm.pswpout']).to.be.greaterThan(0);
    expect(c['blk.requests']).to.be.greaterThan(0);
    expect(c['nvme.completions_hardirq']).to.equal(c['blk.requests']);
    expect(dev!.completed).to.equal(c['blk.requests']);
    expect(freeAfter).to.be.greaterThan(high);
  });

  it('rejects bad options', () => {
    const p = memProgram('nvme-bad', { cpus: 2, memory: 64 * MIB }, (m) => {
      dma_init(m);
      nvme_probe(m, { queues: 3 });
    });
    expect(() => runIteration(p, { iteration: 0 })).to.throw('queues must be an integer from 1 to 2');
    const q = memProgram('nvme-bad2', { cpus: 2, memory: 64 * MIB }, (m) => {
      dma_init(m);
      nvme_probe(m, { queueDepht: 3 } as never);
    });
    expect(() => runIteration(q, { iteration: 0 })).to.throw("unknown nvme option 'queueDepht'");
  });

  it('parseSizes reads a size mix parameter and names a bad entry', () => {
    expect(parseSizes('4096*4, 65536*2,131072')).to.deep.equal([[4096, 4], [65536, 2], [131072, 1]]);
    expect(() => parseSizes('4096,-1')).to.throw("sizes: bad entry '-1'");
    expect(() => parseSizes('4096*0')).to.throw("bad entry '4096*0'");
  });
});
