import { expect } from 'chai';
import { Dfs, Engine, InputError, discoverPrefixes, dfsSeed, hunt, planHunt, type HuntOptions, type HuntPlan, type HuntResult, type IterationRecord, type Program } from '../../scheduler';
import { huntParallel, type ProgramSource } from '../../scheduler/pool';
import { grid, toyProgram } from '../../scheduler/examples/toys';

/**
 * Parallel, sharded and resumed hunts give exactly the one-process hunt: the same findings
 * (fingerprint, lowest iteration, schedule), schedules run, totals and coverage. Worker threads
 * start ts-node each (seconds on a loaded machine), so the worker cases are few and small.
 */

interface Toy {
  name: string;
  args: number[];
}

const TOYS = require.resolve('../../scheduler/examples/toys');

function sourceOf(t: Toy): ProgramSource {
  return { module: TOYS, export: 'toyProgram', args: { name: t.name, args: t.args } };
}

/** The result without the plan's DFS prefixes (one process does not split the tree). */
function comparable(h: HuntResult): unknown {
  const j = JSON.parse(JSON.stringify(h)) as HuntResult;
  if (j.plan) j.plan = { ...j.plan, prefixes: j.plan.prefixes === null ? null : [] };
  return j;
}

function expectSame(got: HuntResult, want: HuntResult): void {
  // the findings first, for a readable failure
  const key = (h: HuntResult) => h.findings.map((f) => ({ fingerprint: f.fingerprint, iteration: f.iteration, schedule: f.schedule, runs: f.runs }));
  expect(key(got)).to.deep.equal(key(want));
  expect(got.schedulesRun).to.equal(want.schedulesRun);
  expect(comparable(got)).to.deep.equal(comparable(want));
}

/** What identifies a path or seeded run, whichever process recorded it. */
const pathOf = (r: IterationRecord) => ({ seed: r.seed, steps: r.steps, interleaving: r.interleaving, metrics: r.metrics, kinds: r.findings.map((f) => f.fingerprint) });

/** Runs shards 1..n of a hunt separately; their records by unit and the (common) plan. */
function runShards(program: Program, opts: HuntOptions, n: number): { units: Map<number, IterationRecord[]>; plan: HuntPlan } {
  const units = new Map<number, IterationRecord[]>();
  const plans: string[] = [];
  let plan: HuntPlan | undefined;
  for (let i = 1; i <= n; i++) {
    const h = hunt(program, {
      ...opts,
      shard: { index: i, count: n },
      onUnit: (u, recs) => {
        expect(u % n, `unit ${u} in shard ${i}/${n}`).to.equal(i - 1);
        expect(units.has(u)).to.equal(false);
        units.set(u, JSON.parse(JSON.stringify(recs)) as IterationRecord[]);
      },
    });
    plan = h.plan as HuntPlan;
    plans.push(JSON.stringify(plan));
  }
  expect(new Set(plans).size, 'every shard plans the hunt alike').to.equal(1);
  return { units, plan: plan as HuntPlan };
}

function mergeShards(program: Program, opts: HuntOptions, n: number): HuntResult {
  const { units, plan } = runShards(program, opts, n);
  return hunt(program, { ...opts, done: units, foldOnly: true, plan });
}

/** Every unit's records of an uninterrupted hunt, in unit order (what --out would have kept). */
function unitsOf(program: Program, opts: HuntOptions): { units: [number, IterationRecord[]][]; result: HuntResult } {
  const units: [number, IterationRecord[]][] = [];
  const result = hunt(program, { ...opts, onUnit: (u, recs) => units.push([u, JSON.parse(JSON.stringify(recs)) as IterationRecord[]]) });
  return { units, result };
}

const SLEEP = new Int32Array(new SharedArrayBuffer(4));

/**
 * huntParallel with the plan given, on `workers` threads. The main thread runs units too, and
 * would finish these small hunts before a thread has booted: until a thread's unit arrives, its
 * runs sleep 50 ms each (wall clock only; the plan is given, so the wrapper's hash is unused).
 * `threadUnits` counts units that came from threads: every unit the main thread runs is
 * reported (onUnit) right after its runs, a thread's unit arrives with no run in between.
 */
async function onWorkers(toy: Toy, opts: HuntOptions, workers: number, plan: HuntPlan): Promise<{ result: HuntResult; threadUnits: number; units: Map<number, IterationRecord[]> }> {
  const real = toyProgram(toy);
  let localRuns = 0;
  let threadUnits = 0;
  const program: Program = {
    ...real,
    setup(sim) {
      localRuns++;
      if (threadUnits === 0 && workers > 1) Atomics.wait(SLEEP, 0, 0, 50);
      real.setup(sim);
    },
  };
  const units = new Map<number, IterationRecord[]>();
  const result = await huntParallel(program, sourceOf(toy), {
    ...opts,
    workers,
    plan,
    onUnit: (u, recs) => {
      if (localRuns === 0) threadUnits++;
      localRuns = 0;
      expect(units.has(u), `unit ${u} reported twice`).to.equal(false);
      units.set(u, recs);
    },
  });
  return { result, threadUnits, units };
}

const MIXED: Toy = { name: 'mixed', args: [3, 2] };
const MIXED2: Toy = { name: 'mixed', args: [2, 2] };
const LU3: Toy = { name: 'lostUpdate', args: [3, 1, 0] };

// pct: three distinct no_progress fingerprints, first at iterations 4, 31 and 65 (units 0, 1, 4; PCT's draws as of distinct priorities and change points)
const PCT: HuntOptions = { strategy: 'pct', depth: 3, seed: 7, iterations: 200, stopAtFirst: false };
// random: the first finding at iteration 84 (unit 5)
const RANDOM_STOP: HuntOptions = { strategy: 'random', seed: 2, iterations: 300 };
// dfs on LU3: 54 subtrees of 1 or 2 paths (90 in all); the budget ends in the middle of them
const DFS: HuntOptions = { strategy: 'dfs', seed: 3, iterations: 60, stopAtFirst: false };
const PORTFOLIO: HuntOptions = { portfolio: true, seed: 7, iterations: 150, stopAtFirst: false };

describe('parallel and sharded hunts', () => {
  describe('in one process', () => {
    it('the fixtures are what the cases below rely on', () => {
      const p = hunt(toyProgram(MIXED), PCT);
      expect(p.findings.map((f) => f.iteration)).to.deep.equal([4, 31, 65]);
      const r = hunt(toyProgram(MIXED2), RANDOM_STOP);
      expect(r.firstIteration).to.equal(84);
      expect(r.schedulesRun).to.equal(85);
      const d = hunt(toyProgram(LU3), { ...DFS, splitDfs: true });
      expect(d.plan?.prefixes?.length).to.equal(54);
      expect(d.schedulesRun).to.equal(60);
      expect(d.exhausted).to.equal(false);
      expect(d.findings.length).to.be.greaterThan(0);
    });

    it('DFS subtrees, concatenated in prefix order, are exactly the sequential enumeration', () => {
      for (const bound of [Infinity, 1]) {
        const program = grid(3, 3);
        const e = new Engine();
        const walk = (d: Dfs): string[] => {
          const out: string[] = [];
          while (!d.exhausted()) {
            e.run(program, d, 0, 20);
            out.push(JSON.stringify((e.world as { order: number[] }).order));
          }
          return out;
        };
        const whole = walk(new Dfs(bound));
        const prefixes = discoverPrefixes(program, e, { strategy: 'dfs', ...(bound === Infinity ? {} : { preemptionBound: bound }) }, 0, 20);
        expect(prefixes.length).to.be.greaterThan(1);
        const split = prefixes.flatMap((pre) => walk(new Dfs(bound).restrict(pre)));
        expect(split).to.deep.equal(whole);
        expect(new Set(whole).size).to.equal(whole.length);
      }
    });

    it('a split DFS hunt runs the unsplit one\'s paths in the same order, with the same result', () => {
      for (const [toy, opts] of [
        [LU3, DFS],
        [LU3, { ...DFS, iterations: 1000 }], // exhausted
        [{ name: 'grid', args: [3, 3] }, { strategy: 'dfs', iterations: 400, stopAtFirst: false }],
        [{ name: 'grid', args: [3, 3] }, { strategy: 'dfs', preemptionBound: 1, iterations: 400, stopAtFirst: false }],
      ] as [Toy, HuntOptions][]) {
        const program = toyProgram(toy);
        const one = unitsOf(program, opts);
        expect(one.units.map(([u]) => u)).to.deep.equal([0]);
        const split = unitsOf(program, { ...opts, splitDfs: true });
        expect(split.units.length).to.be.greaterThan(1);
        expect(split.units.flatMap(([, r]) => r)).to.deep.equal(one.units[0][1]);
        expectSame(split.result, one.result);
        expect(dfsSeed(opts.seed ?? 0)).to.equal(one.units[0][1][0].seed);
      }
    });

    it('3 shards folded together are the one-process hunt (random, pct, dfs, portfolio)', () => {
      for (const [toy, opts] of [
        [MIXED, PCT],
        [MIXED2, { ...RANDOM_STOP, stopAtFirst: false, iterations: 100 }],
        [LU3, DFS],
        [LU3, { ...DFS, iterations: 1000 }],
        [MIXED, PORTFOLIO],
      ] as [Toy, HuntOptions][]) {
        const program = toyProgram(toy);
        expectSame(mergeShards(program, opts, 3), hunt(program, opts));
      }
    });

    it('3 shards folded together stop where one process stops (stopAtFirst, stopWhenSeen, stopWhen)', () => {
      const cases: [Toy, HuntOptions, number][] = [
        [MIXED2, RANDOM_STOP, 85],
        [MIXED2, { ...RANDOM_STOP, stopWhenSeen: ['no_progress'] }, 85],
        [MIXED, { ...PCT, stopWhen: (found) => found.length >= 3 }, 66],
        [LU3, { strategy: 'dfs', iterations: 1000 }, 2],
      ];
      for (const [toy, opts, run] of cases) {
        const program = toyProgram(toy);
        const one = hunt(program, opts);
        if (run >= 0) expect(one.schedulesRun).to.equal(run);
        expect(one.firstIteration).to.be.at.least(0);
        const { units, plan } = runShards(program, opts, 3);
        // a shard stops at its own first finding: units past the stopping point may be missing
        const merged = hunt(program, { ...opts, done: units, foldOnly: true, plan });
        expectSame(merged, one);
      }
    });

    it('a resumed hunt equals the uninterrupted one (a prefix of units, or units with a gap)', () => {
      for (const [toy, opts] of [
        [MIXED, PCT],
        [MIXED2, RANDOM_STOP],
        [LU3, { ...DFS, splitDfs: true }],
        [MIXED, PORTFOLIO],
      ] as [Toy, HuntOptions][]) {
        const program = toyProgram(toy);
        const whole = unitsOf(program, opts);
        expect(whole.units.length).to.be.greaterThan(4);
        for (const keep of [[0, 1, 2], [0, 1, 3], [2]]) {
          const done = new Map(whole.units.filter(([u]) => keep.includes(u)));
          const ran: number[] = [];
          const resumed = hunt(program, { ...opts, done, plan: whole.result.plan, onUnit: (u) => ran.push(u) });
          expectSame(resumed, whole.result);
          expect(ran.filter((u) => keep.includes(u)), 'done units are not run again').to.deep.equal([]);
        }
      }
    });

    it('folding records with a unit missing before the stopping point is a clear InputError', () => {
      const program = toyProgram(MIXED);
      const whole = unitsOf(program, PCT);
      const done = new Map(whole.units.filter(([u]) => u !== 2));
      expect(() => hunt(program, { ...PCT, done, foldOnly: true, plan: whole.result.plan }))
        .to.throw(InputError, /unit 2 of the hunt is missing/);
      // records of another hunt (other seed) do not fold silently into this one
      const other = unitsOf(program, { ...PCT, seed: 8 });
      const mixed = new Map([...whole.units.filter(([u]) => u !== 0), other.units[0]]);
      let r: HuntResult | null = null;
      try {
        r = hunt(program, { ...PCT, done: mixed, foldOnly: true, plan: whole.result.plan });
      } catch (e) {
        expect(e).to.be.instanceOf(InputError);
      }
      if (r !== null) expect(comparable(r)).to.not.deep.equal(comparable(whole.result));
    });
  });

  describe('on worker threads', () => {
    it('pct: 1, 2 and 3 workers give the one-process hunt', async function () {
      this.timeout(120_000);
      const one = hunt(toyProgram(MIXED), PCT);
      for (const workers of [1, 2, 3]) {
        const r = await onWorkers(MIXED, PCT, workers, one.plan as HuntPlan);
        expectSame(r.result, one);
        expect([...r.units.keys()].sort((a, b) => a - b)).to.deep.equal([...Array(Math.ceil(200 / 16)).keys()]);
        if (workers > 1) expect(r.threadUnits, 'units run on worker threads').to.be.greaterThan(0);
        else expect(r.threadUnits).to.equal(0);
      }
    });

    it('random: stopAtFirst stops at the same iteration on 3 workers', async function () {
      this.timeout(60_000);
      const one = hunt(toyProgram(MIXED2), RANDOM_STOP);
      const r = await onWorkers(MIXED2, RANDOM_STOP, 3, one.plan as HuntPlan);
      expect(r.result.firstIteration).to.equal(84);
      expectSame(r.result, one);
    });

    it('stopWhenSeen and stopWhen stop at the same iteration on 2 workers', async function () {
      this.timeout(60_000);
      const seen: HuntOptions = { ...RANDOM_STOP, seed: 0, stopWhenSeen: ['no_progress'] };
      const a1 = hunt(toyProgram(MIXED2), seen);
      const a = await onWorkers(MIXED2, seen, 2, a1.plan as HuntPlan);
      expect(a.result.firstIteration).to.equal(135);
      expectSame(a.result, a1);
      const when: HuntOptions = { ...PCT, stopWhen: (found) => found.length >= 2 };
      const b1 = hunt(toyProgram(MIXED), when);
      const b = await onWorkers(MIXED, when, 2, b1.plan as HuntPlan);
      expect(b.result.schedulesRun).to.equal(32);
      expectSame(b.result, b1);
    });

    it('dfs: split by prefix over 2 workers, the same paths in the same order', async function () {
      this.timeout(60_000);
      const program = toyProgram(LU3);
      const one = unitsOf(program, DFS);
      const plan = planHunt(program, DFS, true);
      const r = await onWorkers(LU3, DFS, 2, plan);
      expectSame(r.result, one.result);
      const paths = [...r.units.keys()].sort((a, b) => a - b).flatMap((u) => r.units.get(u) as IterationRecord[]);
      // workers may run a little past the budget; the hunt's 60 paths are the first ones
      expect(paths.slice(0, 60).map(pathOf)).to.deep.equal(one.units[0][1].map(pathOf));
      // and the whole tree, on 3 workers
      const all = { ...DFS, iterations: 1000 };
      const r3 = await onWorkers(LU3, all, 3, planHunt(program, all, true));
      expect(r3.result.exhausted).to.equal(true);
      expectSame(r3.result, hunt(program, all));
    });

    it('portfolio: identical on 2 and 3 workers and in one process', async function () {
      this.timeout(90_000);
      const one = hunt(toyProgram(MIXED), PORTFOLIO);
      expect(one.strategy).to.equal('portfolio');
      expect(one.findings.length).to.be.greaterThan(1);
      for (const workers of [2, 3]) expectSame((await onWorkers(MIXED, PORTFOLIO, workers, one.plan as HuntPlan)).result, one);
    });

    it('resumed on 2 workers: equals the uninterrupted hunt and does not run the done units again', async function () {
      this.timeout(60_000);
      const program = toyProgram(MIXED);
      const whole = unitsOf(program, PCT);
      const keep = [0, 1, 2, 3, 5];
      const done = new Map(whole.units.filter(([u]) => keep.includes(u)));
      const r = await onWorkers(MIXED, { ...PCT, done }, 2, whole.result.plan as HuntPlan);
      expectSame(r.result, whole.result);
      expect([...r.units.keys()].filter((u) => keep.includes(u)), 'done units run again').to.deep.equal([]);
      // everything done: nothing runs, no thread starts
      const all = await huntParallel(program, sourceOf(MIXED), { ...PCT, workers: 3, done: new Map(whole.units), plan: whole.result.plan });
      expectSame(all, whole.result);
    });

    it('a worker that cannot build the program is an error, not a hang', async function () {
      this.timeout(60_000);
      const program = toyProgram(MIXED);
      const bad: ProgramSource = { module: TOYS, export: 'noSuchBuilder', args: {} };
      let err: unknown = null;
      try {
        // the main thread is slowed so the threads get there first
        const slow: Program = { ...program, setup: (sim) => (Atomics.wait(SLEEP, 0, 0, 50), program.setup(sim)) };
        await huntParallel(slow, bad, { ...PCT, workers: 2, plan: planHunt(program, PCT, true) });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(InputError);
      expect((err as Error).message).to.match(/does not export a function noSuchBuilder/);
    });
  });
});
