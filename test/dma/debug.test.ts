import { expect } from 'chai';
import { runIteration, type RunResult } from '../../scheduler';
import type { Machine } from '../../lib/kernel/machine';
import { fn } from '../../lib/kernel/stack';
import type { Task } from '../../lib/kernel/task';
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  debug_dma_alloc_coherent,
  debug_dma_free_coherent,
  debug_dma_map_page,
  debug_dma_map_sg,
  debug_dma_sync_sg,
  debug_dma_sync_single,
  debug_dma_unmap_page,
  debug_dma_unmap_sg,
  dma_debug_device_shutdown,
  dma_debug_entries,
  dma_init,
  device_register,
  type device,
  type DebugSg,
} from '../../lib/dma';
import { kernelProgram } from '../support/kernel';

type Body = (cur: Task, dev: device, m: Machine) => void;

/** One run: a device "nvme0" and a driver thread doing `body` inside a frame named nvme_queue_rq. */
function run(body: Body, o: { debug?: boolean; devOpts?: { maxSegSize?: number; segBoundaryMask?: number } } = {}): RunResult {
  const p = kernelProgram('dma-debug', 1, (m) => {
    dma_init(m, { debug: o.debug });
    const dev = device_register(m, { name: 'nvme0', ...o.devOpts });
    m.kthread('kworker/0:1', 0, function* (cur) {
      yield* fn(cur, 'nvme_queue_rq', (function* () {
        body(cur, dev, m);
        yield cur.thread.point();
      })());
    });
  });
  return runIteration(p, { iteration: 0 });
}

const dbg = (r: RunResult) => r.findings.filter((f) => f.kind === 'dma_debug');
const subkinds = (r: RunResult) => dbg(r).map((f) => f.subkind);
const A = 0x1234000;

function sg(addr: number, len: number): DebugSg {
  return { dma_address: addr, dma_length: len, length: len };
}

describe('dma/debug: CONFIG_DMA_API_DEBUG', () => {
  it('a correct map/sync/unmap, sg and coherent round trip reports nothing and leaves no entries', () => {
    let left = -1;
    const r = run((cur, dev) => {
      debug_dma_map_page(cur, dev, A, 4096, DMA_FROM_DEVICE, 'single');
      debug_dma_sync_single(cur, dev, A, 4096, DMA_FROM_DEVICE, false);
      debug_dma_sync_single(cur, dev, A + 512, 512, DMA_FROM_DEVICE, false); // a partial sync inside the mapping
      debug_dma_sync_single(cur, dev, A, 4096, DMA_FROM_DEVICE, true);
      debug_dma_unmap_page(cur, dev, A, 4096, DMA_FROM_DEVICE, 'single');
      const list = [sg(0x100000, 8192), sg(0x200000, 4096)];
      debug_dma_map_sg(cur, dev, list, 3, 2, DMA_TO_DEVICE);
      debug_dma_sync_sg(cur, dev, list, 3, DMA_TO_DEVICE, true);
      debug_dma_unmap_sg(cur, dev, list, 3, DMA_TO_DEVICE);
      debug_dma_alloc_coherent(cur, dev, 8192, 0x300000, 0xffff888000300000);
      debug_dma_free_coherent(cur, dev, 8192, 0x300000, 0xffff888000300000);
      // The same address mapped again after its unmap is fine.
      debug_dma_map_page(cur, dev, A, 4096, DMA_BIDIRECTIONAL, 'page');
      debug_dma_sync_single(cur, dev, A, 4096, DMA_TO_DEVICE, true); // BIDIRECTIONAL syncs either way
      debug_dma_unmap_page(cur, dev, A, 4096, DMA_BIDIRECTIONAL, 'page');
      left = dma_debug_entries(dev).length;
      dma_debug_device_shutdown(cur, dev);
    });
    expect(r.findings).to.deep.equal([]);
    expect(left).to.equal(0);
  });

  it('unmap of an address never mapped: unknown_unmap with the kernel text and the caller in the fingerprint', () => {
    const r = run((cur, dev) => debug_dma_unmap_page(cur, dev, A, 4096, DMA_TO_DEVICE));
    expect(subkinds(r)).to.deep.equal(['unknown_unmap']);
    const f = dbg(r)[0];
    expect(f.headline).to.equal('DMA-API: nvme0: device driver tries to free DMA memory it has not allocated [device address=0x0000000001234000] [size=4096 bytes]');
    expect(f.fingerprint).to.equal('dma_debug:unknown_unmap:nvme0@nvme_queue_rq');
    expect(f.text).to.match(/DMA-API: nvme0: [^\n]*\nWARNING: CPU: 0 PID: \d+ at kernel\/dma\/debug.c check_unmap\nCPU: 0 PID: \d+ Comm: kworker\/0:1[^\n]*\nCall Trace:\n <TASK>\n check_unmap\n nvme_queue_rq/);
    expect(f.logged).to.equal(true);
  });

  it('the same unmap twice: double_unmap (same text), naming where it was mapped', () => {
    const r = run((cur, dev) => {
      debug_dma_map_page(cur, dev, A, 4096, DMA_TO_DEVICE);
      debug_dma_unmap_page(cur, dev, A, 4096, DMA_TO_DEVICE);
      debug_dma_unmap_page(cur, dev, A, 4096, DMA_TO_DEVICE);
    });
    expect(subkinds(r)).to.deep.equal(['double_unmap']);
    const f = dbg(r)[0];
    expect(f.headline).to.match(/tries to free DMA memory it has not allocated/);
    expect((f.data as { mappedAt: { site: string } }).mappedAt.site).to.equal('nvme_queue_rq');
  });

  it('unmap of DMA_MAPPING_ERROR: invalid_unmap', () => {
    const r = run((cur, dev) => debug_dma_unmap_page(cur, dev, DMA_MAPPING_ERROR, 4096, DMA_TO_DEVICE));
    expect(subkinds(r)).to.deep.equal(['invalid_unmap']);
    expect(dbg(r)[0].headline).to.equal('DMA-API: nvme0: device driver tries to free an invalid DMA memory address');
  });

  it('wrong size, wrong direction, wrong function: one report each, and the entry is gone', () => {
    let left = -1;
    const r = run((cur, dev) => {
      debug_dma_map_page(cur, dev, A, 4096, DMA_TO_DEVICE, 'single');
      debug_dma_unmap_page(cur, dev, A, 2048, DMA_FROM_DEVICE, 'page');
      left = dma_debug_entries(dev).length;
    });
    expect(subkinds(r)).to.deep.equal(['size_mismatch', 'type_mismatch', 'direction_mismatch']);
    const [size, type, dir] = dbg(r);
    expect(size.headline).to.equal('DMA-API: nvme0: device driver frees DMA memory with different size [device address=0x0000000001234000] [map size=4096 bytes] [unmap size=2048 bytes]');
    expect(type.headline).to.match(/with wrong function .*\[mapped as single\] \[unmapped as page\]$/);
    expect(dir.headline).to.match(/with different direction .*\[mapped with DMA_TO_DEVICE\] \[unmapped with DMA_FROM_DEVICE\]$/);
    expect(left).to.equal(0);
    // num_errors=1: only the machine's first dma-debug error reaches the log; all are counted.
    expect(dbg(r).map((f) => f.logged)).to.deep.equal([true, false, false]);
  });

  it('sync of memory never mapped (sync_unmapped), past the mapping (sync_overflow), against its direction (sync_direction)', () => {
    const r = run((cur, dev) => {
      debug_dma_sync_single(cur, dev, A, 4096, DMA_FROM_DEVICE, false);
      debug_dma_map_page(cur, dev, A, 4096, DMA_FROM_DEVICE);
      debug_dma_sync_single(cur, dev, A + 2048, 4096, DMA_FROM_DEVICE, false);
      debug_dma_sync_single(cur, dev, A, 4096, DMA_TO_DEVICE, true);
      debug_dma_unmap_page(cur, dev, A, 4096, DMA_FROM_DEVICE);
    });
    expect(subkinds(r)).to.deep.equal(['sync_unmapped', 'sync_overflow', 'sync_direction']);
    const [un, over, dir] = dbg(r);
    expect(un.headline).to.equal('DMA-API: nvme0: device driver tries to sync DMA memory it has not allocated [device address=0x0000000001234000] [size=4096 bytes]');
    expect(un.text).to.match(/at kernel\/dma\/debug.c check_sync/);
    expect(over.headline).to.equal('DMA-API: nvme0: device driver syncs DMA memory outside allocated range [device address=0x0000000001234000] [allocation size=4096 bytes] [sync offset+size=6144]');
    expect(dir.headline).to.match(/syncs DMA memory with different direction .*\[mapped with DMA_FROM_DEVICE\] \[synced with DMA_TO_DEVICE\]/);
    // The same fingerprint for each sync_direction report: counted twice (different direction, write-only to device).
    expect(dir.count).to.equal(2);
  });

  it('sg: unmap with a different nents (sg_count_mismatch); a segment longer than max_seg_size (sg_segment)', () => {
    const r = run(
      (cur, dev) => {
        const list = [sg(0x100000, 4096), sg(0x200000, 8192)];
        debug_dma_map_sg(cur, dev, list, 2, 2, DMA_TO_DEVICE);
        debug_dma_unmap_sg(cur, dev, list, 3, DMA_TO_DEVICE);
      },
      { devOpts: { maxSegSize: 4096 } },
    );
    expect(subkinds(r)).to.deep.equal(['sg_segment', 'sg_count_mismatch']);
    expect(dbg(r)[0].headline).to.equal('DMA-API: nvme0: mapping sg segment longer than device claims to support [len=8192] [max=4096]');
    expect(dbg(r)[1].headline).to.equal('DMA-API: nvme0: device driver frees DMA sg list with different entry count [map count=2] [unmap count=3]');
    expect(dbg(r)[1].count).to.equal(2);
  });

  it('coherent: free with another CPU address (cpu_addr_mismatch), free of a streaming mapping (type_mismatch)', () => {
    const r = run((cur, dev) => {
      debug_dma_alloc_coherent(cur, dev, 4096, 0x300000, 0xffff888000300000);
      debug_dma_free_coherent(cur, dev, 4096, 0x300000, 0xffff888000400000);
      debug_dma_map_page(cur, dev, A, 4096, DMA_BIDIRECTIONAL);
      debug_dma_free_coherent(cur, dev, 4096, A, 0xffff888001234000);
    });
    expect(subkinds(r)).to.deep.equal(['cpu_addr_mismatch', 'type_mismatch']);
    expect(dbg(r)[0].headline).to.match(/different CPU address .*\[cpu alloc address=0xffff888000300000\] \[cpu free address=0xffff888000400000\]/);
  });

  it('leak at driver release: one report with the count and a line per entry (mapping site, task, CPU)', () => {
    let n = -1;
    const r = run((cur, dev) => {
      debug_dma_map_page(cur, dev, A, 4096, DMA_TO_DEVICE, 'single');
      debug_dma_alloc_coherent(cur, dev, 8192, 0x300000, 0xffff888000300000);
      n = dma_debug_device_shutdown(cur, dev);
    });
    expect(n).to.equal(2);
    expect(subkinds(r)).to.deep.equal(['leak']);
    const f = dbg(r)[0];
    expect(f.headline).to.equal('DMA-API: nvme0: device driver has pending DMA allocations while released from device [count=2]');
    expect(f.text).to.include('  [device address=0x0000000001234000] [size=4096 bytes] [mapped with DMA_TO_DEVICE] [mapped as single] at nvme_queue_rq (kworker/0:1/');
    expect(f.text).to.include('[device address=0x0000000000300000] [size=8192 bytes] [mapped with DMA_BIDIRECTIONAL] [mapped as coherent]');
    expect(f.text).to.match(/at kernel\/dma\/debug.c dma_debug_device_change/);
    expect((f.data as { count: number }).count).to.equal(2);
  });

  it('a release outside any task (cur null) still reports the leak', () => {
    let dev0: device | null = null;
    const p = kernelProgram('dma-debug-null', 1, (m) => {
      dma_init(m);
      const dev = device_register(m, { name: 'eth0' });
      dev0 = dev;
      m.kthread('t', 0, function* (cur) {
        debug_dma_map_page(cur, dev, A, 4096, DMA_TO_DEVICE);
        yield cur.thread.point();
        dma_debug_device_shutdown(null, dev);
      });
    });
    const r = runIteration(p, { iteration: 0 });
    expect(dev0).to.not.equal(null);
    expect(subkinds(r)).to.deep.equal(['leak']);
    expect(dbg(r)[0].fingerprint).to.equal('dma_debug:leak:eth0@driver_release');
    expect(dbg(r)[0].text).to.match(/WARNING: at kernel\/dma\/debug.c dma_debug_device_change/);
  });

  it('with debug off nothing is recorded or reported', () => {
    let left = -1;
    const r = run(
      (cur, dev) => {
        debug_dma_map_page(cur, dev, A, 4096, DMA_TO_DEVICE);
        debug_dma_unmap_page(cur, dev, A + 4096, 4096, DMA_TO_DEVICE);
        left = dma_debug_entries(dev).length;
        dma_debug_device_shutdown(cur, dev);
      },
      { debug: false },
    );
    expect(r.findings).to.deep.equal([]);
    expect(left).to.equal(0);
  });
});
