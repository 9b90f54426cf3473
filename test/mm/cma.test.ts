import { expect } from 'chai';
import { Engine, makeStrategy, runIteration, type RunResult } from '../../scheduler';
import { installCmaCheck } from '../../lib/check/cma';
import { raise_irq, request_irq } from '../../lib/kernel/irq';
import type { Machine } from '../../lib/kernel/machine';
import { rcu_read_lock, rcu_read_unlock } from '../../lib/kernel/rcu';
import { DECLARE_WORK, queue_work, system_wq } from '../../lib/kernel/workqueue';
import { ALLOC_CMA, MIB, MIGRATE_CMA, MIGRATE_MOVABLE, mm, mm_prepare, type MemoryImage } from '../../lib/mm';
import { CMA_MIGRATE_PAGE_NS, cma_alloc, cma_area, cma_declare_contiguous, cma_release, type CmaDecl } from '../../lib/mm/cma';
import { memProgram } from '../support/memory';
import type { KernelWorld } from '../support/kernel';

const kinds = (r: RunResult) => r.findings.map((f) => f.kind);
const once = (p: ReturnType<typeof memProgram>) => runIteration(p, { iteration: 0 });

/** A 64 MiB machine with a 32 MiB CMA area (the top half: DMA32 from 16 MiB, area from 32 MiB). */
function image(): { img: MemoryImage; decl: CmaDecl } {
  const img = mm_prepare({ memory: 64 * MIB });
  const decl = cma_declare_contiguous(img, 32 * MIB, 'reserved');
  return { img, decl };
}

/** Occupy the first `n` pages of the area with movable (migratable) order-0 pages. */
function fillMovable(m: Machine, decl: CmaDecl, n: number): void {
  const phys = mm(m).phys;
  const z = phys.zoneOf(decl.basePfn);
  const others: number[] = [];
  let inside = 0;
  while (inside < n) {
    const pfn = phys.rmqueue(z, 0, MIGRATE_MOVABLE, ALLOC_CMA);
    if (pfn < 0) throw new Error('fillMovable: out of memory');
    if (pfn >= decl.basePfn && pfn < decl.basePfn + n) inside++;
    else others.push(pfn);
  }
  for (const pfn of others) phys.free(pfn, 0);
}

function cmaProgram(name: string, img: MemoryImage, build: (m: Machine, log: string[]) => void, cpus = 2) {
  return memProgram(name, { image: img, cpus }, (m, log) => {
    installCmaCheck(m);
    build(m, log);
  });
}

describe('mm: CMA', () => {
  it('declares an aligned area high below 4 GiB whose pageblocks are MIGRATE_CMA, kept by the image snapshot', () => {
    const { img, decl } = image();
    expect(decl).to.deep.equal({ name: 'reserved', basePfn: 8192, count: 8192, orderPerBit: 0 });
    const phys = img.phys;
    for (let p = decl.basePfn; p < decl.basePfn + decl.count; p += 512) expect(phys.pageblockMigratetype(p)).to.equal(MIGRATE_CMA);
    expect(phys.pageblockMigratetype(decl.basePfn - 1)).to.equal(MIGRATE_MOVABLE);
    expect(phys.zoneOf(decl.basePfn).nr_free_cma).to.equal(8192);
    expect(phys.checkInvariants()).to.equal(null);
    img.restore();
    expect(phys.pageblockMigratetype(decl.basePfn)).to.equal(MIGRATE_CMA);
    // A second area goes below the first; a fixed base must be aligned.
    const second = cma_declare_contiguous(img, 5 * MIB, 'second');
    expect(second).to.deep.include({ basePfn: 8192 - 2048, count: 2048 });
    expect(() => cma_declare_contiguous(img, 4 * MIB, 'bad', { base: 3 * MIB })).to.throw(/base not aligned to 1024 pages/);
  });

  it('from a hardirq handler: might_sleep (alloc_mutex) and cma_atomic', () => {
    const { img } = image();
    const p = cmaProgram('cma-hardirq', img, (m) => {
      const line = request_irq(m, 0, 'dev_irq', function* dev_irq(cur) {
        yield* cma_alloc(cur, cma_area(m), 16, 4, false);
      });
      m.kthread('t', 0, function* (cur) {
        yield* raise_irq(cur, line);
        yield cur.thread.point();
      });
    });
    const r = once(p);
    expect(kinds(r)).to.include('might_sleep');
    expect(kinds(r)).to.include('cma_atomic');
    const f = r.findings.find((x) => x.kind === 'cma_atomic')!;
    expect(f.fingerprint).to.equal('cma_atomic:cma_alloc@dev_irq');
    expect(f.text).to.match(/^WARNING: CPU: 0 PID: \d+ at mm\/cma.c cma_alloc: called from atomic context \(in_atomic\(\): 1, irqs_disabled\(\): 1\)/);
    expect(f.text).to.match(/hardirq[^]*Call Trace:\n <IRQ>\n cma_alloc\n dev_irq/);
  });

  it('under a spinlock or in an RCU reader it is cma_atomic too; from process context nothing', () => {
    const { img } = image();
    const p = cmaProgram('cma-contexts', img, (m) => {
      m.kthread('t', 0, function* (cur) {
        const c = cma_area(m);
        yield* rcu_read_lock(cur);
        const a = yield* cma_alloc(cur, c, 1, 0);
        yield* rcu_read_unlock(cur);
        yield* cma_release(cur, c, a, 1);
        yield* cma_release(cur, c, yield* cma_alloc(cur, c, 1, 0), 1);
      });
    });
    const r = once(p);
    const f = r.findings.filter((x) => x.kind === 'cma_atomic');
    expect(f).to.have.length(1);
    expect(f[0].headline).to.match(/RCU read-side section \(depth 1\)/);
  });

  it('from a worker on system_wq: succeeds with an aligned range inside the area', () => {
    const { img, decl } = image();
    let got = -2;
    const p = cmaProgram('cma-worker', img, (m) => {
      const work = DECLARE_WORK(m, 'grow_pool', function* grow_pool(cur) {
        got = yield* cma_alloc(cur, cma_area(m), 300, 9, false);
      });
      m.kthread('t', 0, function* (cur) {
        yield* queue_work(cur, system_wq(m), work);
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]);
    expect(got).to.be.at.least(decl.basePfn);
    expect(got + 300).to.be.at.most(decl.basePfn + decl.count);
    expect(got % 512).to.equal(0);
    expect(r.metrics.counters).to.deep.include({ 'mm.cma_alloc': 1, 'mm.cma_alloc_pages': 300 });
  });

  it('migrates movable pages out of the range: pages conserved, invariants hold, time charged', () => {
    const { img, decl } = image();
    const st: Record<string, number> = {};
    const p = cmaProgram('cma-migrate', img, (m) => {
      fillMovable(m, decl, 1500);
      m.kthread('t', 0, function* (cur) {
        const phys = mm(m).phys;
        const free0 = mm(m).nrFree();
        const t0 = m.sim.now();
        const pfn = yield* cma_alloc(cur, cma_area(m), 2048, 10, false);
        st.dt = m.sim.now() - t0;
        st.pfn = pfn;
        st.freeDelta = free0 - mm(m).nrFree();
        let movableInside = 0;
        for (let q = pfn; q < pfn + 2048; q++) if (phys.isMovable(q)) movableInside++;
        st.movableInside = movableInside;
        st.invariants = phys.checkInvariants() === null ? 1 : 0;
        expect(yield* cma_release(cur, cma_area(m), pfn, 2048)).to.equal(true);
        st.freeBack = free0 - mm(m).nrFree();
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]);
    expect(st).to.deep.include({ pfn: decl.basePfn, freeDelta: 2048, movableInside: 0, invariants: 1, freeBack: 0 });
    expect(st.dt).to.be.at.least(1500 * CMA_MIGRATE_PAGE_NS);
    expect(r.metrics.counters?.['mm.cma_migrated_pages']).to.equal(1500);
  });

  it('an unmovable page makes a range -EBUSY: the next aligned range is tried; the whole area fails with the kernel message', () => {
    const { img, decl } = image();
    const got: number[] = [];
    const p = cmaProgram('cma-busy', img, (m) => {
      got.length = 0;
      const phys = mm(m).phys;
      // A pinned page at the area's start: allocated, and not movable.
      expect(phys.isolateFreeRange(decl.basePfn + 5, 1)).to.equal(true);
      m.kthread('t', 0, function* (cur) {
        const c = cma_area(m);
        got.push(yield* cma_alloc(cur, c, 1024, 10, false));
        got.push(yield* cma_alloc(cur, c, 8192, 0, false));
        got.push(yield* cma_alloc(cur, c, 8192, 0, true)); // no_warn
        got.push(yield* cma_alloc(cur, c, 9000, 0, false)); // larger than the area
      });
    });
    const r = once(p);
    expect(got).to.deep.equal([decl.basePfn + 1024, -1, -1, -1]);
    expect(r.metrics.counters).to.deep.include({ 'mm.cma_alloc': 1, 'mm.cma_fail': 3 });
    expect(r.metrics.counters?.['mm.cma_busy_retry']).to.be.at.least(1);
  });

  it('logs "alloc failed" with the errno unless no_warn', () => {
    const { img, decl } = image();
    const e = new Engine();
    const p = cmaProgram('cma-fail-log', img, (m) => {
      const phys = mm(m).phys;
      phys.rmqueue(phys.zoneOf(decl.basePfn), 0, MIGRATE_CMA, 0);
      m.kthread('t', 0, function* (cur) {
        const c = cma_area(m);
        yield* cma_alloc(cur, c, 8192, 0, false);
        yield* cma_alloc(cur, c, 8192, 0, true);
        yield* cma_alloc(cur, c, 9000, 0, false);
      });
    });
    e.run(p, makeStrategy({ strategy: 'dfs' }), 0, 100);
    const text = (e.world as KernelWorld).m.log.text();
    const lines = text.split('\n').filter((l) => l.includes('cma_alloc'));
    expect(lines.map((l) => l.replace(/^\[[ .0-9]+\] /, ''))).to.deep.equal([
      'cma: cma_alloc: reserved: alloc failed, req-size: 8192 pages, ret: -16',
      'cma: cma_alloc: reserved: alloc failed, req-size: 9000 pages, ret: -12',
    ]);
  });

  it('two concurrent callers serialise on cma->alloc_mutex (every schedule)', () => {
    const { img, decl } = image();
    const cost = 1024 * CMA_MIGRATE_PAGE_NS;
    const p = cmaProgram('cma-two', img, (m, log) => {
      fillMovable(m, decl, 2048);
      m.addHooks({
        lockAcquired(cur, lock) {
          if (lock.lockClass === '&cma->alloc_mutex') log.push(`acquired ${cur.comm}`);
        },
        lockRelease(cur, lock) {
          if (lock.lockClass === '&cma->alloc_mutex') log.push(`released ${cur.comm}`);
        },
      });
      for (const cpu of [0, 1]) {
        m.kthread(`alloc${cpu}`, cpu, function* (cur) {
          const pfn = yield* cma_alloc(cur, cma_area(m), 1024, 10, false);
          log.push(`done ${pfn} ${m.sim.now()}`);
        });
      }
    });
    const e = new Engine({ window: Infinity });
    const s = makeStrategy({ strategy: 'dfs', preemptionBound: 2 });
    let runs = 0;
    while (!s.exhausted() && runs < 300) {
      const r = e.run(p, s, 0, 100);
      const log = (e.world as KernelWorld).log;
      expect(r.findings).to.deep.equal([]);
      const held = log.filter((l) => !l.startsWith('done'));
      // Never two holders: acquire and release alternate, one caller at a time.
      expect(held).to.have.length(4);
      expect(held[0].replace('acquired', 'released')).to.equal(held[1]);
      expect(held[2].replace('acquired', 'released')).to.equal(held[3]);
      expect(held[0]).to.not.equal(held[2]);
      const done = log.filter((l) => l.startsWith('done')).map((l) => l.split(' ').map(Number));
      expect(done.map((d) => d[1]).sort((a, b) => a - b)).to.deep.equal([decl.basePfn, decl.basePfn + 1024]);
      if (runs === 0) {
        // The default schedule: the second migration starts when the first caller drops the mutex.
        expect(Math.max(...done.map((d) => d[2]))).to.be.at.least(2 * cost);
      }
      runs++;
    }
    expect(runs).to.be.greaterThan(1);
  });

  it('cma_release gives the pages back and the range can be allocated again; foreign pages are refused', () => {
    const { img, decl } = image();
    const got: (number | boolean)[] = [];
    const p = cmaProgram('cma-release', img, (m) => {
      got.length = 0;
      m.kthread('t', 0, function* (cur) {
        const c = cma_area(m);
        const a = yield* cma_alloc(cur, c, 64, 6, false);
        const b = yield* cma_alloc(cur, c, 64, 6, false);
        got.push(a, b, c.allocated);
        got.push(yield* cma_release(cur, c, a, 64));
        got.push(yield* cma_release(cur, c, decl.basePfn - 64, 64)); // not in the area
        got.push(yield* cma_alloc(cur, c, 64, 6, false), c.allocated);
        got.push(mm(m).phys.checkInvariants() === null);
      });
    });
    const r = once(p);
    expect(r.findings).to.deep.equal([]);
    expect(got).to.deep.equal([decl.basePfn, decl.basePfn + 64, 128, true, false, decl.basePfn, 128, true]);
    expect(r.metrics.counters).to.deep.include({ 'mm.cma_alloc': 3, 'mm.cma_release': 1 });
  });
});
