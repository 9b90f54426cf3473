/**
 * The command's start: --help, --version and a bad command answer without loading the model;
 * which tree bin/irqsim.js runs (dist/ or the sources); the TypeScript loader (one-line syntax
 * errors, its on-disk cache); ts-node's one-line syntax error in this repository.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'irqsim.js');
const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;

/** Runs bin/irqsim.js; `loaded` is whether the engine module was loaded by the time it exited. */
function irqsim(args: string[], cwd = ROOT): { code: number; out: string; err: string; loaded: boolean } {
  const probe = join(tmpdir(), `irqsim-probe-${process.pid}.js`);
  writeFileSync(probe, "process.on('exit', () => { if (Object.keys(require.cache).some((f) => /[\\\\/]scheduler[\\\\/]engine\\.(js|ts)$/.test(f))) process.stderr.write('<engine loaded>'); });\n");
  try {
    const r = spawnSync(process.execPath, ['-r', probe, BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, IRQSIM_YIELD_TIMEOUT: '0' } });
    const loaded = r.stderr.includes('<engine loaded>');
    // In a checkout with a stale dist/, bin first says it runs the sources (bin/root.js): not
    // the command's own output.
    const err = r.stderr.replace('<engine loaded>', '').split('\n').filter((l) => !l.startsWith('irqsim: dist/')).join('\n');
    return { code: r.status ?? -1, out: r.stdout, err, loaded };
  } finally {
    rmSync(probe, { force: true });
  }
}

describe('package: start-up', function () {
  this.timeout(120_000);

  it('--version prints package.json version without loading the model', () => {
    const r = irqsim(['--version']);
    expect(r.code).to.equal(0);
    expect(r.out).to.equal(`${VERSION}\n`);
    expect(r.loaded).to.equal(false);
  });

  it('--help prints the usage without loading the model, also after a command', () => {
    for (const args of [['--help'], ['hunt', '--help']]) {
      const r = irqsim(args);
      expect(r.code).to.equal(0);
      expect(r.out).to.match(args[0] === 'hunt' ? /^usage: irqsim hunt <scenario\|all>[^]*--perturb <name>/ : /^usage: irqsim </);
      expect(r.loaded).to.equal(false);
    }
  });

  it('a missing or unknown command is one line, exit 2, without loading the model', () => {
    const u = irqsim(['hnut', 'abba']);
    expect([u.code, u.err.trim().split('\n').length, u.loaded]).to.deep.equal([2, 1, false]);
    expect(u.err).to.match(/^irqsim: unknown command "hnut": expected list, run, hunt, replay, shrink, merge or report \(did you mean hunt\?\)$/m);
    const n = irqsim([]);
    expect([n.code, n.loaded]).to.deep.equal([2, false]);
    expect(n.err).to.match(/^irqsim: no command given/);
  });

  it('the probe sees the model load when a command runs (the checks above can fail)', () => {
    const r = irqsim(['list']);
    expect(r.code).to.equal(0);
    expect(r.loaded).to.equal(true);
  });

  describe('which tree bin runs', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { pick } = require(join(ROOT, 'bin', 'root.js')) as { pick: (root: string) => { dir: string; ts: boolean; note?: string } };
    let dir = '';
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'irqsim-root-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const file = (p: string, mtime: number) => {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), '');
      utimesSync(join(dir, p), mtime, mtime);
    };

    it('an installed package (no sources) runs dist/', () => {
      file('dist/lib/cli/main.js', 1000);
      expect(pick(dir)).to.deep.equal({ dir: join(dir, 'dist'), ts: false });
    });

    it('a checkout runs dist/ when it is built after every source, else the sources, saying why', () => {
      file('tsconfig.build.json', 1000);
      file('lib/cli/main.ts', 1000);
      file('scheduler/engine.ts', 1000);
      expect(pick(dir)).to.include({ dir, ts: true, note: 'dist/ is not built (npm run build): running the TypeScript sources' });
      file('dist/.built', 2000);
      expect(pick(dir)).to.deep.equal({ dir: join(dir, 'dist'), ts: false });
      file('scheduler/strategies/new-strategy.ts', 3000);
      expect(pick(dir)).to.include({ dir, ts: true, note: 'dist/ is older than the sources (npm run build): running the TypeScript sources' });
    });
  });

  describe('TypeScript loader', () => {
    let cache = '';
    let loader: { compile: (src: string, file: string) => string };
    before(() => {
      cache = mkdtempSync(join(tmpdir(), 'irqsim-cache-'));
      process.env.IRQSIM_CACHE_DIR = cache;
      const path = require.resolve(join(ROOT, 'scheduler', 'loader.js'));
      delete require.cache[path];
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loader = require(path);
    });
    after(() => {
      delete process.env.IRQSIM_CACHE_DIR;
      delete require.cache[require.resolve(join(ROOT, 'scheduler', 'loader.js'))];
      rmSync(cache, { recursive: true, force: true });
    });

    it('strips types and keeps every line where it was', () => {
      const src = "import type { X } from './x';\nconst a: number = 1;\nexport function f(x: X): number {\n  return a;\n}\n";
      const js = loader.compile(src, '/tmp/a.ts');
      expect(js).not.to.match(/: number|import type/);
      expect(js.split('\n').findIndex((l) => l.includes('return a'))).to.equal(3);
    });

    it('serves a second load of the same source from its cache, and a changed source afresh', () => {
      const src = 'export const v: number = 1;\n';
      const list = () => spawnSync('find', [cache, '-name', '*.js'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
      const before = list();
      loader.compile(src, '/tmp/c.ts');
      // Plant a different output in the new cache entry: a cached load returns it unchanged.
      const entries = list().filter((f) => !before.includes(f));
      expect(entries).to.have.length(1);
      writeFileSync(entries[0], 'exports.v = 42;\n');
      expect(loader.compile(src, '/tmp/c.ts')).to.equal('exports.v = 42;\n');
      expect(loader.compile('export const v: number = 2;\n', '/tmp/c.ts')).to.match(/= 2/);
    });

    it('a syntax error is one line, file:line:col: message', () => {
      let e: (Error & { code?: string }) | null = null;
      try {
        loader.compile('const a = 1;\nconst b = {x: 1;\n', join(process.cwd(), 'bad.ts'));
      } catch (x) {
        e = x as Error;
      }
      expect(e?.code).to.equal('IRQSIM_TS_SYNTAX');
      expect(e?.message).to.equal('bad.ts:2:16: Unexpected token, expected ","');
      expect(e?.stack?.split('\n')).to.have.length(1);
    });

    it('irqsim hunt on a scenario file with a syntax error prints that one line, exit 2', () => {
      const d = mkdtempSync(join(tmpdir(), 'irqsim-bad-'));
      try {
        writeFileSync(join(d, 'bad.ts'), "const scenario = {\n  id: 'x'\n  name: 'y',\n};\nexport default scenario;\n");
        const r = irqsim(['hunt', 'bad.ts'], d);
        expect(r.code).to.equal(2);
        expect(r.err.trim().split('\n')).to.deep.equal(['irqsim: bad.ts:3:3: Unexpected token, expected ","']);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    });
  });

  it('npx ts-node on a scenario with a syntax error in this repository prints one line, exit 2', () => {
    mkdirSync(join(ROOT, '.scratch'), { recursive: true });
    const d = mkdtempSync(join(ROOT, '.scratch', 'ts-node-'));
    try {
      writeFileSync(join(d, 'bad.ts'), "import { defineScenario } from '../../lib/scenario/define';\nconst x = {a: 1;\nexport default defineScenario;\nvoid x;\n");
      const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'ts-node'), [join(d, 'bad.ts')], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status).to.equal(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(/bad\.ts:2:16: ',' expected\. \(TS1005\)$/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
