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
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { availableParallelism, loadavg, tmpdir } from 'os';
import { join } from 'path';

const ROOT = join(__dirname, '..');
const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 3 : 7;
const BIN = join(ROOT, 'bin', 'irqsim.js');

/** GNU time, when the machine has it: CPU seconds (user+sys) of each start, which a loaded machine inflates less than wall time. */
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

interface Took {
  wall: number;
  cpu: number | null;
}

function took(cmd: string, args: string[], cwd = ROOT): Took {
  const t = process.hrtime.bigint();
  const [c, a] = TIME ? [TIME, ['-f', '@cpu %U %S', cmd, ...args]] : [cmd, args];
  const r = spawnSync(c, a, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' } });
  const wall = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const m = /@cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { wall, cpu: m ? +m[1] + +m[2] : null };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median wall and CPU time of each command, the commands interleaved round by round. */
function measure(cmds: Record<string, [string, string[], string?]>): Record<string, Took> {
  const times: Record<string, Took[]> = Object.fromEntries(Object.keys(cmds).map((k) => [k, []]));
  for (const [cmd, args, cwd] of Object.values(cmds)) took(cmd, args, cwd); // warm the disk and the loader's cache
  for (let i = 0; i < ROUNDS; i++) for (const [k, [cmd, args, cwd]] of Object.entries(cmds)) times[k].push(took(cmd, args, cwd));
  return Object.fromEntries(
    Object.entries(times).map(([k, v]) => [k, { wall: median(v.map((x) => x.wall)), cpu: v[0].cpu === null ? null : median(v.map((x) => x.cpu as number)) }]),
  );
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
    const w = Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.wall])) as Record<keyof typeof m, number>;
    const cpu = (k: keyof typeof m) => (m[k].cpu === null ? '' : `, CPU ${ms(m[k].cpu as number)}`);
    const cpuRatio = (k: keyof typeof m) => (m[k].cpu === null || !m.node.cpu ? '' : ` (CPU ${((m[k].cpu as number) / m.node.cpu).toFixed(2)}x)`);
    console.log(`(s1) irqsim --help ${ms(w.help)}${cpu('help')}, --version ${ms(w.version)}${cpu('version')} vs node -e 0 ${ms(w.node)}${cpu('node')} (baseline): ${(w.help / w.node).toFixed(2)}x${cpuRatio('help')} and ${(w.version / w.node).toFixed(2)}x${cpuRatio('version')} (target <= 3x: ${verdict(w.help <= 3 * w.node && w.version <= 3 * w.node)})`);
    console.log(`(s2) npx irqsim --help ${ms(w.npxHelp)}${cpu('npxHelp')} vs npx of a no-op bin ${ms(w.npxNoop)}${cpu('npxNoop')} (baseline): ${w.npxHelp >= w.npxNoop ? '+' : ''}${ms(w.npxHelp - w.npxNoop)} (target <= +200 ms: ${verdict(w.npxHelp - w.npxNoop <= 0.2)})`);
    console.log(`(s3) irqsim list ${ms(w.list)}${cpu('list')}, ${(w.list / w.node).toFixed(1)}x node -e 0${cpuRatio('list')} (target < 1 s: ${verdict(w.list < 1)})`);
    console.log(`(s4) irqsim hunt abba --variant fixed --iterations 1, start to exit ${ms(w.hunt)}${cpu('hunt')}, ${(w.hunt / w.node).toFixed(1)}x node -e 0${cpuRatio('hunt')} (first schedule target < 1.5 s: ${verdict(w.hunt < 1.5)})`);
    console.log(`     medians of ${ROUNDS} interleaved rounds; load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} CPUs (absolute times assume an idle machine)`);
  } finally {
    rmSync(noop, { recursive: true, force: true });
  }
}

main();
