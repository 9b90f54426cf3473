import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import type { Machine } from '../../lib/kernel/machine';
import { msleep } from '../../lib/kernel/sched';
import { fn } from '../../lib/kernel/stack';
import type { Task } from '../../lib/kernel/task';
import {
  DMA_ATTR_NO_WARN,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  device_register,
  dma_init,
  iommu_domain_alloc,
  iommu_map,
  IOMMU_READ,
  PGSIZE_64K,
  swiotlb_map,
  swiotlb_prepare,
  type device,
  type DmaWarnInfo,
} from '../../lib/dma';
import { MIB, mm_prepare } from '../../lib/mm';
import { memProgram } from '../support/memory';

const img = mm_prepare({ memory: 64 * MIB });
const sw = swiotlb_prepare(img, { cpus: 1, size: MIB });

/** A 1 MiB swiotlb (512 slots, one area) filled by four 256 KiB mappings, then `body`. */
function run(body: (cur: Task, dev: device, m: Machine) => Generator<unknown, void, unknown>): RunResult {
  const p = memProgram('check-dma', { image: img, cpus: 1 }, (m) => {
    dma_init(m, { swiotlb: sw });
    const dev = device_register(m, { name: '0000:03:00.0', dmaBits: 32 });
    m.kthread('fio', 0, function* (cur) {
      yield* fn(cur, 'nvme_queue_rq', (function* () {
        for (let i = 0; i < 4; i++) {
          const a = yield* swiotlb_map(cur, dev, 0x1000000 + i * 0x40000, 0x40000, DMA_TO_DEVICE, 0);
          if (a === DMA_MAPPING_ERROR) throw new Error('setup: the pool should hold four 256 KiB mappings');
        }
        yield* body(cur, dev, m);
      })());
    });
  });
  return runIteration(p, { iteration: 0 });
}

const of = (r: RunResult, kind: string) => r.findings.filter((f) => f.kind === kind);

describe('check/dma: swiotlb_full, dma_debug warnings, iommu_map', () => {
  it('25 failures within one virtual second: one finding counting 25, 10 printed (dev_warn_ratelimited 10 per 5 s)', () => {
    const r = run(function* (cur, dev) {
      for (let i = 0; i < 25; i++) yield* swiotlb_map(cur, dev, 0x2000000, 4096, DMA_TO_DEVICE, 0);
    });
    const f = of(r, 'swiotlb_full');
    expect(f.length).to.equal(1);
    expect(f[0].count).to.equal(25);
    expect(f[0].loggedCount).to.equal(10);
    expect(f[0].time).to.be.lessThan(1e9);
    expect(f[0].text).to.equal('0000:03:00.0: swiotlb buffer is full (sz: 4096 bytes), total 512 (slots), used 512 (slots)');
    expect(f[0].headline).to.equal(f[0].text);
    expect(f[0].fingerprint).to.equal('swiotlb_full:0000:03:00.0:static');
    expect(f[0].data).to.deep.include({ dev: '0000:03:00.0', size: 4096, total: 512, used: 512, policy: 'static' });
    expect(r.metrics.counters?.['swiotlb.full']).to.equal(25);
    expect(r.metrics.counters?.['swiotlb.full_printed']).to.equal(10);
  });

  it('the ratelimit window reopens after 5 s: 15 + 15 failures print 10 + 10', () => {
    const r = run(function* (cur, dev) {
      for (let i = 0; i < 15; i++) yield* swiotlb_map(cur, dev, 0x2000000, 4096, DMA_TO_DEVICE, 0);
      yield* msleep(cur, 5000);
      for (let i = 0; i < 15; i++) yield* swiotlb_map(cur, dev, 0x2000000, 4096, DMA_TO_DEVICE, 0);
    });
    const f = of(r, 'swiotlb_full')[0];
    expect(f.count).to.equal(30);
    expect(f.loggedCount).to.equal(20);
    expect(r.metrics.counters?.['swiotlb.full_printed']).to.equal(20);
  });

  it('DMA_ATTR_NO_WARN: no finding, only the swiotlb.full_nowarn metric', () => {
    const r = run(function* (cur, dev) {
      for (let i = 0; i < 3; i++) yield* swiotlb_map(cur, dev, 0x2000000, 4096, DMA_TO_DEVICE, DMA_ATTR_NO_WARN);
    });
    expect(of(r, 'swiotlb_full')).to.deep.equal([]);
    expect(r.metrics.counters?.['swiotlb.full_nowarn']).to.equal(3);
  });

  it('a mapping-path WARN (DmaWarnInfo) is a dma_debug finding printed once per fingerprint (WARN_ONCE), every occurrence counted', () => {
    const r = run(function* (cur, dev, m) {
      const info: DmaWarnInfo = { subkind: 'map_overflow', dev: dev.name, message: 'swiotlb addr 0x1ffff000+4096 overflow (mask ffffffff, bus limit 0).' };
      m.emit('dmaDebug', cur, info);
      m.emit('dmaDebug', cur, info);
      yield cur.thread.point();
    });
    const f = of(r, 'dma_debug');
    expect(f.length).to.equal(1);
    expect(f[0].subkind).to.equal('map_overflow');
    expect(f[0].count).to.equal(2);
    expect(f[0].loggedCount).to.equal(1);
    expect(f[0].headline).to.equal('0000:03:00.0: swiotlb addr 0x1ffff000+4096 overflow (mask ffffffff, bus limit 0).');
    expect(f[0].text).to.match(/WARNING: CPU: 0 PID: \d+ at kernel\/dma\/swiotlb.c swiotlb_map\n/);
    expect(f[0].fingerprint).to.equal('dma_debug:map_overflow:0000:03:00.0@nvme_queue_rq');
  });

  it('iommu_map refusals are printed every time (pr_err)', () => {
    const r = run(function* (cur) {
      const d = iommu_domain_alloc('smmu1', { pgsize_bitmap: PGSIZE_64K });
      for (let i = 0; i < 3; i++) expect(yield* iommu_map(cur, d, 0x20000, 0x3000, 0x1000, IOMMU_READ)).to.equal(-22);
    });
    const f = of(r, 'iommu_map');
    expect(f.length).to.equal(1);
    expect(f[0].count).to.equal(3);
    expect(f[0].loggedCount).to.equal(3);
    expect(f[0].headline).to.match(/^iommu: unaligned: iova 0x20000 pa 0x3000 size 0x1000 min_pagesz 0x10000/);
  });
});
