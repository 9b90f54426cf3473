/**
 * Command-line options (docs/contract.md), parsed with Node's built-in util.parseArgs: a maintained
 * parser that ships with Node, so no dependency; it rejects unknown options and missing values,
 * which we turn into one-line errors. Options whose feature has not been built yet are accepted
 * by the parser and refused here with a one-line error, never silently ignored.
 */
import { availableParallelism } from 'os';
import { parseArgs } from 'util';
import { InputError, checkPositiveInt, checkSeed, type HuntOptions, type Shard } from '../../scheduler';
import type { MachineOptions } from '../kernel/machine';
import type { HuntRequest } from '../report/json';
import { envHuntOverrides } from '../scenario/env';
import { checkKernel } from '../scenario/params';
import { DEFAULT_YIELD_TIMEOUT } from '../../scheduler/watchdog';
import { suggestion } from './suggest';
import { COMMANDS, COMMAND_OPTIONS, GLOBAL_OPTIONS, type Command } from './usage';

const SPEC = {
  variant: { type: 'string' },
  seed: { type: 'string' },
  iterations: { type: 'string' },
  strategy: { type: 'string' },
  depth: { type: 'string' },
  'preemption-bound': { type: 'string' },
  'irq-bound': { type: 'string' },
  'delay-bound': { type: 'string' },
  'pct-steps': { type: 'string' },
  mode: { type: 'string' },
  window: { type: 'string' },
  'max-steps': { type: 'string' },
  horizon: { type: 'string' },
  param: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  'check-determinism': { type: 'boolean' },
  continue: { type: 'boolean' },
  'no-shrink': { type: 'boolean' },
  confirm: { type: 'boolean' },
  lockdep: { type: 'string' },
  kernel: { type: 'string' },
  perturb: { type: 'string' },
  workers: { type: 'string' },
  shard: { type: 'string' },
  'shard-count': { type: 'string' },
  portfolio: { type: 'boolean' },
  out: { type: 'string' },
  resume: { type: 'boolean' },
  trace: { type: 'string' },
  html: { type: 'string' },
  'yield-timeout': { type: 'string' },
  events: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

/** Every option the parser accepts (without the dashes). */
export const OPTION_NAMES: readonly string[] = Object.keys(SPEC);

const NOT_YET: Record<string, string> = {};

export interface CliOptions {
  command: string;
  positionals: string[];
  variant: string;
  json: boolean;
  debug: boolean;
  all: boolean;
  shrink: boolean;
  continueReplay: boolean;
  checkDeterminism: boolean;
  params: string[];
  hunt: Partial<HuntOptions>;
  /** --confirm: search for a schedule realising each lockdep prediction. */
  confirm: boolean;
  /** report --html <out.html>. */
  html?: string;
  /** --perturb <name>: one of the scenario's declared perturbations. */
  perturb?: string;
  /** --lockdep on|off (undefined: the scenario's machine decides, on by default). */
  lockdep?: boolean;
  /** --workers n (1: this thread). */
  workers: number;
  /** --shard i/n, or JOB_COMPLETION_INDEX with --shard-count (1-based index). */
  shard?: Shard;
  /** --out <results.json>: written incrementally and atomically. */
  out?: string;
  /** --resume: continue the hunt recorded in --out. */
  resume: boolean;
  /** --trace <out.json>: a Chrome trace of the run (run, replay). */
  trace?: string;
  /** The options given on the command line (without the dashes), so a command can refuse what it ignores. */
  given: string[];
  /** --help: the usage on stdout. */
  help: boolean;
  /** --version: the package version on stdout. */
  version: boolean;
  /** replay --events all|locks|tail=N: which engine event lines follow the report (none by default). */
  events?: EventsChoice;
  /**
   * --yield-timeout <seconds> (default 10, or IRQSIM_YIELD_TIMEOUT): a scenario thread that
   * runs longer without yielding is stopped and reported as a scenario_error. Above 0, hunt,
   * run and replay run on supervised worker threads; 0 turns the watchdog off and runs
   * everything in this thread (synchronously).
   */
  yieldTimeout: number;
}

/** replay --events: every line, the lock lines (and findings), or the last n lines. */
export type EventsChoice = { kind: 'all' } | { kind: 'locks' } | { kind: 'tail'; n: number };

export function parseEvents(s: string): EventsChoice {
  if (s === 'all' || s === 'locks') return { kind: s };
  const m = /^tail=(\d+)$/.exec(s);
  if (m && Number(m[1]) > 0) return { kind: 'tail', n: Number(m[1]) };
  throw new InputError(`bad --events "${s}": expected all, locks or tail=N (N > 0)`);
}

/** The largest --yield-timeout (a day): beyond it, say 0 for no limit. */
const MAX_YIELD_TIMEOUT = 86400;

/** --yield-timeout <seconds>: a number of seconds >= 0 (0: off). */
export function parseYieldTimeout(s: string, what = '--yield-timeout'): number {
  if (!/^\d+(\.\d+)?$/.test(s.trim())) throw new InputError(`bad ${what} "${s}": expected seconds >= 0, such as 10 or 0.5 (0 turns the watchdog off)`);
  const n = Number(s);
  if (n > MAX_YIELD_TIMEOUT) throw new InputError(`bad ${what} "${s}": at most ${MAX_YIELD_TIMEOUT} seconds (0 turns the watchdog off)`);
  if (n > 0 && n < 0.05) throw new InputError(`bad ${what} "${s}": below 0.05 s a busy machine would stop healthy runs (0 turns the watchdog off)`);
  return n;
}

/** "10ms", "5s", "250us", "1000" (ns) -> ns. */
export function parseDuration(s: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)?\s*$/.exec(s);
  if (!m) throw new InputError(`bad ${what} "${s}": expected a virtual time such as 5000, 250us, 10ms or 2s`);
  const mult = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 }[(m[2] ?? 'ns') as 'ns'];
  return Math.round(Number(m[1]) * mult);
}

function nonNegInt(s: string, what: string): number {
  if (!/^\d+$/.test(s)) throw new InputError(`bad ${what} "${s}": expected a non-negative integer`);
  return Number(s);
}

export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: SPEC, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    const amb = /^Option '(--[\w-]+)' argument is ambiguous/.exec(msg);
    if (amb) throw new InputError(`bad value for ${amb[1]}: a value starting with '-' (a negative number?) is not valid there`);
    const missing = /^Option '(--[\w-]+) <value>' argument missing/.exec(msg);
    if (missing) throw new InputError(`${missing[1]} needs a value`);
    const noArg = /^Option '(--[\w-]+)' does not take an argument/.exec(msg);
    if (noArg) throw new InputError(`${noArg[1]} takes no value`);
    const unknown = /^Unknown option '(-{1,2}[^']*)'/.exec(msg);
    if (unknown) {
      const typed = unknown[1].replace(/=.*$/, '');
      throw new InputError(`unknown option '${unknown[1]}'${suggestion(typed, OPTION_NAMES.map((k) => `--${k}`))}`);
    }
    throw new InputError(msg.replace(/^Unknown option/, 'unknown option').replace(/\. To specify a positional argument.*$/, ''));
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined>;
  for (const k of Object.keys(NOT_YET)) {
    if (v[k] !== undefined) throw new InputError(`--${k} is not available yet (it arrives with ${NOT_YET[k]})`);
  }
  const [command = '', ...positionals] = parsed.positionals;
  const hunt: Partial<HuntOptions> = {};
  // IRQSIM_SEED / IRQSIM_ITERATIONS reproduce a CI hunt locally; the flags win over them.
  const env = envHuntOverrides();
  if (env.seed !== undefined) hunt.seed = env.seed;
  if (env.iterations !== undefined) hunt.iterations = env.iterations;
  if (typeof v.seed === 'string') hunt.seed = checkSeed(v.seed);
  if (typeof v.iterations === 'string') hunt.iterations = checkPositiveInt(v.iterations, 'iteration count');
  if (typeof v.strategy === 'string') hunt.strategy = v.strategy;
  if (typeof v.depth === 'string') hunt.depth = nonNegInt(v.depth, 'depth');
  if (typeof v['preemption-bound'] === 'string') hunt.preemptionBound = nonNegInt(v['preemption-bound'], 'preemption bound');
  if (typeof v['irq-bound'] === 'string') hunt.irqBound = nonNegInt(v['irq-bound'], 'irq bound');
  if (typeof v['delay-bound'] === 'string') hunt.delayBound = nonNegInt(v['delay-bound'], 'delay bound');
  if (typeof v['pct-steps'] === 'string') hunt.pctSteps = checkPositiveInt(v['pct-steps'], 'PCT step estimate');
  if (typeof v.mode === 'string') {
    if (v.mode !== 'interleave' && v.mode !== 'timed') throw new InputError(`bad mode "${v.mode}": expected interleave or timed`);
    hunt.window = v.mode === 'timed' ? 0 : Infinity;
  }
  if (typeof v.window === 'string') hunt.window = parseDuration(v.window, 'window');
  if (typeof v['max-steps'] === 'string') hunt.stepBudget = checkPositiveInt(v['max-steps'], 'step budget');
  if (typeof v.horizon === 'string') hunt.horizon = parseDuration(v.horizon, 'horizon');
  if (v.portfolio === true) {
    if (hunt.strategy !== undefined) throw new InputError(`--portfolio picks the strategy per iteration: it does not go with --strategy ${hunt.strategy}`);
    hunt.portfolio = true;
  }
  const workers = typeof v.workers === 'string' ? parseWorkers(v.workers) : 1;
  const envTimeout = process.env.IRQSIM_YIELD_TIMEOUT;
  const yieldTimeout =
    typeof v['yield-timeout'] === 'string' ? parseYieldTimeout(v['yield-timeout']) : envTimeout !== undefined && envTimeout !== '' ? parseYieldTimeout(envTimeout, 'IRQSIM_YIELD_TIMEOUT') : DEFAULT_YIELD_TIMEOUT;
  const shard = parseShard(typeof v.shard === 'string' ? v.shard : undefined, typeof v['shard-count'] === 'string' ? v['shard-count'] : undefined);
  if (v.resume === true && typeof v.out !== 'string') throw new InputError('--resume continues the hunt recorded in --out <results.json>: give --out');
  let lockdep: boolean | undefined;
  if (typeof v.lockdep === 'string') {
    if (v.lockdep !== 'on' && v.lockdep !== 'off') throw new InputError(`bad --lockdep "${v.lockdep}": expected on or off`);
    lockdep = v.lockdep === 'on';
  }
  return {
    command,
    positionals,
    confirm: v.confirm === true,
    ...(lockdep !== undefined ? { lockdep } : {}),
    ...(typeof v.perturb === 'string' ? { perturb: v.perturb } : {}),
    ...(typeof v.html === 'string' ? { html: v.html } : {}),
    variant: typeof v.variant === 'string' ? v.variant : 'all',
    json: v.json === true,
    debug: v.debug === true,
    all: v.all === true,
    shrink: v['no-shrink'] !== true,
    continueReplay: v.continue === true,
    checkDeterminism: v['check-determinism'] === true,
    // --kernel v is the scenario parameter `kernel` (docs/contract.md), after any --param kernel=
    params: [...((v.param as string[] | undefined) ?? []), ...(typeof v.kernel === 'string' ? [`kernel=${checkKernel(v.kernel, '--kernel')}`] : [])],
    hunt,
    workers,
    ...(shard ? { shard } : {}),
    ...(typeof v.out === 'string' ? { out: v.out } : {}),
    resume: v.resume === true,
    ...(typeof v.trace === 'string' ? { trace: v.trace } : {}),
    given: Object.keys(v).filter((k) => v[k] !== undefined),
    help: v.help === true,
    version: v.version === true,
    ...(typeof v.events === 'string' ? { events: parseEvents(v.events) } : {}),
    yieldTimeout,
  };
}

/** --workers n: 1 to 256 threads ("auto": one per core). */
export function parseWorkers(s: string, cores = availableParallelism()): number {
  if (s === 'auto') return Math.max(1, cores);
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 256) throw new InputError(`bad --workers "${s}": expected an integer from 1 to 256, or auto`);
  return Number(s);
}

/**
 * --shard i/n (1-based, as jest and playwright count). Without it, a Kubernetes Indexed Job's
 * JOB_COMPLETION_INDEX (0-based) picks shard index+1 of --shard-count (or IRQSIM_SHARD_COUNT).
 */
export function parseShard(flag: string | undefined, countFlag: string | undefined, env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  if (flag !== undefined) {
    if (countFlag !== undefined) throw new InputError('--shard-count goes with JOB_COMPLETION_INDEX; --shard i/n already says n');
    const m = /^(\d+)\/(\d+)$/.exec(flag);
    if (!m) throw new InputError(`bad --shard "${flag}": expected i/n, such as 2/3`);
    const index = Number(m[1]), count = Number(m[2]);
    if (count < 1 || index < 1 || index > count) throw new InputError(`bad --shard "${flag}": i runs from 1 to n`);
    return { index, count };
  }
  const idx = env.JOB_COMPLETION_INDEX;
  if (idx === undefined || idx === '') {
    if (countFlag !== undefined) throw new InputError('--shard-count needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job sets it); otherwise use --shard i/n');
    return undefined;
  }
  if (!/^\d+$/.test(idx)) throw new InputError(`bad JOB_COMPLETION_INDEX "${idx}": expected a non-negative integer`);
  const countText = countFlag ?? env.IRQSIM_SHARD_COUNT;
  if (countText === undefined || countText === '') throw new InputError('JOB_COMPLETION_INDEX is set: give the number of completions with --shard-count <n> (or IRQSIM_SHARD_COUNT)');
  if (!/^\d+$/.test(countText) || Number(countText) < 1) throw new InputError(`bad shard count "${countText}": expected a positive integer`);
  const count = Number(countText);
  if (Number(idx) >= count) throw new InputError(`JOB_COMPLETION_INDEX ${idx} is not below the shard count ${count}`);
  return { index: Number(idx) + 1, count };
}


/** Machine options the command line overrides (--lockdep). */
export function machineOf(o: CliOptions): Partial<MachineOptions> {
  return o.lockdep === undefined ? {} : { lockdep: o.lockdep };
}

/**
 * The one converter from the command line to the scenario layer: what a hunt is asked to do
 * (VariantHuntOptions extends it), as a results file stores it for merge and --resume.
 */
export function huntRequestOf(o: CliOptions): HuntRequest {
  return { hunt: o.hunt, all: o.all, confirm: o.confirm, ...(o.shrink ? {} : { shrink: false }), checkDeterminism: o.checkDeterminism, machine: machineOf(o) };
}

/**
 * Options a command handles itself with a more specific error than checkApplies gives (run's
 * hunt-only options; --trace on hunt; --html anywhere but report).
 */
const OWN_ERRORS: Partial<Record<Command, readonly string[]>> = {
  run: ['workers', 'shard', 'shard-count', 'out', 'resume', 'portfolio'],
  hunt: ['trace'],
};

/** Whether `command` reads option `name` (COMMAND_OPTIONS in lib/cli/usage.ts, plus --debug/--help/--version). */
export function appliesTo(command: Command, name: string): boolean {
  return (GLOBAL_OPTIONS as readonly string[]).includes(name) || COMMAND_OPTIONS[command].includes(name);
}

/** Refuses, with one line, an option the command does not read: never silently ignored. */
export function checkApplies(o: CliOptions): void {
  if (!(COMMANDS as readonly string[]).includes(o.command)) return;
  const c = o.command as Command;
  const bad = o.given.find((k) => !appliesTo(c, k) && !(OWN_ERRORS[c] ?? []).includes(k) && k !== 'html');
  if (bad === undefined) return;
  const own = COMMAND_OPTIONS[c];
  const owners = COMMANDS.filter((x) => COMMAND_OPTIONS[x].includes(bad));
  // hunt's and run's lists are long: say where the option belongs instead
  const takes = c !== 'hunt' && c !== 'run' ? `it takes ${own.map((k) => `--${k}`).join(', ')}` : `--${bad} belongs to irqsim ${owners.join(', ')} (irqsim ${c} --help lists its options)`;
  throw new InputError(`--${bad} does not apply to irqsim ${c}: ${takes}`);
}
