/**
 * Start-up benchmark (issue 21's acceptance figures), as ratios against baselines measured in the
 * same run, each command started ROUNDS times interleaved with its baseline, medians compared:
 *   (s1) `irqsim --help` and `--version` vs a bare `node -e 0`            target ≤ 3×
 *   (s2) `npx irqsim --help` vs `npx` of a bin that does nothing          target ≤ +0.2 s
 *   (s3) `irqsim list` (the whole catalog loaded)                          target < 1 s
 *   (s4) a hunt's first schedule: `irqsim hunt abba --variant fixed --iterations 1`, the whole
 *        command (start, catalog lookup, a supervised worker booted, one schedule, exit): an
 *        upper bound of the time to its first schedule                     target < 1.5 s
 * bin/irqsim.js is what node_modules/.bin/irqsim links to in an installed project (a checkout has
 * no link to its own bin). It must run the compiled dist/ (npm run build): the figures are refused
 * otherwise. Wall times, so a loaded machine inflates the absolute ones more than the ratios.
 */
import { spawnSync } from 'child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const ROOT = join(__dirname, '..');
const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 3 : 7;
const BIN = join(ROOT, 'bin', 'irqsim.js');

function wall(cmd: string, args: string[], cwd = ROOT): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' } });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return s;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median wall time of each command, the commands interleaved round by round. */
function measure(cmds: Record<string, [string, string[], string?]>): Record<string, number> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
  for (const [cmd, args, cwd] of Object.values(cmds)) wall(cmd, args, cwd); // warm the disk and the loader's cache
  for (let i = 0; i < ROUNDS; i++) for (const [k, [cmd, args, cwd]] of Object.entries(cmds)) times[k].push(wall(cmd, args, cwd));
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

function main(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (require(join(ROOT, 'bin', 'root.js')).pick(ROOT).ts) throw new Error('dist/ is missing or older than the sources: npm run build first');
  // A project whose node_modules/.bin has a bin that does nothing: npx's own cost.
  const noop = mkdtempSync(join(tmpdir(), 'irqsim-noop-'));
  try {
    mkdirSync(join(noop, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(noop, 'package.json'), '{"name":"noop-project","version":"1.0.0","private":true}');
    writeFileSync(join(noop, 'node_modules', '.bin', 'noop'), '#!/usr/bin/env node\n');
    chmodSync(join(noop, 'node_modules', '.bin', 'noop'), 0o755);
    // npx irqsim from a project that has it linked as node_modules/.bin/irqsim, as a user runs it.
    mkdirSync(join(noop, 'user', 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(noop, 'user', 'package.json'), '{"name":"user-project","version":"1.0.0","private":true}');
    writeFileSync(join(noop, 'user', 'node_modules', '.bin', 'irqsim'), `#!/bin/sh\nexec node ${JSON.stringify(BIN)} "$@"\n`);
    chmodSync(join(noop, 'user', 'node_modules', '.bin', 'irqsim'), 0o755);

    const m = measure({
      node: [process.execPath, ['-e', '0']],
      help: [process.execPath, [BIN, '--help']],
      version: [process.execPath, [BIN, '--version']],
      npxNoop: ['npx', ['noop'], noop],
      npxHelp: ['npx', ['irqsim', '--help'], join(noop, 'user')],
      list: [process.execPath, [BIN, 'list']],
      hunt: [process.execPath, [BIN, 'hunt', 'abba', '--variant', 'fixed', '--iterations', '1']],
    });
    console.log(`(s1) irqsim --help ${ms(m.help)}, --version ${ms(m.version)} vs node -e 0 ${ms(m.node)} (baseline): ${(m.help / m.node).toFixed(2)}x and ${(m.version / m.node).toFixed(2)}x (target <= 3x: ${verdict(m.help <= 3 * m.node && m.version <= 3 * m.node)})`);
    console.log(`(s2) npx irqsim --help ${ms(m.npxHelp)} vs npx of a no-op bin ${ms(m.npxNoop)} (baseline): +${ms(m.npxHelp - m.npxNoop)} (target <= +200 ms: ${verdict(m.npxHelp - m.npxNoop <= 0.2)})`);
    console.log(`(s3) irqsim list ${ms(m.list)}, ${(m.list / m.node).toFixed(1)}x node -e 0 (target < 1 s: ${verdict(m.list < 1)})`);
    console.log(`(s4) irqsim hunt abba --variant fixed --iterations 1, start to exit ${ms(m.hunt)}, ${(m.hunt / m.node).toFixed(1)}x node -e 0 (first schedule target < 1.5 s: ${verdict(m.hunt < 1.5)})`);
    console.log(`     medians of ${ROUNDS} interleaved rounds`);
  } finally {
    rmSync(noop, { recursive: true, force: true });
  }
}

main();
