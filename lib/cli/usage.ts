/**
 * The usage texts, the command names and which options each command reads, with no imports:
 * bin/irqsim.js answers --help, --version and a missing or unknown command from this module
 * alone, before the model loads. lib/cli/options.ts refuses an option outside a command's list
 * (COMMAND_OPTIONS), and test/cli/help.test.ts checks that every option the parser accepts has
 * a line here in the help of each command that reads it.
 */
export const COMMANDS = ['list', 'run', 'hunt', 'replay', 'shrink', 'merge', 'report'] as const;
export type Command = (typeof COMMANDS)[number];

/** One line per option: its syntax and what it does. */
export const OPTION_HELP: Record<string, readonly [string, string]> = {
  variant: ['--variant <name|all>', 'the variants to run (default: all; replay and shrink: the first)'],
  seed: ['--seed <n>', 'base seed, a non-negative integer (env IRQSIM_SEED)'],
  iterations: ['--iterations <n>', 'schedule budget per variant (env IRQSIM_ITERATIONS)'],
  strategy: ['--strategy <s>', 'random|pct|fair-pct|dfs|dpor|ipb|idb: how schedules are chosen'],
  portfolio: ['--portfolio', 'pick the strategy from the iteration index (not with --strategy)'],
  depth: ['--depth <d>', 'PCT depth (d-1 priority change points)'],
  'pct-steps': ['--pct-steps <k>', "PCT's estimate of a run's length in steps (default: calibrated)"],
  'preemption-bound': ['--preemption-bound <k>', 'DFS/DPOR bound on preemptions'],
  'irq-bound': ['--irq-bound <k>', 'DFS/DPOR bound on IRQ deliveries'],
  'delay-bound': ['--delay-bound <k>', 'the bound of idb (and its starting point)'],
  mode: ['--mode interleave|timed', 'any order (window infinite) or clock order (window 0, for latencies)'],
  window: ['--window <time>', 'the timed window directly (5000, 250us, 10ms, 2s)'],
  'max-steps': ['--max-steps <n>', 'step budget per run (beyond it: a step_budget finding)'],
  horizon: ['--horizon <time>', 'virtual-time end of a run (5000, 250us, 10ms, 2s)'],
  param: ['--param key=value', 'override a declared parameter (repeatable; typed by its default)'],
  kernel: ['--kernel <v>', 'the modelled kernel: 3.x-arm|6.3|6.6|6.8|6.12 (= --param kernel=v)'],
  perturb: ['--perturb <name>', "one of the scenario's declared perturbations (irqsim list names them)"],
  lockdep: ['--lockdep on|off', "override the machine's lockdep setting (on by default)"],
  all: ['--all', 'spend the whole budget (default: stop when the expectation is decided)'],
  confirm: ['--confirm', 'also search for a schedule that realises each lockdep prediction'],
  'no-shrink': ['--no-shrink', 'report findings without shrinking their schedules'],
  'check-determinism': ['--check-determinism', 'run each iteration twice; report the first divergent event'],
  workers: ['--workers <n|auto>', 'worker threads, 1 to 256 (auto: one per core)'],
  shard: ['--shard <i>/<n>', 'run shard i of n (1-based); irqsim merge joins the shards'],
  'shard-count': ['--shard-count <n>', 'shards, with JOB_COMPLETION_INDEX (env IRQSIM_SHARD_COUNT)'],
  out: ['--out <file.json>', 'write the results file while the hunt runs (atomically)'],
  resume: ['--resume', 'continue the hunt recorded in --out'],
  trace: ['--trace <out.json>', 'write a Chrome trace of the run (open in ui.perfetto.dev)'],
  continue: ['--continue', 'run on with seeded choices past where the schedule no longer fits'],
  events: ['--events all|locks|tail=N', 'the engine event log after the report: all, lock lines, last N'],
  'yield-timeout': ['--yield-timeout <s>', 'stop a thread running s seconds without yielding (default 10; 0: off)'],
  html: ['--html <out.html>', 'the self-contained HTML report to write'],
  json: ['--json', 'one JSON object on stdout and nothing else'],
  debug: ['--debug', 'stack traces with errors'],
  help: ['-h, --help', 'this help'],
  version: ['--version', 'the irqsim version'],
};

/** Options every command takes. */
export const GLOBAL_OPTIONS = ['debug', 'help', 'version'] as const;

const REPLAY_LIKE = ['variant', 'param', 'kernel', 'lockdep', 'mode', 'window', 'horizon', 'max-steps'];
const SEARCH = ['seed', 'strategy', 'depth', 'pct-steps', 'preemption-bound', 'irq-bound', 'delay-bound', 'mode', 'window', 'max-steps', 'horizon'];

/** The options each command reads besides GLOBAL_OPTIONS, in the order its help lists them. */
export const COMMAND_OPTIONS: Record<Command, readonly string[]> = {
  list: ['json'],
  hunt: ['variant', 'iterations', ...SEARCH.slice(0, 2), 'portfolio', ...SEARCH.slice(2), 'param', 'kernel', 'perturb', 'lockdep', 'all', 'confirm', 'no-shrink', 'check-determinism', 'workers', 'shard', 'shard-count', 'out', 'resume', 'yield-timeout', 'json'],
  run: ['variant', ...SEARCH, 'param', 'kernel', 'perturb', 'lockdep', 'trace', 'yield-timeout', 'json'],
  replay: [...REPLAY_LIKE, 'continue', 'events', 'trace', 'yield-timeout', 'json'],
  shrink: [...REPLAY_LIKE, 'json'],
  merge: ['out', 'json'],
  report: ['html'],
};

const SYNOPSIS: Record<Command, [string, string]> = {
  list: ['irqsim list [--json]', 'every scenario with its variants, parameters, perturbations and claims'],
  hunt: ['irqsim hunt <scenario|all> [options]', 'many schedules per variant until its expectation is decided; then the claims'],
  run: ['irqsim run <scenario> [options]', 'one fully instrumented schedule per variant (iteration 0); no claims'],
  replay: ['irqsim replay <scenario> <schedule> [options]', 'run one schedule again: the report, then "reproduced <fingerprint>" or what differs'],
  shrink: ['irqsim shrink <scenario> <schedule> [options]', 'the smallest schedule that still gives its first finding'],
  merge: ['irqsim merge <shard.json>... [options]', 'fold the shard outputs of one hunt into what one process would print'],
  report: ['irqsim report <results.json> --html <out.html>', "a self-contained HTML page of a hunt's JSON"],
};

/** "  --seed <n>   base seed ..." */
export function optionLine(name: string): string {
  const [syntax, text] = OPTION_HELP[name];
  return `  ${syntax.padEnd(27)} ${text}`;
}

/** irqsim --help: the commands, one line each. */
export const USAGE = [
  'usage: irqsim <command> [arguments] [options]',
  '',
  ...COMMANDS.flatMap((c) => [`  ${SYNOPSIS[c][0]}`, `      ${SYNOPSIS[c][1]}`]),
  '',
  '<scenario> is a file or an id (irqsim list). Every command takes:',
  ...GLOBAL_OPTIONS.map(optionLine),
  '',
  'irqsim <command> --help lists the options of that command, one line each.',
].join('\n');

/** irqsim <command> --help: its synopsis and every option it reads, one line each. */
export function commandUsage(c: Command): string {
  return [`usage: ${SYNOPSIS[c][0]}`, `  ${SYNOPSIS[c][1]}`, '', 'options:', ...[...COMMAND_OPTIONS[c], ...GLOBAL_OPTIONS].map(optionLine)].join('\n');
}

/** The help --help prints for argv: the command's, or the general one. */
export function helpFor(command: string | undefined): string {
  return command !== undefined && (COMMANDS as readonly string[]).includes(command) ? commandUsage(command as Command) : USAGE;
}
