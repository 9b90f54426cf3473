/**
 * The irqsim command: list, run, hunt, replay (docs/contract.md). Output is kernel-style text, or
 * with --json one JSON object on stdout and nothing else. Exit codes: 0 as expected, 1 a run not
 * as expected, 2 bad input (one line on stderr, no stack trace unless --debug), 3 an
 * internal_error was found (a bug in irqsim itself; it wins over 1).
 *
 * hunt, run and replay run supervised by default (--yield-timeout, 10 s): the runs happen on
 * worker threads the main thread stops when a scenario thread does not yield in time, so the
 * command returns a promise. --yield-timeout 0 runs them in this thread, synchronously.
 *
 * This file only parses and dispatches: each command is lib/cli/commands/<command>.ts, and the
 * text it prints is rendered by lib/report/text.ts.
 */
import { InputError, ProgramError } from '../../scheduler';
import type { Io } from './command';
import { cmdHunt } from './commands/hunt';
import { cmdList } from './commands/list';
import { cmdMerge } from './commands/merge';
import { cmdReplay } from './commands/replay';
import { cmdReport } from './commands/report';
import { cmdShrink } from './commands/shrink';
import { checkApplies, parseCli } from './options';
import { suggestion } from './suggest';
import { COMMANDS, helpFor } from './usage';
import { packageVersion } from './version';

export type { Io } from './command';

const stdio: Io = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`),
};

/**
 * The command; a promise only when the hunt runs on worker threads (--workers n > 1), so
 * every other command stays synchronous for callers and tests.
 */
export function main(argv: string[], io: Io = stdio): number | Promise<number> {
  let debug = argv.includes('--debug');
  const failed = (e: unknown): number => {
    if (e instanceof InputError) {
      io.err(`irqsim: ${e.message}`);
      if (debug && e.stack) io.err(e.stack);
      return 2;
    }
    if (e instanceof ProgramError) {
      io.err(`irqsim: scenario error: ${e.message}`);
      if (debug && e.stack) io.err(e.stack);
      return 2;
    }
    io.err(`irqsim: internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}${debug ? '' : ' (--debug prints the stack)'}`);
    if (debug && e instanceof Error && e.stack) io.err(e.stack);
    return 2;
  };
  try {
    const r = command(argv, io, (d) => (debug = d));
    return r instanceof Promise ? r.catch(failed) : r;
  } catch (e) {
    return failed(e);
  }
}

/** main() that always gives a promise. */
export async function mainAsync(argv: string[], io: Io = stdio): Promise<number> {
  return main(argv, io);
}

function command(argv: string[], io: Io, setDebug: (d: boolean) => void): number | Promise<number> {
  {
    const o = parseCli(argv);
    setDebug(o.debug);
    if (o.help) {
      io.out(helpFor(o.command || undefined));
      return 0;
    }
    if (o.version) {
      io.out(packageVersion());
      return 0;
    }
    if (o.html !== undefined && o.command !== 'report') throw new InputError('--html belongs to irqsim report <results.json> --html <out.html>');
    checkApplies(o);
    switch (o.command) {
      case 'list':
        return cmdList(o, io);
      case 'hunt':
        return cmdHunt(o, io, false);
      case 'run':
        return cmdHunt(o, io, true);
      case 'replay':
        return cmdReplay(o, io);
      case '':
        throw new InputError('no command given: expected list, run, hunt, replay, shrink, merge or report (irqsim --help shows the usage)');
      case 'report':
        return cmdReport(o, io);
      case 'shrink':
        return cmdShrink(o, io);
      case 'merge':
        return cmdMerge(o, io);
      default:
        throw new InputError(`unknown command "${o.command}": expected list, run, hunt, replay, shrink, merge or report${suggestion(o.command, COMMANDS)}`);
    }
  }
}
export { runScenarioFile } from '../scenario/self-run';
