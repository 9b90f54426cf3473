/**
 * The folder imports form a DAG in one layered order (issue 20): the engine at the bottom, the
 * kernel model above it, then memory, DMA, devices, the detectors, the report formats, the
 * scenario layer, the CLI and the mocha helper, the scenarios, and the tests on top. The order
 * is written down once, here; any import that points up or sideways, or any folder cycle, fails.
 */
import { execFileSync } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { expect } from 'chai';
import { checkImports, findCycle, importsOf, scanEdges, type NamedEdge } from './import-graph';

/** Each folder may import the folders of earlier layers only. */
export const LAYERS: string[][] = [
  ['scheduler'],
  ['lib/kernel'],
  ['lib/mm'],
  ['lib/dma'],
  ['lib/devices'],
  ['lib/check'],
  ['lib/report'],
  ['lib/scenario'],
  ['lib/cli', 'lib/testing'],
  ['scenarios'],
  ['demo', 'bench'],
  ['test'],
  // doc and table generators: they run the demo and the tests' primitive programs
  ['scripts'],
];

/** The only allowed upward import: a scenario file run as a program loads the CLI, lazily. */
export const LAZY_EXCEPTIONS: NamedEdge[] = [
  { from: 'lib/scenario', to: 'lib/cli', file: 'lib/scenario/self-run.ts', why: 'runScenarioFile requires the CLI inside the function, only when a scenario file is run as a program' },
];

/**
 * PENDING: edges being removed by a branch not merged yet. The lead empties this list at merge;
 * an entry whose edge no longer exists fails the test below, so it cannot linger.
 */
export const PENDING: NamedEdge[] = [];

const ROOT = join(__dirname, '..', '..');

describe('architecture: folder imports', () => {
  const edges = scanEdges(ROOT, ['scheduler', 'lib', 'scenarios', 'demo', 'scripts', 'bench', 'test']);

  it('finds the edges it checks (the scan is not empty)', () => {
    const pairs = new Set(edges.map((e) => `${e.from}->${e.to}`));
    for (const p of ['lib/kernel->scheduler', 'lib/scenario->lib/check', 'lib/cli->lib/scenario', 'scenarios->lib/kernel', 'test->scenarios']) expect(pairs, p).to.include(p);
  });

  it('every import points down the layers, and the folders form no cycle', () => {
    const r = checkImports(edges, LAYERS, LAZY_EXCEPTIONS, PENDING);
    expect(r.violations, r.violations.join('\n')).to.deep.equal([]);
    expect(r.cycle, (r.cycle ?? []).join(' -> ')).to.equal(null);
  });

  it('the named exceptions and pending edges still exist (none lingers after its edge is gone)', () => {
    for (const x of [...LAZY_EXCEPTIONS, ...PENDING]) {
      expect(edges.some((e) => e.from === x.from && e.to === x.to && e.file === x.file), `${x.from} -> ${x.to} in ${x.file}`).to.equal(true);
    }
    // the lazy exception is lazy: a top-level import of the CLI there would be refused
    expect(edges.filter((e) => e.file === 'lib/scenario/self-run.ts' && e.to === 'lib/cli').every((e) => e.lazy)).to.equal(true);
  });
});

describe('architecture: loading a scenario', () => {
  it('loads neither the CLI nor the HTML renderer nor the tracer (a worker loads only what it runs)', function () {
    this.timeout(120000);
    // one process: what loading a scenario loaded, then (so the filter is shown to see them) what the CLI adds
    const code = [
      "const up = () => Object.keys(require.cache).map((k) => require('path').relative(process.cwd(), k)).filter((k) => /^lib[\\\\/](cli|report[\\\\/](html|trace))/.test(k));",
      "require('./scenarios/s03-swiotlb-nvme'); const before = up();",
      "require('./lib/cli/main'); console.log(JSON.stringify({ before, after: up() }));",
    ].join('\n');
    const r = JSON.parse(execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', code], { cwd: ROOT, encoding: 'utf8' })) as { before: string[]; after: string[] };
    expect(r.before).to.deep.equal([]);
    expect(r.after).to.include.members(['lib/cli/main.ts', 'lib/report/html.ts']);
  });
});

describe('architecture: the import check says no', () => {
  let root = '';
  const write = (file: string, text: string) => {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  };
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'irqsim-imports-'));
    write('scheduler/engine.ts', 'export const x = 1;\n');
    write('lib/kernel/irq.ts', "import { x } from '../../scheduler/engine';\nexport const y = x;\n");
    write('lib/scenario/hunt.ts', "import { y } from '../kernel/irq';\nexport const z = y;\n");
    write('lib/cli/main.ts', "import { z } from '../scenario/hunt';\nexport const main = () => z;\n");
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('accepts a clean tree', () => {
    const r = checkImports(scanEdges(root, ['scheduler', 'lib']), LAYERS);
    expect(r).to.deep.equal({ violations: [], cycle: null });
  });

  it('fails on a planted cycle (the engine importing the kernel model)', () => {
    write('scheduler/engine.ts', "import { y } from '../lib/kernel/irq';\nexport const x = 1;\nexport const w = y;\n");
    const r = checkImports(scanEdges(root, ['scheduler', 'lib']), LAYERS);
    expect(r.violations.join('\n')).to.match(/scheduler -> lib\/kernel points up \(scheduler\/engine\.ts:1/);
    expect(r.cycle).to.deep.equal(['lib/kernel', 'scheduler', 'lib/kernel']);
  });

  it('fails on an upward require(), top-level or lazy, outside the named exception', () => {
    write('lib/kernel/irq.ts', "export function f() {\n  return require('../cli/main');\n}\n");
    const lazy = checkImports(scanEdges(root, ['scheduler', 'lib']), LAYERS, LAZY_EXCEPTIONS);
    expect(lazy.violations.join('\n')).to.match(/lib\/kernel -> lib\/cli points up/);
    write('lib/scenario/self-run.ts', "const m = require('../cli/main');\nexport const g = m;\n");
    const top = checkImports(scanEdges(root, ['scheduler', 'lib']), LAYERS, LAZY_EXCEPTIONS);
    expect(top.violations.join('\n')).to.match(/lib\/scenario -> lib\/cli points up \(lib\/scenario\/self-run\.ts:1/);
    expect(top.cycle).to.deep.equal(['lib/cli', 'lib/scenario', 'lib/cli']);
  });

  it('accepts the named lazy exception and leaves it out of the cycle search', () => {
    write('lib/scenario/self-run.ts', "export function run() {\n  const { main } = require('../cli/main');\n  return main;\n}\n");
    expect(checkImports(scanEdges(root, ['scheduler', 'lib']), LAYERS, LAZY_EXCEPTIONS)).to.deep.equal({ violations: [], cycle: null });
  });

  it('fails on a sideways import within a layer and on a folder in no layer', () => {
    write('lib/testing/hunt.ts', "import { main } from '../cli/main';\nexport const h = main;\n");
    write('lib/newthing/x.ts', "export * from '../kernel/irq';\n");
    const r = checkImports(scanEdges(root, ['scheduler', 'lib']), LAYERS);
    expect(r.violations.join('\n')).to.match(/lib\/testing -> lib\/cli points sideways/);
    expect(r.violations.join('\n')).to.match(/lib\/newthing is in no layer/);
  });

  it('finds cycles in a synthetic graph and reads every import form, not comments', () => {
    expect(findCycle([{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'c', to: 'a' }])).to.deep.equal(['a', 'b', 'c', 'a']);
    expect(findCycle([{ from: 'a', to: 'b' }, { from: 'a', to: 'c' }, { from: 'b', to: 'c' }])).to.equal(null);
    const src = "import a from './a';\nimport type { B } from \"./b\";\nexport * from './c';\nconst d = import('./d');\n// import e from './e';\n/* require('./f') */\nfunction g() {\n  return require('./g');\n}\nimport 'fs';\n";
    expect(importsOf(src)).to.deep.equal([
      { spec: './a', line: 1, lazy: false },
      { spec: './b', line: 2, lazy: false },
      { spec: './c', line: 3, lazy: false },
      { spec: './d', line: 4, lazy: false },
      { spec: './g', line: 8, lazy: true },
    ]);
  });
});
