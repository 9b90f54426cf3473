/**
 * The published package as a user gets it: `npm pack`, installed offline into an empty project,
 * a scenario there importing from `irqsim/...` run with `npx irqsim hunt` and `npx ts-node`, and
 * a mocha suite there using `irqsim/testing`.
 *
 * Offline: the project's lock file is cut from this repository's (the entries of the packages it
 * needs, as `npm ci` here consumed them), so `npm ci --offline` finds every tarball and
 * packument in the npm cache that this repository's `npm ci` filled. ts-node, typescript and
 * mocha come from that cache too, installed in the project as a user would install them: the
 * repository's own copies would resolve from here, not from the project, and prove less.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'child_process';
import { createHash } from 'crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const ROOT = join(__dirname, '..', '..');
const repoPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const repoLock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
/** What the user project installs besides irqsim (versions as this repository pins them). */
const TOOLS = ['ts-node', 'typescript', '@types/node', 'mocha', 'chai'];

type LockEntry = { version: string; resolved?: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; dev?: boolean; peer?: boolean; devOptional?: boolean; optional?: boolean };

/** The lock entries of `names` and everything they depend on, at their paths in the repo's tree. */
function closure(names: string[]): Record<string, LockEntry> {
  const pk = repoLock.packages as Record<string, LockEntry>;
  const out: Record<string, LockEntry> = {};
  const find = (from: string, name: string): string | null => {
    // Node's resolution over lock paths: from/node_modules/name, then up.
    let base = from;
    for (;;) {
      const p = `${base ? `${base}/` : ''}node_modules/${name}`;
      if (pk[p]) return p;
      if (!base) return null;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const add = (path: string) => {
    if (out[path]) return;
    const { dev, peer, devOptional, optional, ...entry } = pk[path];
    void dev, peer, devOptional;
    // The tarball's registry address: with it (and the integrity), npm takes the tarball from the
    // cache without asking for the package's metadata, which an earlier `npm ci` may not have kept.
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const resolved = entry.resolved ?? `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${entry.version}.tgz`;
    out[path] = { ...entry, resolved, ...(optional ? { optional } : {}) };
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const p = find(path, name);
      if (p !== null) add(p);
    }
  };
  for (const n of names) {
    const p = find('', n);
    if (p === null) throw new Error(`${n} is not in package-lock.json`);
    add(p);
  }
  return out;
}

function run(cmd: string, args: string[], cwd: string): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false', IRQSIM_YIELD_TIMEOUT: '' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

const SCENARIO = `import { runScenarioFile } from 'irqsim';
import { DEFINE_SPINLOCK, fn, spin_lock, spin_unlock, type Task, type spinlock_t } from 'irqsim/kernel';
import { defineScenario } from 'irqsim/scenario';

function* both(cur: Task, a: spinlock_t, b: spinlock_t) {
  yield* spin_lock(cur, a);
  yield cur.thread.work(100);
  yield* spin_lock(cur, b);
  yield* spin_unlock(cur, b);
  yield* spin_unlock(cur, a);
}

const scenario = defineScenario({
  id: 'user-abba',
  name: 'a user scenario: two locks in opposite orders',
  description: 'Written in a project that installed irqsim from its tarball.',
  params: {},
  machine: () => ({ cpus: 2 }),
  variants: [
    { name: 'buggy', expect: { findings: ['lockdep', 'deadlock'] }, confirm: true },
    { name: 'fixed', expect: { clean: true } },
  ],
  options: { iterations: 60 },
  build(m, { variant }) {
    const x = DEFINE_SPINLOCK(m, 'x_lock');
    const y = DEFINE_SPINLOCK(m, 'y_lock');
    m.kthread('kworker/0:1', 0, function* (cur) {
      yield* fn(cur, 'path_a', both(cur, x, y));
    });
    m.kthread('kworker/1:1', 1, function* (cur) {
      yield* fn(cur, 'path_b', variant === 'fixed' ? both(cur, x, y) : both(cur, y, x));
    });
  },
});

export default scenario;
if (require.main === module) process.exitCode = runScenarioFile(__filename, process.argv.slice(2));
`;

const SUITE = `import * as chai from 'chai';
import { hunt, irqsimChai } from 'irqsim/testing';
import scenario from './scenario';

chai.use(irqsimChai);
const { expect } = chai;

describe('user-abba', () => {
  it('lockdep sees the orders differ', async () => {
    expect(await hunt(scenario, { variant: 'buggy', iterations: 60, seed: 1 })).to.report('lockdep', 'circular');
  });
  it('is clean in one order', async () => {
    expect(await hunt(scenario, { variant: 'fixed', iterations: 60, seed: 1 })).to.be.clean;
  });
});
`;

describe('package: pack, install offline, run', function () {
  this.timeout(600_000);
  let dir = '';
  let proj = '';
  let tarball = '';

  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'irqsim-pack-'));
    // A fresh dist/ (npm ci ran prepare) is packed as it is; a stale or missing one is built
    // first, which is what `npm pack`'s prepare would do, but only when needed.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    if (require(join(ROOT, 'bin', 'root.js')).pick(ROOT).ts) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, stdio: 'ignore' });
    tarball = readdirSync(dir).find((f) => f.endsWith('.tgz')) as string;
    proj = join(dir, 'project');
    execFileSync('mkdir', [proj]);
    const bytes = readFileSync(join(dir, tarball));
    const tools = Object.fromEntries(TOOLS.map((t) => [t, repoPkg.devDependencies[t] as string]));
    const deps = { irqsim: `file:../${tarball}` };
    writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'user-project', version: '1.0.0', private: true, dependencies: deps, devDependencies: tools }, null, 2));
    const lock = {
      name: 'user-project',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'user-project', version: '1.0.0', dependencies: deps, devDependencies: tools },
        'node_modules/irqsim': {
          version: repoPkg.version,
          resolved: `file:../${tarball}`,
          integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
          license: repoPkg.license,
          dependencies: repoPkg.dependencies,
          bin: repoPkg.bin,
          engines: repoPkg.engines,
        },
        ...closure([...Object.keys(repoPkg.dependencies), ...TOOLS]),
      },
    };
    writeFileSync(join(proj, 'package-lock.json'), JSON.stringify(lock, null, 2));
    const ci = run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], proj);
    if (ci.code !== 0) throw new Error(`npm ci --offline in the user project failed:\n${ci.err.split('\n').slice(-15).join('\n')}`);
    // The TypeScript set-up of a CommonJS project (ts-node type-checks with it: the .d.ts files
    // are checked too, through typesVersions since node10 resolution ignores "exports").
    const compilerOptions = { target: 'ES2022', module: 'commonjs', strict: true, esModuleInterop: true, skipLibCheck: true, types: ['node'] };
    writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({ compilerOptions }, null, 2));
    writeFileSync(join(proj, 'scenario.ts'), SCENARIO);
    writeFileSync(join(proj, 'scenario.test.ts'), SUITE);
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the tarball holds the compiled code, bin, LICENSE and CHANGELOG, and no tests, benches or sources', () => {
    const files = execFileSync('tar', ['tzf', join(dir, tarball)], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
    for (const f of ['package.json', 'LICENSE', 'CHANGELOG.md', 'README.md', 'bin/irqsim.js', 'dist/lib/cli/main.js', 'dist/lib/cli/main.d.ts', 'dist/scheduler/worker-entry.js', 'dist/scheduler/loader.js', 'dist/lib/testing/index.d.ts']) {
      expect(files, f).to.include(f);
    }
    expect(files.filter((f) => /^(test|bench|demo|scripts|docs)\//.test(f) || /\.test\./.test(f))).to.deep.equal([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).to.deep.equal([]);
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).private).to.equal(undefined);
  });

  it('npx irqsim --version and list answer from the installed package', () => {
    const v = run('npx', ['irqsim', '--version'], proj);
    expect(v.code).to.equal(0);
    expect(v.out.trim()).to.equal(repoPkg.version);
    const l = run('npx', ['irqsim', 'list'], proj);
    expect(l.code, l.err).to.equal(0);
    expect(l.out).to.match(/^abba\s/m);
  });

  it('npx irqsim hunt runs a user scenario importing irqsim/... (also on worker threads)', () => {
    for (const extra of [[], ['--workers', '2']]) {
      const h = run('npx', ['irqsim', 'hunt', 'scenario.ts', '--seed', '1', ...extra], proj);
      expect(h.code, `${h.out}\n${h.err}`).to.equal(0);
      expect(h.out).to.match(/^buggy\s+as-expected\s+\d+\s+lockdep, deadlock/m);
      expect(h.out).to.match(/^fixed\s+as-expected\s+60\s+-/m);
    }
  });

  it('npx ts-node runs the same file', () => {
    const h = run('npx', ['ts-node', 'scenario.ts', '--seed', '1'], proj);
    expect(h.code, `${h.out}\n${h.err}`).to.equal(0);
    expect(h.out).to.match(/^buggy\s+as-expected/m);
  });

  it('a syntax error in a user scenario is one line, file:line:col: message, exit 2', () => {
    writeFileSync(join(proj, 'broken.ts'), SCENARIO.replace("id: 'user-abba',", "id: 'user-abba'\n  name 'x',"));
    const h = run('npx', ['irqsim', 'hunt', 'broken.ts'], proj);
    expect(h.code).to.equal(2);
    expect(h.err.trim().split('\n')).to.have.length(1);
    expect(h.err.trim()).to.match(/^irqsim: broken\.ts:15:3: Unexpected token/);
  });

  it('mocha runs a suite using irqsim/testing (TypeScript through irqsim/register)', () => {
    const m = run('npx', ['mocha', '-r', 'irqsim/register', '--extension', 'ts', 'scenario.test.ts'], proj);
    expect(m.code, `${m.out}\n${m.err}`).to.equal(0);
    expect(m.out).to.match(/2 passing/);
  });
});
