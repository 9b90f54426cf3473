import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { GFP_KERNEL } from '../../lib/kernel/gfp';
import type { Machine } from '../../lib/kernel/machine';
import { fn } from '../../lib/kernel/stack';
import type { Task } from '../../lib/kernel/task';
import {
  DMA_ATTR_ALLOC_SINGLE_PAGES,
  DMA_BIDIRECTIONAL,
  DMA_BIT_MASK,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  IOMMU_READ,
  PGSIZE_4K,
  PGSIZE_64K,
  device_register,
  dma_init,
  iommu_dma_alloc,
  iommu_dma_buffer_chunks,
  iommu_dma_free,
  iommu_dma_map_page,
  iommu_dma_map_sg,
  iommu_dma_unmap_page,
  iommu_dma_unmap_sg,
  iommu_domain_alloc,
  iommu_iova_to_phys,
  iommu_map,
  swiotlb_prepare,
  type device,
  type DeviceOptions,
  type iommu_domain,
  type IommuDomainOptions,
} from '../../lib/dma';
import { sg_init_table, sg_set_page } from '../../lib/dma/scatterlist';
import { iommu_dma_alloc_2016 } from '../../lib/dma/historical/iommu-alloc-2016';
import { MIB, mm, mm_prepare, page_to_phys, phys_contents, pin_every, type MemoryImage } from '../../lib/mm';
import { memProgram } from '../support/memory';

interface World {
  m: Machine;
  dev: device;
  domain: iommu_domain;
}

type Body = (cur: Task, w: World) => Generator<unknown, void, unknown>;

interface Opts {
  domain?: IommuDomainOptions;
  dev?: Partial<DeviceOptions>;
  /** Leave no free block of this order or above (each block keeps one page allocated). */
  fragment?: number;
  swiotlb?: boolean;
}

const images = new Map<string, { img: MemoryImage; sw: ReturnType<typeof swiotlb_prepare> | null }>();

function image(swiotlb: boolean) {
  const key = String(swiotlb);
  let v = images.get(key);
  if (v === undefined) {
    const img = mm_prepare({ memory: 128 * MIB });
    v = { img, sw: swiotlb ? swiotlb_prepare(img, { cpus: 1, size: MIB }) : null };
    images.set(key, v);
  }
  return v;
}

function freePages(m: Machine): number {
  return mm(m).phys.zones.reduce((s, z) => s + z.nr_free, 0);
}

function run(o: Opts, body: Body): RunResult {
  const { img, sw } = image(o.swiotlb ?? false);
  // The image is shared by every test: start from its snapshot whatever the last run left
  // (memProgram restores only before a program's second run).
  img.restore();
  const p = memProgram('iommu', { image: img, cpus: 1 }, (m) => {
    dma_init(m, { swiotlb: sw, data: true });
    if (o.fragment !== undefined) pin_every(mm(m).phys, o.fragment);
    const domain = iommu_domain_alloc('smmu0', o.domain);
    const dev = device_register(m, { name: 'gpu0', iommu: domain, ...o.dev });
    m.kthread('drv', 0, function* (cur) {
      yield* fn(cur, 'drv_probe', body(cur, { m, dev, domain }));
    });
  });
  return runIteration(p, { iteration: 0 });
}

const kinds = (r: RunResult) => r.findings.map((f) => f.kind);
const counter = (r: RunResult, name: string) => r.metrics.counters?.[name] ?? 0;

describe('dma/iommu: domains, IOVA allocation, dma-iommu', () => {
  it('a 64 KiB-granule domain on 4 KiB pages builds coherent buffers from order-4 chunks, the size aligned up to 64 KiB', () => {
    const seen: { chunks: number[]; handle: number; phys: number; first: number }[] = [];
    let stillAllocated = -1;
    let mapped = -1;
    const r = run({ domain: { pgsize_bitmap: PGSIZE_64K } }, function* (cur, w) {
      const pfns: number[] = [];
      for (const size of [256 * 1024, 100 * 1024]) {
        const b = yield* iommu_dma_alloc(cur, w.dev, size, GFP_KERNEL);
        expect(b).to.not.equal(null);
        const chunks = iommu_dma_buffer_chunks(w.dev, b!.vaddr);
        pfns.push(...chunks.map(([p]) => p));
        seen.push({ chunks: chunks.map(([, o]) => o), handle: b!.dma_handle, phys: iommu_iova_to_phys(w.domain, b!.dma_handle), first: page_to_phys(w.m, chunks[0][0]) });
        yield* iommu_dma_free(cur, w.dev, size, b!.vaddr, b!.dma_handle);
      }
      stillAllocated = pfns.filter((p) => mm(w.m).phys.allocatedOrder(p) >= 0).length;
      mapped = w.domain.mappedBytes;
    });
    expect(r.findings).to.deep.equal([]);
    expect(seen[0].chunks).to.deep.equal([4, 4, 4, 4]);
    expect(seen[1].chunks).to.deep.equal([4, 4]); // 100 KiB -> 128 KiB
    for (const s of seen) {
      expect(s.handle % 0x10000).to.equal(0);
      expect(s.phys).to.equal(s.first);
    }
    expect(counter(r, 'iommu.alloc.o4')).to.equal(6);
    expect(counter(r, 'iommu.alloc.o0')).to.equal(0);
    expect(stillAllocated).to.equal(0);
    expect(mapped).to.equal(0);
  });

  it('a 4 KiB-granule domain: 4 MiB takes two order-9 chunks (2 MiB pages); ALLOC_SINGLE_PAGES takes 1024 order-0 pages; 1 MiB is all order 0', () => {
    const orders: number[][] = [];
    const r = run({}, function* (cur, w) {
      for (const [size, attrs] of [[4 * MIB, 0], [4 * MIB, DMA_ATTR_ALLOC_SINGLE_PAGES], [MIB, 0]] as const) {
        const b = yield* iommu_dma_alloc(cur, w.dev, size, GFP_KERNEL, attrs);
        orders.push(iommu_dma_buffer_chunks(w.dev, b!.vaddr).map(([, o]) => o));
        yield* iommu_dma_free(cur, w.dev, size, b!.vaddr, b!.dma_handle);
      }
    });
    expect(r.findings).to.deep.equal([]);
    expect(orders[0]).to.deep.equal([9, 9]);
    expect(orders[1].length).to.equal(1024);
    expect(orders[1].every((o) => o === 0)).to.equal(true);
    expect(orders[2].length).to.equal(256);
    expect(orders[2].every((o) => o === 0)).to.equal(true);
  });

  it('a fragmented machine: the 4 KiB domain falls back from order 9 to order 0; the 64 KiB domain has nothing below order 4 and fails', () => {
    let got: number[] = [];
    const r4 = run({ fragment: 9 }, function* (cur, w) {
      const b = yield* iommu_dma_alloc(cur, w.dev, 4 * MIB, GFP_KERNEL);
      got = iommu_dma_buffer_chunks(w.dev, b!.vaddr).map(([, o]) => o);
    });
    expect(got.length).to.equal(1024);
    expect(counter(r4, 'iommu.alloc_fail.o9')).to.equal(1); // a failed order is not tried again
    expect(counter(r4, 'iommu.alloc.o0')).to.equal(1024);
    expect(kinds(r4)).to.not.include('alloc_failure'); // __GFP_NOWARN

    let before = -1;
    let after = -2;
    let res: unknown = undefined;
    const r64 = run({ domain: { pgsize_bitmap: PGSIZE_64K }, fragment: 4 }, function* (cur, w) {
      before = freePages(w.m);
      res = yield* iommu_dma_alloc(cur, w.dev, 256 * 1024, GFP_KERNEL);
      after = freePages(w.m);
    });
    expect(res).to.equal(null);
    expect(counter(r64, 'iommu.alloc_failures')).to.equal(1);
    expect(counter(r64, 'iommu.alloc.o0')).to.equal(0);
    expect(after).to.equal(before);
  });

  it('iommu_map of a 4 KiB-aligned buffer in a 64 KiB-granule domain fails with -EINVAL and an iommu_map finding; dma-iommu maps the aligned span instead', () => {
    let rc = 0;
    let handle = 0;
    let back = 0;
    const r = run({ domain: { pgsize_bitmap: PGSIZE_64K } }, function* (cur, w) {
      rc = yield* iommu_map(cur, w.domain, 0x10000, 0x401000, 0x1000, IOMMU_READ);
      handle = yield* iommu_dma_map_page(cur, w.dev, 0x401000, 0x1000, DMA_TO_DEVICE);
      back = iommu_iova_to_phys(w.domain, handle);
      yield* iommu_dma_unmap_page(cur, w.dev, handle, 0x1000, DMA_TO_DEVICE);
    });
    expect(rc).to.equal(-22);
    expect(kinds(r)).to.deep.equal(['iommu_map']);
    const f = r.findings[0];
    expect(f.text.split('\n')[0]).to.equal('iommu: unaligned: iova 0x10000 pa 0x401000 size 0x1000 min_pagesz 0x10000');
    expect(f.fingerprint).to.equal('iommu_map:smmu0@drv_probe');
    expect(handle % 0x10000).to.equal(0x1000);
    expect(back).to.equal(0x401000);
    expect(counter(r, 'iommu.map_failures')).to.equal(1);
  });

  it('an untrusted device bounces a sub-granule buffer: the device sees its bytes and zeros, not the neighbours; unmap copies back', () => {
    const obs: Record<string, unknown> = {};
    const r = run({ swiotlb: true, dev: { untrusted: true } }, function* (cur, w) {
      const c = phys_contents(w.m)!;
      const page = 0x800000;
      c.fill(page, 4096, 0xaa); // a neighbour's secret in the same page
      c.fill(page + 0x100, 512, 0x11); // the buffer
      const h = yield* iommu_dma_map_page(cur, w.dev, page + 0x100, 512, DMA_BIDIRECTIONAL);
      const p = iommu_iova_to_phys(w.domain, h);
      const granule = iommu_iova_to_phys(w.domain, h - (h % 4096));
      obs.bounced = p !== page + 0x100;
      obs.data = Array.from(c.read(p, 512)).every((b) => b === 0x11);
      const rest = c.read(granule, 4096);
      const off = p - granule;
      obs.padZero = Array.from(rest).every((b, i) => (i >= off && i < off + 512 ? b === 0x11 : b === 0));
      c.fill(p, 512, 0x22); // the device writes
      yield* iommu_dma_unmap_page(cur, w.dev, h, 512, DMA_BIDIRECTIONAL);
      obs.copiedBack = Array.from(c.read(page + 0x100, 512)).every((b) => b === 0x22);
      obs.neighbour = c.read(page, 1)[0];
      // A granule-aligned buffer is not bounced.
      const h2 = yield* iommu_dma_map_page(cur, w.dev, page, 4096, DMA_FROM_DEVICE);
      obs.aligned = iommu_iova_to_phys(w.domain, h2);
      yield* iommu_dma_unmap_page(cur, w.dev, h2, 4096, DMA_FROM_DEVICE);
    });
    expect(r.findings).to.deep.equal([]);
    expect(obs).to.deep.equal({ bounced: true, data: true, padZero: true, copiedBack: true, neighbour: 0xaa, aligned: 0x800000 });
    expect(counter(r, 'iommu.bounces')).to.equal(1);
    expect(counter(r, 'swiotlb.maps')).to.equal(1);
  });

  it('a trusted device is not bounced: the IOMMU exposes the whole granule around the buffer', () => {
    let p = 0;
    const r = run({ swiotlb: true }, function* (cur, w) {
      const h = yield* iommu_dma_map_page(cur, w.dev, 0x800100, 512, DMA_TO_DEVICE);
      p = iommu_iova_to_phys(w.domain, h);
      yield* iommu_dma_unmap_page(cur, w.dev, h, 512, DMA_TO_DEVICE);
    });
    expect(p).to.equal(0x800100);
    expect(counter(r, 'iommu.bounces')).to.equal(0);
  });

  it('scatterlists: one IOVA range; whole pages merge into one DMA segment, a segment with an offset starts a new one', () => {
    const out: { n: number; segs: [number, number][] } = { n: 0, segs: [] };
    let unmapped = -1;
    run({}, function* (cur, w) {
      const sgl = sg_init_table(3);
      sg_set_page(sgl[0], 0x900, 4096, 0);
      sg_set_page(sgl[1], 0x705, 4096, 0); // another physical page: merges in IOVA space
      sg_set_page(sgl[2], 0x333, 1024, 0x200);
      out.n = yield* iommu_dma_map_sg(cur, w.dev, sgl, 3, DMA_TO_DEVICE);
      out.segs = sgl.slice(0, out.n).map((s) => [s.dma_address, s.dma_length]);
      expect(iommu_iova_to_phys(w.domain, sgl[0].dma_address + 4096)).to.equal(0x705000);
      yield* iommu_dma_unmap_sg(cur, w.dev, sgl, 3, DMA_TO_DEVICE);
      unmapped = w.domain.mappedBytes;
    });
    expect(out.n).to.equal(2);
    expect(out.segs[0][1]).to.equal(8192);
    expect(out.segs[1][0] - out.segs[0][0]).to.equal(8192 + 0x200);
    expect(out.segs[1][1]).to.equal(1024);
    expect(unmapped).to.equal(0);
  });

  it('IOVAs come top-down below the DMA mask, size-aligned, and a freed small range is reused from the CPU cache', () => {
    const h: number[] = [];
    const r = run({ dev: { dmaBits: 32 } }, function* (cur, w) {
      h.push(yield* iommu_dma_map_page(cur, w.dev, 0x800000, 4096, DMA_TO_DEVICE));
      h.push(yield* iommu_dma_map_page(cur, w.dev, 0x900000, 3 * 4096, DMA_TO_DEVICE));
      yield* iommu_dma_unmap_page(cur, w.dev, h[0], 4096, DMA_TO_DEVICE);
      h.push(yield* iommu_dma_map_page(cur, w.dev, 0xa00000, 4096, DMA_TO_DEVICE));
    });
    expect(h[0]).to.equal(DMA_BIT_MASK(32) + 1 - 4096);
    expect(h[1]).to.equal(DMA_BIT_MASK(32) + 1 - 8 * 4096); // 3 pages, aligned to 4
    expect(h[2]).to.equal(h[0]);
    expect(counter(r, 'iommu.iova_rcache_hits')).to.equal(1);
  });

  it('pgsize_bitmap defaults to 4 KiB | 2 MiB | 1 GiB; bad bitmaps are rejected', () => {
    const d = iommu_domain_alloc('d');
    expect(d.pgsize_bitmap).to.equal(PGSIZE_4K);
    expect(d.granule).to.equal(4096);
    expect(iommu_domain_alloc('e', { pgsize_bitmap: PGSIZE_64K }).granule).to.equal(0x10000);
    expect(() => iommu_domain_alloc('f', { pgsize_bitmap: 0 })).to.throw(/pgsize_bitmap must be a positive integer/);
  });

  describe('the 2016 allocator (v4.5 iommu_dma_alloc, Yong Wu\'s ALLOC_SINGLE_PAGES patch)', () => {
    const D64 = { domain: { pgsize_bitmap: PGSIZE_64K } };

    it('with the patch and the attribute: order-0 pages (scattered: every other page in use), iommu_map refuses them in a 64 KiB domain, everything given back', () => {
      let before = -1;
      let after = -2;
      let res: unknown;
      const r = run({ ...D64, fragment: 1 }, function* (cur, w) {
        before = freePages(w.m);
        res = yield* iommu_dma_alloc_2016(cur, w.dev, MIB, GFP_KERNEL, DMA_ATTR_ALLOC_SINGLE_PAGES);
        after = freePages(w.m);
      });
      expect(res).to.equal(null);
      expect(counter(r, 'iommu.alloc.o0')).to.equal(256);
      expect(kinds(r)).to.deep.equal(['iommu_map']);
      expect(r.findings[0].headline).to.match(/^iommu: unaligned: iova 0x[0-9a-f]+ pa 0x[0-9a-f]+ size 0x[0-9a-f]+ min_pagesz 0x10000/);
      expect(counter(r, 'iommu.alloc_failures')).to.equal(1);
      expect(after).to.equal(before);
    });

    it('on fresh memory the order-0 pages happen to come out contiguous and 64 KiB-aligned, merge into one segment and map (luck, not design)', () => {
      const r = run(D64, function* (cur, w) {
        const b = yield* iommu_dma_alloc_2016(cur, w.dev, MIB, GFP_KERNEL, DMA_ATTR_ALLOC_SINGLE_PAGES);
        expect(b).to.not.equal(null);
        yield* iommu_dma_free(cur, w.dev, MIB, b!.vaddr, b!.dma_handle);
      });
      expect(counter(r, 'iommu.alloc.o0')).to.equal(256);
      expect(counter(r, 'iommu.map_sg_segments')).to.equal(1);
      expect(r.findings).to.deep.equal([]);
    });

    it('without the attribute (or without the patch) on fresh memory: large chunks, mapped and freed cleanly', () => {
      for (const [attrs, patch] of [[0, true], [DMA_ATTR_ALLOC_SINGLE_PAGES, false]] as const) {
        let orders: number[] = [];
        let mapped = -1;
        const r = run(D64, function* (cur, w) {
          const b = yield* iommu_dma_alloc_2016(cur, w.dev, 3 * MIB, GFP_KERNEL, attrs, { singlePagesPatch: patch });
          orders = iommu_dma_buffer_chunks(w.dev, b!.vaddr).map(([, o]) => o);
          yield* iommu_dma_free(cur, w.dev, 3 * MIB, b!.vaddr, b!.dma_handle);
          mapped = w.domain.mappedBytes;
        });
        expect(r.findings).to.deep.equal([]);
        expect(orders).to.deep.equal([9, 8]);
        expect(mapped).to.equal(0);
      }
    });

    it('fragmented (no free block of order 4): falls below the granule, keeps the order reached for later chunks, and the map fails', () => {
      let res: unknown;
      const r = run({ ...D64, fragment: 4 }, function* (cur, w) {
        res = yield* iommu_dma_alloc_2016(cur, w.dev, MIB, GFP_KERNEL);
      });
      expect(res).to.equal(null);
      expect(counter(r, 'iommu.alloc_fail.o8')).to.equal(1); // each order above tried once, never again
      expect(counter(r, 'iommu.alloc_fail.o4')).to.equal(1);
      expect(counter(r, 'iommu.alloc.o3')).to.equal(32);
      expect(kinds(r)).to.deep.equal(['iommu_map']);
    });
  });
});
