import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { GFP_DMA, GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE } from '../../lib/kernel/gfp';
import { dma_init } from '../../lib/dma/init';
import { display_probe, gpu_probe, swiotlb_prepare_below, type DisplayEngine, type GpuOptions } from '../../lib/devices/display';
import { mm_prepare, MIB } from '../../lib/mm';
import { sg_alloc_table_from_pages_segment } from '../../lib/dma/scatterlist';
import { memProgram } from '../support/memory';

const GIB = 1 << 30;
const counters = (r: RunResult) => r.metrics.counters ?? {};
const FRAME = 1920 * 1080 * 4;

/**
 * A Raspberry Pi 4-like machine: 2 GiB, ZONE_DMA below 1 GiB, the swiotlb placed there (as
 * arm64 does), a display engine that reaches only the first GiB.
 */
function pi(name: string, gpu: GpuOptions, o: { poolMiB?: number; frames?: number; data?: boolean } = {}) {
  const image = mm_prepare({ memory: 2 * GIB, dmaLimit: GIB });
  const sw = swiotlb_prepare_below(image, GIB, { cpus: 2, size: (o.poolMiB ?? 32) * MIB });
  const out: { disp: DisplayEngine | null } = { disp: null };
  const p = memProgram(name, { cpus: 2, image }, (m) => {
    dma_init(m, { swiotlb: sw, data: o.data ?? false });
    const g = gpu_probe(m, gpu);
    out.disp = display_probe(m, { gpu: g, frames: o.frames ?? 6, vblankNs: 16_666_667 });
  });
  return { p, out, sw };
}

describe('devices: GPU and display engine sharing frames by dma-buf', () => {
  it('places the swiotlb below the display bus limit', () => {
    const { sw } = pi('pool', {});
    expect(sw.pool.start + sw.pool.nslabs * 2048).to.be.at.most(GIB);
  });

  it('frames below 1 GiB map directly: no bouncing, no failures', () => {
    const { p, out } = pi('low', { gfp: GFP_DMA, maxSegSize: 64 * 1024 });
    const r = runIteration(p, { iteration: 0, window: 0 });
    expect(r.findings.map((f) => f.kind)).to.deep.equal([]);
    const c = counters(r);
    expect(c['display.frames']).to.equal(6);
    expect(c['display.bounce_bytes'] ?? 0).to.equal(0);
    expect(c['display.map_failures'] ?? 0).to.equal(0);
    expect(out.disp!.shown).to.deep.equal([0, 1, 2, 0, 1, 2]);
  });

  it('frames above 1 GiB bounce through the swiotlb when their segments fit a bounce buffer, and the bytes arrive', () => {
    const { p, out } = pi('high', { gfp: GFP_HIGHUSER, maxSegSize: 64 * 1024 }, { data: true });
    const r = runIteration(p, { iteration: 0, window: 0 });
    expect(r.findings.map((f) => f.kind)).to.deep.equal([]);
    const c = counters(r);
    expect(c['display.frames']).to.equal(6);
    expect(c['display.bounce_bytes']).to.equal(6 * FRAME);
    expect(c['display.map_failures'] ?? 0).to.equal(0);
    // what the scanout read is what the GPU rendered for that frame
    expect(out.disp!.scanned).to.deep.equal([1, 2, 3, 4, 5, 6]);
  });

  it("the exporter's segments ignore the importer's max_seg_size: DMA-API debug says so even when the frame maps directly", () => {
    const { p } = pi('low-chunks', { gfp: GFP_DMA });
    const r = runIteration(p, { iteration: 0, window: 0 });
    const d = r.findings.filter((f) => f.kind === 'dma_debug');
    expect(d).to.have.length(1);
    expect(d[0].text).to.include('mapping sg segment longer than device claims to support');
    expect(counters(r)['display.frames']).to.equal(6);
  });

  it('a frame whose segments follow the GPU (2 MiB chunks) cannot be bounced: every import fails and is counted', () => {
    const { p, out } = pi('chunks', {});
    const r = runIteration(p, { iteration: 0, window: 0 });
    const c = counters(r);
    expect(c['display.map_failures']).to.equal(6);
    expect(c['display.frames'] ?? 0).to.equal(0);
    expect(out.disp!.failures).to.equal(6);
    expect([...new Set(r.findings.map((f) => f.kind))]).to.deep.equal(['swiotlb_full']); // the segment check runs only after a successful map
  });

  it('a frame larger than the pool fails even with small segments', () => {
    const { p } = pi('small-pool', { maxSegSize: 64 * 1024 }, { poolMiB: 4 });
    const r = runIteration(p, { iteration: 0, window: 0 });
    const c = counters(r);
    expect(c['display.map_failures']).to.equal(6);
    expect(c['display.frames'] ?? 0).to.equal(0);
    expect(c['swiotlb.maps']).to.equal(c['swiotlb.unmaps']);
  });

  it('sg_alloc_table_from_pages_segment merges contiguous pages up to max_segment (whole pages), the offset in the first', () => {
    const sgl = sg_alloc_table_from_pages_segment([10, 11, 12, 13, 20, 21, 5], 512, 7 * 4096 - 1024, 3 * 4096 + 100);
    expect(sgl.map((s) => [s.page_link, s.offset, s.length])).to.deep.equal([[10, 512, 3 * 4096 - 512], [13, 0, 4096], [20, 0, 8192], [5, 0, 4096 - 512]]);
    expect(() => sg_alloc_table_from_pages_segment([1], 0, 4096, 2048)).to.throw(/below one page/);
  });

  it('importerSegments: the exporter builds the importer\'s table within its limits (256 KiB max mapping, 64 KiB max_seg_size), so every frame bounces cleanly', () => {
    const { p } = pi('importer', { gfp: GFP_HIGHUSER, chunkOrder: 0, importerSegments: true });
    const r = runIteration(p, { iteration: 0, window: 0 });
    expect(r.findings.map((f) => f.kind)).to.deep.equal([]);
    const c = counters(r);
    expect(c['display.frames']).to.equal(6);
    expect(r.metrics.peaks?.['display.max_segment_bytes']).to.equal(64 * 1024);
    expect(c['display.bounce_bytes']).to.equal(6 * FRAME);
  });

  it('an import that fails at a long segment counts the bounce copies made before it as wasted', () => {
    const { p } = pi('wasted', { gfp: GFP_HIGHUSER_MOVABLE, chunkOrder: 0 }); // shmem's pages
    const r = runIteration(p, { iteration: 0, window: 0 });
    const c = counters(r);
    expect(c['display.map_failures']).to.equal(6);
    expect(c['display.wasted_bounce_bytes']).to.be.greaterThan(0);
    expect(c['display.wasted_bounce_bytes']).to.equal(c['swiotlb.bounce_bytes']);
    expect(c['swiotlb.maps']).to.equal(c['swiotlb.unmaps']);
  });
});
