import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import { GFP_ATOMIC, GFP_DMA32, GFP_KERNEL, GFP_NOWAIT, __GFP_NOWARN } from '../../lib/kernel/gfp';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import { local_irq_restore, local_irq_save } from '../../lib/kernel/irqflags';
import type { Machine } from '../../lib/kernel/machine';
import type { Task } from '../../lib/kernel/task';
import { __free_pages, alloc_pages, GIB, MIB, mm_prepare, page_to_phys, type CocoKind, type MemoryImage } from '../../lib/mm';
import { cma_declare_contiguous } from '../../lib/mm/cma';
import { phys_contents } from '../../lib/mm/contents';
import { PAGE_OFFSET } from '../../lib/mm/slab';
import {
  DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_MAPPING_ERROR, DMA_TO_DEVICE, device_register, dma_init, type device, type DeviceOptions,
} from '../../lib/dma';
import { dma_alloc_contiguous } from '../../lib/dma/contiguous';
import { __dma_direct_alloc_pages, dma_direct_optimal_gfp_mask, M_ALLOC_RETRY } from '../../lib/dma/direct';
import { DMA_ATTR_MAY_SLEEP } from '../../lib/dma/attrs';
import { swiotlb_map, swiotlb_tbl_unmap_single } from '../../lib/dma/swiotlb/map';
import { swiotlb_prepare_below } from '../../lib/devices/display';
import {
  dma_alloc_coherent, dma_device_read, dma_device_write, dma_free_coherent, dma_map_page, dma_map_single, dma_unmap_page, dma_unmap_single,
} from '../../lib/dma/mapping';
import { swiotlb_prepare, type SwiotlbImage } from '../../lib/dma/swiotlb/setup';
import { swiotlb_state } from '../../lib/dma/swiotlb/state';
import { memProgram } from '../support/memory';

const kinds = (r: RunResult) => r.findings.map((f) => f.kind);
const counters = (r: RunResult) => r.metrics.counters ?? {};

interface World {
  img: MemoryImage;
  sw: SwiotlbImage | null;
  coco: CocoKind;
}

/** A prepared machine: memory image, optionally a swiotlb carved from it once. */
function world(memory: number, coco: CocoKind = 'none', swiotlbSize: number | null = 4 * MIB, cma = 0): World {
  const img = mm_prepare({ memory });
  if (cma > 0) cma_declare_contiguous(img, cma, 'reserved');
  const sw = swiotlbSize === null ? null : swiotlb_prepare(img, { cpus: 2, size: swiotlbSize, cc: coco !== 'none' });
  return { img, sw, coco };
}

/** One kthread on a machine of `w` with device `devOpts`; `body` runs in it. */
function run(name: string, w: World, devOpts: DeviceOptions, body: (cur: Task, m: Machine, dev: device) => Generator<unknown, void, unknown>, data = false): RunResult {
  const p = memProgram(name, { image: w.img, coco: w.coco, cpus: 2 }, (m) => {
    dma_init(m, { swiotlb: w.sw, data });
    const dev = device_register(m, devOpts);
    m.kthread('drv', 0, (cur) => body(cur, m, dev));
  });
  return runIteration(p, { iteration: 0 });
}

const HIGH_PFN = (4 * GIB) / 4096 + 100; // a page above 4 GiB
const LOW_PFN = (32 * MIB) / 4096; // a page at 32 MiB

describe('dma-direct: streaming mappings', () => {
  const big = world(5 * GIB);

  it('a 64-bit device never bounces: the bus address is the physical address', () => {
    const addrs: number[] = [];
    const r = run('direct-64bit', big, { name: 'nvme0' }, function* (cur, _m, dev) {
      addrs.length = 0; // calibration runs the program more than once
      for (const pfn of [LOW_PFN, HIGH_PFN]) {
        const a = yield* dma_map_page(cur, dev, pfn, 16, 512, DMA_TO_DEVICE);
        addrs.push(a);
        yield* dma_unmap_page(cur, dev, a, 512, DMA_TO_DEVICE);
      }
    });
    expect(r.findings).to.deep.equal([]);
    expect(addrs).to.deep.equal([LOW_PFN * 4096 + 16, HIGH_PFN * 4096 + 16]);
    expect(counters(r)['swiotlb.maps']).to.equal(undefined);
    expect(counters(r)['dma.direct.maps']).to.equal(2);
  });

  it('a 32-bit device on a 5 GiB machine bounces only the page above 4 GiB', () => {
    const addrs: number[] = [];
    let used = -1;
    const r = run('direct-32bit', big, { name: 'ehci', dmaBits: 32 }, function* (cur, m, dev) {
      addrs.length = 0;
      for (const pfn of [LOW_PFN, HIGH_PFN]) addrs.push(yield* dma_map_page(cur, dev, pfn, 0, 4096, DMA_BIDIRECTIONAL));
      for (const a of addrs) yield* dma_unmap_page(cur, dev, a, 4096, DMA_BIDIRECTIONAL);
      used = swiotlb_state(m).mem.total_used;
    });
    expect(r.findings).to.deep.equal([]);
    expect(addrs[0]).to.equal(LOW_PFN * 4096);
    expect(addrs[1]).to.be.below(2 ** 32).and.not.equal(HIGH_PFN * 4096);
    expect(counters(r)).to.deep.include({ 'swiotlb.maps': 1, 'swiotlb.unmaps': 1, 'dma.direct.bounced': 1 });
    expect(used).to.equal(0);
  });

  it('without a swiotlb an unreachable buffer WARNs "DMA addr ... overflow" and fails', () => {
    const noSw = world(5 * GIB, 'none', null);
    let a = 0;
    const r = run('direct-overflow', noSw, { name: 'ehci', dmaBits: 32 }, function* (cur, _m, dev) {
      a = yield* dma_map_page(cur, dev, HIGH_PFN, 0, 4096, DMA_TO_DEVICE);
    });
    expect(a).to.equal(DMA_MAPPING_ERROR);
    expect(kinds(r)).to.deep.equal(['dma_debug']);
    expect(r.findings[0].subkind).to.equal('map_overflow');
    expect(r.findings[0].text).to.match(/DMA addr 0x100064000\+4096 overflow \(mask ffffffff, bus limit 0\)/);
  });

  it('in a CoCo guest every mapping bounces, even for a 64-bit device', () => {
    const w = world(256 * MIB, 'tdx');
    const addrs: number[] = [];
    const r = run('direct-coco', w, { name: 'virtio0' }, function* (cur, _m, dev) {
      addrs.length = 0;
      for (const pfn of [LOW_PFN, LOW_PFN + 1]) addrs.push(yield* dma_map_page(cur, dev, pfn, 0, 2048, DMA_TO_DEVICE));
      for (const a of addrs) yield* dma_unmap_page(cur, dev, a, 2048, DMA_TO_DEVICE);
    });
    expect(r.findings).to.deep.equal([]);
    for (const [i, a] of addrs.entries()) expect(a).to.not.equal((LOW_PFN + i) * 4096);
    expect(counters(r)).to.deep.include({ 'swiotlb.maps': 2, 'dma.direct.bounced': 2 });
  });

  for (const [label, w, opts] of [
    ['direct', big, { name: 'nic', dmaBits: 64 }],
    ['bounced', big, { name: 'nic', dmaBits: 32 }],
  ] as const) {
    it(`round trip (${label}): the device reads what the CPU wrote and the CPU sees what the device wrote after unmap`, () => {
      const seen: number[][] = [];
      const r = run(`direct-roundtrip-${label}`, w, opts, function* (cur, m, dev) {
        seen.length = 0;
        const c = phys_contents(m)!;
        const phys = HIGH_PFN * 4096 + 64;
        c.write(phys, new Uint8Array([10, 11, 12, 13]));
        const a = yield* dma_map_single(cur, dev, PAGE_OFFSET + phys, 256, DMA_BIDIRECTIONAL);
        seen.push([...dma_device_read(m, dev, a, 4)]);
        dma_device_write(m, dev, a, new Uint8Array([20, 21]));
        seen.push([...c.read(phys, 4)]); // a bounced buffer still holds the old bytes
        yield* dma_unmap_single(cur, dev, a, 256, DMA_BIDIRECTIONAL);
        seen.push([...c.read(phys, 4)]);
      }, true);
      expect(r.findings).to.deep.equal([]);
      expect(seen[0]).to.deep.equal([10, 11, 12, 13]);
      expect(seen[1]).to.deep.equal(label === 'direct' ? [20, 21, 12, 13] : [10, 11, 12, 13]);
      expect(seen[2]).to.deep.equal([20, 21, 12, 13]);
    });
  }

  it('a DMA_FROM_DEVICE bounce copies back on unmap only', () => {
    const seen: number[][] = [];
    run('direct-from-device', big, { name: 'nic', dmaBits: 32 }, function* (cur, m, dev) {
      seen.length = 0;
      const c = phys_contents(m)!;
      const phys = HIGH_PFN * 4096;
      const a = yield* dma_map_page(cur, dev, HIGH_PFN, 0, 128, DMA_FROM_DEVICE);
      dma_device_write(m, dev, a, new Uint8Array([5, 6, 7]));
      seen.push([...c.read(phys, 3)]);
      yield* dma_unmap_page(cur, dev, a, 128, DMA_FROM_DEVICE);
      seen.push([...c.read(phys, 3)]);
    }, true);
    expect(seen).to.deep.equal([[0, 0, 0], [5, 6, 7]]);
  });
});

describe('dma-direct: coherent allocations', () => {
  it('picks the zone from the coherent mask (DMA below 16 MiB, DMA32 below 4 GiB, none above)', () => {
    const w = world(128 * MIB, 'none', null);
    const got: Record<string, number> = {};
    run('direct-zone', w, { name: 'x' }, function* (cur, m) {
      for (const [label, o] of [['isa', { name: 'isa', dmaBits: 24 }], ['pci32', { name: 'pci32', dmaBits: 32 }], ['pci64', { name: 'pci64', dmaBits: 64 }], ['limit', { name: 'limit', busLimit: 64 * MIB - 1 }]] as const) {
        const d = device_register(m, o);
        got[label] = dma_direct_optimal_gfp_mask(d).gfp;
        const pfn = yield* __dma_direct_alloc_pages(cur, d, 8192, GFP_KERNEL);
        got[`${label}.pfn`] = pfn;
      }
    });
    expect(got).to.deep.include({ isa: 1, pci32: 4, pci64: 0, limit: 4 });
    expect(got['isa.pfn'] * 4096).to.be.below(16 * MIB);
    expect(got['limit.pfn'] * 4096).to.be.below(64 * MIB);
  });

  // Upstream __dma_direct_alloc_pages (kernel/dma/direct.c): the zone comes from
  // min_not_zero(coherent_dma_mask, bus_dma_limit) (dma_direct_optimal_gfp_mask), every page is
  // checked with dma_coherent_ok against the same limit, and a page that lands too high is freed
  // and the allocation retried with GFP_DMA32, then GFP_DMA.
  const ONE_G_DEV: DeviceOptions = { name: 'vc4', dmaBits: 32, busLimit: GIB - 1 };
  const ORDER = 6; // 256 KiB

  /** Take GFP_DMA32 blocks below 1 GiB until ZONE_DMA32 hands out one above it (freed again): its pfn. */
  function* pushAboveOneGiB(cur: Task, m: Machine): Generator<unknown, number, unknown> {
    for (;;) {
      const q = (yield* alloc_pages(cur, GFP_DMA32, ORDER)) as number;
      if (q < 0) return q;
      if (page_to_phys(m, q) >= GIB) {
        __free_pages(cur, q, ORDER);
        return q;
      }
    }
  }

  for (const [label, gfp] of [['GFP_KERNEL', GFP_KERNEL], ['GFP_NOWAIT', GFP_NOWAIT | __GFP_NOWARN]] as const) {
    it(`a device with a 1 GiB bus limit gets pages below 1 GiB (${label}), retrying in ZONE_DMA when ZONE_DMA32 hands out a page above it`, () => {
      const w = world(2 * GIB, 'none', null);
      const got = { probe: -1, pfn: -1, gfp: -1 };
      const r = run(`direct-bus-limit-${label}`, w, ONE_G_DEV, function* (cur, m, dev) {
        got.gfp = dma_direct_optimal_gfp_mask(dev).gfp;
        got.probe = yield* pushAboveOneGiB(cur, m);
        got.pfn = yield* __dma_direct_alloc_pages(cur, dev, 4096 << ORDER, gfp);
      });
      expect(r.findings).to.deep.equal([]);
      expect(got.gfp).to.equal(4); // __GFP_DMA32: the 1 GiB limit is above ZONE_DMA (16 MiB), below 4 GiB
      expect(got.probe * 4096).to.be.at.least(GIB); // ZONE_DMA32 alone would have given a page the device cannot reach
      expect(got.pfn).to.be.at.least(0);
      expect(got.pfn * 4096 + (4096 << ORDER) - 1).to.be.at.most(GIB - 1);
      expect(counters(r)[M_ALLOC_RETRY]).to.equal(1);
    });
  }

  it('rfc-dynamic: a dynamic bounce buffer for a device with a 1 GiB bus limit lies below 1 GiB, with no dma-debug warning', () => {
    const img = mm_prepare({ memory: 2 * GIB });
    const sw = swiotlb_prepare_below(img, GIB, { cpus: 1, size: MIB, policy: { name: 'rfc-dynamic', maySleepGfp: 'GFP_NOIO' } });
    const tlbs: number[] = [];
    const p = memProgram('direct-bus-limit-dyn', { image: img, cpus: 1, kswapd: false }, (m) => {
      dma_init(m, { swiotlb: sw });
      const dev = device_register(m, ONE_G_DEV);
      m.kthread('drv', 0, function* (cur) {
        tlbs.length = 0;
        yield* pushAboveOneGiB(cur, m);
        const buf = yield* alloc_pages(cur, GFP_KERNEL, ORDER);
        // the RFC tries the dynamic buffer first (256 KiB, no alignment, no min_align_mask): all six get one
        for (let i = 0; i < 6; i++) tlbs.push(yield* swiotlb_map(cur, dev, page_to_phys(m, buf), 256 * 1024, DMA_TO_DEVICE, i === 5 ? DMA_ATTR_MAY_SLEEP : 0));
        for (const t of tlbs) if (t !== DMA_MAPPING_ERROR) yield* swiotlb_tbl_unmap_single(cur, dev, t, 256 * 1024, DMA_TO_DEVICE, 0);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings).to.deep.equal([]);
    expect(tlbs).to.have.length(6);
    for (const t of tlbs) {
      expect(t).to.not.equal(DMA_MAPPING_ERROR);
      expect(t + 256 * 1024 - 1).to.be.at.most(GIB - 1);
    }
    expect(counters(r)).to.deep.include({ 'swiotlb.dyn_allocs': 6, 'swiotlb.dyn_frees': 6 });
    expect(counters(r)[M_ALLOC_RETRY]).to.equal(6);
  });

  it('GFP_ATOMIC in a CoCo guest comes from the (pre-decrypted) atomic pool: no sleep, no hypercall, even in a hardirq', () => {
    const w = world(256 * MIB, 'tdx');
    const st: { ns: number; handle: number } = { ns: -1, handle: -1 };
    const p = memProgram('coherent-atomic-coco', { image: w.img, coco: 'tdx', cpus: 2 }, (m) => {
      dma_init(m, { swiotlb: w.sw });
      const dev = device_register(m, { name: 'virtio0' });
      const line = request_irq(m, 0, 'virtio0', function* (cur) {
        const t0 = m.sim.now();
        const b = yield* dma_alloc_coherent(cur, dev, 8192, GFP_ATOMIC);
        st.ns = m.sim.now() - t0;
        st.handle = b === null ? -1 : b.dma_handle;
      });
      m.kthread('drv', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.point();
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(kinds(r)).to.not.include('might_sleep');
    expect(r.findings).to.deep.equal([]);
    expect(st.handle).to.be.at.least(0);
    expect(st.ns).to.be.below(10_000); // less than one hypercall
    expect(counters(r)['dma.coherent.from_pool']).to.equal(1);
  });

  it('GFP_KERNEL in a CoCo guest takes pages from CMA (large) or the buddy allocator (one page) and decrypts them', () => {
    const w = world(256 * MIB, 'tdx', 4 * MIB, 16 * MIB);
    const r = run('coherent-kernel-coco', w, { name: 'virtio0' }, function* (cur, _m, dev) {
      const big = yield* dma_alloc_coherent(cur, dev, 64 * 1024, GFP_KERNEL);
      const small = yield* dma_alloc_coherent(cur, dev, 4096, GFP_KERNEL);
      expect(big).to.not.equal(null);
      expect(small).to.not.equal(null);
      yield* dma_free_coherent(cur, dev, 64 * 1024, big!.vaddr, big!.dma_handle);
      yield* dma_free_coherent(cur, dev, 4096, small!.vaddr, small!.dma_handle);
    });
    expect(r.findings).to.deep.equal([]);
    const c = counters(r);
    expect(c).to.deep.include({ 'dma.direct.alloc_cma': 1, 'dma.direct.alloc_buddy': 1, 'mm.decrypted_pages': 17, 'mm.encrypted_pages': 17, 'mm.cma_alloc': 1, 'mm.cma_release': 1 });
    // TDX: one MapGPA per conversion (four), and back to private one TDG.MEM.PAGE.ACCEPT per 4K page (16 + 1)
    expect(c['mm.hypercalls']).to.equal(4);
    expect(c['mm.tdx_accepts']).to.equal(17);
    expect(c['dma.coherent.from_pool']).to.equal(undefined);
  });

  it('without memory encryption GFP_ATOMIC on a coherent device uses the buddy allocator directly', () => {
    const w = world(128 * MIB, 'none', null);
    const r = run('coherent-atomic-plain', w, { name: 'nic' }, function* (cur, _m, dev) {
      const b = yield* dma_alloc_coherent(cur, dev, 8192, GFP_ATOMIC);
      yield* dma_free_coherent(cur, dev, 8192, b!.vaddr, b!.dma_handle);
    });
    expect(r.findings).to.deep.equal([]);
    expect(counters(r)).to.deep.include({ 'dma.direct.alloc_buddy': 1, 'dma.coherent.from_pages': 1 });
    expect(counters(r)['mm.hypercalls']).to.equal(undefined);
  });

  it('dma_alloc_contiguous returns nothing at once for GFP_ATOMIC, even with a CMA area', () => {
    const w = world(128 * MIB, 'none', null, 16 * MIB);
    const got: number[] = [];
    const r = run('contiguous-atomic', w, { name: 'cam' }, function* (cur, m, dev) {
      got.length = 0;
      const t0 = m.sim.now();
      got.push(yield* dma_alloc_contiguous(cur, dev, 64 * 1024, GFP_ATOMIC));
      got.push(m.sim.now() - t0);
      got.push(yield* dma_alloc_contiguous(cur, dev, 64 * 1024, GFP_KERNEL));
    });
    expect(got[0]).to.equal(-1);
    expect(got[1]).to.equal(0);
    expect(got[2]).to.be.at.least(0);
    expect(counters(r)['mm.cma_alloc']).to.equal(1);
  });

  it('dma_free_coherent with IRQs disabled is reported', () => {
    const w = world(128 * MIB, 'none', null);
    const p = memProgram('free-irqs-off', { image: w.img, cpus: 2 }, (m) => {
      dma_init(m, {});
      const dev = device_register(m, { name: 'nic' });
      m.kthread('drv', 0, function* (cur) {
        const b = yield* dma_alloc_coherent(cur, dev, 4096, GFP_KERNEL);
        const flags = yield* local_irq_save(cur);
        yield* dma_free_coherent(cur, dev, 4096, b!.vaddr, b!.dma_handle);
        yield* local_irq_restore(cur, flags);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(r.findings.map((f) => f.subkind)).to.include('free_irqs_disabled');
  });
});
