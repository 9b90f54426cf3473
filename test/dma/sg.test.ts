import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import type { Machine } from '../../lib/kernel/machine';
import type { Task } from '../../lib/kernel/task';
import { GIB, MIB, mm_prepare, type CocoKind, type MemoryImage } from '../../lib/mm';
import { phys_contents } from '../../lib/mm/contents';
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, device_register, dma_debug_entries, dma_init, type device, type DeviceOptions } from '../../lib/dma';
import { dma_device_read, dma_device_write, dma_map_sg, dma_sync_sg_for_cpu, dma_sync_sg_for_device, dma_unmap_sg } from '../../lib/dma/mapping';
import { for_each_sg, sg_dma_address, sg_dma_len, sg_init_table, sg_phys, sg_set_page, type scatterlist } from '../../lib/dma/scatterlist';
import { swiotlb_prepare, type SwiotlbImage } from '../../lib/dma/swiotlb/setup';
import { swiotlb_state } from '../../lib/dma/swiotlb/state';
import { memProgram } from '../support/memory';

const counters = (r: RunResult) => r.metrics.counters ?? {};
const KIB = 1024;
const HIGH = (4 * GIB) / 4096; // first pfn above 4 GiB

function machine(memory: number, coco: CocoKind, swiotlb: { size?: number; nslabs?: number } | null): { img: MemoryImage; sw: SwiotlbImage | null; coco: CocoKind } {
  const img = mm_prepare({ memory });
  const sw = swiotlb === null ? null : swiotlb_prepare(img, { cpus: 1, ...swiotlb, cc: coco !== 'none' });
  return { img, sw, coco };
}

function run(name: string, w: ReturnType<typeof machine>, o: DeviceOptions, body: (cur: Task, m: Machine, dev: device) => Generator<unknown, void, unknown>, data = false): RunResult {
  const p = memProgram(name, { image: w.img, coco: w.coco, cpus: 1 }, (m) => {
    dma_init(m, { swiotlb: w.sw, data });
    const dev = device_register(m, o);
    m.kthread('drv', 0, (cur) => body(cur, m, dev));
  });
  return runIteration(p, { iteration: 0 });
}

/** A table of (pfn, len, offset) segments. */
function table(segs: [number, number, number][]): scatterlist[] {
  const sgl = sg_init_table(segs.length);
  for (const [i, sg] of for_each_sg(sgl, sgl.length)) sg_set_page(sg, segs[i][0], segs[i][1], segs[i][2]);
  return sgl;
}

describe('dma: scatterlists through dma-direct', () => {
  const big = machine(5 * GIB, 'none', { size: 4 * MIB });

  it('maps each segment on its own: a 64-bit device gets the physical addresses, nothing merged', () => {
    const out: { n: number; segs: [number, number][]; phys: number[] } = { n: 0, segs: [], phys: [] };
    const r = run('sg-direct', big, { name: 'nvme0' }, function* (cur, m, dev) {
      const sgl = table([[1000, 4096, 0], [1001, 4096, 0], [HIGH + 5, 512, 256]]);
      out.n = yield* dma_map_sg(cur, dev, sgl, 3, DMA_TO_DEVICE);
      out.segs = sgl.map((s) => [sg_dma_address(s), sg_dma_len(s)]);
      out.phys = sgl.map((s) => sg_phys(m, s));
      yield* dma_unmap_sg(cur, dev, sgl, 3, DMA_TO_DEVICE);
    });
    expect(r.findings).to.deep.equal([]);
    expect(out.n).to.equal(3); // contiguous pages stay separate segments in dma-direct
    expect(out.segs).to.deep.equal(out.phys.map((p, i) => [p, [4096, 4096, 512][i]]));
    expect(counters(r)['swiotlb.maps']).to.equal(undefined);
  });

  it('a 32-bit device bounces only the segments above 4 GiB; unmap_sg gives every slot back', () => {
    const st = { n: 0, bounced: [] as boolean[], used: -1, usedMapped: -1 };
    const r = run('sg-32bit', big, { name: 'ehci', dmaBits: 32 }, function* (cur, m, dev) {
      const sgl = table([[1000, 4096, 0], [HIGH + 1, 4096, 0], [2000, 100, 0], [HIGH + 9, 2048, 1024]]);
      st.n = yield* dma_map_sg(cur, dev, sgl, 4, DMA_BIDIRECTIONAL);
      st.bounced = sgl.map((s) => s.dma_address !== sg_phys(m, s));
      st.usedMapped = swiotlb_state(m).mem.total_used;
      yield* dma_unmap_sg(cur, dev, sgl, 4, DMA_BIDIRECTIONAL);
      st.used = swiotlb_state(m).mem.total_used;
    });
    expect(r.findings).to.deep.equal([]);
    expect(st.n).to.equal(4);
    expect(st.bounced).to.deep.equal([false, true, false, true]);
    expect(st.usedMapped).to.equal(3); // 2 + 1 slots of 2 KiB
    expect(st.used).to.equal(0);
    expect(counters(r)).to.deep.include({ 'swiotlb.maps': 2, 'swiotlb.unmaps': 2 });
  });

  it('a failure at segment k unmaps segments 0..k-1 and returns 0 (swiotlb slots back to 0, no dma-debug entries)', () => {
    // A CoCo guest with a 1 MiB swiotlb: four 256 KiB segments fill it, the fifth cannot be bounced.
    const w = machine(256 * MIB, 'tdx', { nslabs: 512 });
    const st = { n: -1, used: -1, entries: -1 };
    const r = run('sg-unwind', w, { name: 'virtio0' }, function* (cur, m, dev) {
      const sgl = table([0, 1, 2, 3, 4].map((i) => [8192 + i * 64, 256 * KIB, 0] as [number, number, number]));
      st.n = yield* dma_map_sg(cur, dev, sgl, 5, DMA_TO_DEVICE);
      st.used = swiotlb_state(m).mem.total_used;
      st.entries = dma_debug_entries(dev).length;
    });
    expect(st.n).to.equal(0);
    expect(st.used).to.equal(0);
    expect(st.entries).to.equal(0);
    expect(r.findings.map((f) => f.kind)).to.deep.equal(['swiotlb_full']);
    expect(counters(r)).to.deep.include({ 'swiotlb.maps': 4, 'swiotlb.unmaps': 4, 'swiotlb.full': 1 });
    // the unwind skips the CPU sync: nothing is copied back
    expect(counters(r)['swiotlb.bounce_bytes']).to.equal(4 * 256 * KIB);
  });

  it('without a swiotlb the first unreachable segment fails the list with the overflow WARN', () => {
    const w = machine(5 * GIB, 'none', null);
    const st = { n: -1 };
    const r = run('sg-overflow', w, { name: 'ehci', dmaBits: 32 }, function* (cur, _m, dev) {
      const sgl = table([[1000, 4096, 0], [1001, 4096, 0], [HIGH, 4096, 0]]);
      st.n = yield* dma_map_sg(cur, dev, sgl, 3, DMA_FROM_DEVICE);
    });
    expect(st.n).to.equal(0);
    expect(r.findings.map((f) => f.subkind)).to.deep.equal(['map_overflow']);
    expect(counters(r)['dma.direct.maps']).to.equal(2);
  });

  it('sync_sg moves data through bounced segments: for_device fills, for_cpu copies back', () => {
    const seen: number[][] = [];
    const r = run('sg-sync', big, { name: 'ehci', dmaBits: 32 }, function* (cur, m, dev) {
      seen.length = 0;
      const c = phys_contents(m)!;
      const sgl = table([[HIGH + 1, 64, 0]]);
      const phys = sg_phys(m, sgl[0]);
      yield* dma_map_sg(cur, dev, sgl, 1, DMA_BIDIRECTIONAL);
      c.write(phys, new Uint8Array([1, 2, 3])); // the CPU writes after mapping...
      seen.push([...dma_device_read(m, dev, sgl[0].dma_address, 3)]); // ...the device does not see it yet
      yield* dma_sync_sg_for_device(cur, dev, sgl, 1, DMA_BIDIRECTIONAL);
      seen.push([...dma_device_read(m, dev, sgl[0].dma_address, 3)]);
      dma_device_write(m, dev, sgl[0].dma_address, new Uint8Array([9, 9]));
      yield* dma_sync_sg_for_cpu(cur, dev, sgl, 1, DMA_BIDIRECTIONAL);
      seen.push([...c.read(phys, 3)]);
      yield* dma_unmap_sg(cur, dev, sgl, 1, DMA_BIDIRECTIONAL);
    }, true);
    expect(r.findings).to.deep.equal([]);
    expect(seen).to.deep.equal([[0, 0, 0], [1, 2, 3], [9, 9, 3]]);
  });
});
