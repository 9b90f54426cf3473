/**
 * A scenario file run as a program (`npx ts-node scenarios/x.ts [options]`) behaves as
 * `irqsim hunt <file> [options]`. The CLI is loaded here, lazily, only when a file is run that
 * way: a worker that loads a scenario to hunt it never loads the CLI, the HTML renderer or the
 * tracer. This require is the one import in lib/ that points up a layer (lib/scenario ->
 * lib/cli); test/architecture/imports.test.ts names it as the only allowed exception.
 */
type CliMain = (argv: string[]) => number | Promise<number>;

export function runScenarioFile(file: string, argv: string[]): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { main } = require('../cli/main') as { main: CliMain };
  const r = main(['hunt', file, ...argv]);
  if (typeof r === 'number') return r;
  void r.then((code) => (process.exitCode = code));
  return 0; // replaced by the hunt's code when it ends
}
