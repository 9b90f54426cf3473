/**
 * The usage text and the command names, with no imports: bin/irqsim.js answers --help, --version
 * and a missing or unknown command from this module alone, before the model loads.
 */
export const COMMANDS = ['list', 'run', 'hunt', 'replay', 'shrink', 'merge', 'report'] as const;

export const USAGE = `usage: irqsim <list|run|hunt|replay|shrink|merge|report> [scenario] [options]
  irqsim list [--json]
  irqsim hunt <scenario|all> [--variant v] [--seed n] [--iterations n] [--strategy random|pct|fair-pct|dfs|dpor|ipb|idb | --portfolio]
              [--depth d] [--pct-steps k] [--preemption-bound n] [--irq-bound n] [--delay-bound n]
              [--workers n] [--shard i/n] [--out results.json [--resume]] [--yield-timeout s] [--json] ...
  irqsim run <scenario> [--variant v] [--trace out.json] [--yield-timeout s] [--json]
  irqsim replay <scenario> <schedule> [--variant v] [--continue] [--trace out.json] [--yield-timeout s] [--json]
  --yield-timeout s: stop a scenario thread that runs s seconds without yielding and report it as
              a scenario_error (default 10; 0: off, everything in this thread; not with --trace)
  irqsim shrink <scenario> <schedule> [--variant v] [--json]
  irqsim merge <shard.json>... [--out merged.json] [--json]
  irqsim report <results.json> --html <out.html>`;
