/**
 * npm run readme:table — regenerate README's "What irqsim finds" table from a demo run, so the
 * README never carries hand-typed results: one key metric per scenario, normalised per schedule or
 * per operation (demo/catalog-worker.ts keyMetric), how many of its claims hold, and the kernel
 * profile it runs under (lib/kernel/config.ts). The table sits between two marker comments.
 */
import { readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { catalogOk, catalogRows, formatMarkdown, kernelOf, runCatalog, withKernelColumn } from '../demo/catalog';
import { allScenarios } from '../lib/scenario/registry';

const START = '<!-- demo-table:start (npm run readme:table writes this) -->';
const END = '<!-- demo-table:end -->';

async function main(): Promise<number> {
  const file = join(__dirname, '..', 'README.md');
  const readme = readFileSync(file, 'utf8');
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) {
    process.stderr.write(`readme:table: README.md lacks the markers ${START} ... ${END}\n`);
    return 2;
  }
  const replies = await runCatalog();
  const rows = catalogRows(replies);
  const kernels = new Map(allScenarios().map((d) => [d.id, kernelOf(d)]));
  const table = withKernelColumn(formatMarkdown(rows), (id) => kernels.get(id) ?? '?');
  writeFileSync(file, `${readme.slice(0, a + START.length)}\n${table}\n${readme.slice(b)}`);
  process.stdout.write(`README.md: ${rows.length} rows written\n`);
  return catalogOk(replies, rows) ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (c) => (process.exitCode = c),
    (e) => {
      process.stderr.write(`readme:table: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
