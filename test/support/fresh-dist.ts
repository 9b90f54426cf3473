/**
 * Mocha global setup (runs once, in the main process, before any file; under --parallel before
 * the workers start): a checkout whose dist/ is missing or older than its sources is built first.
 * Tests spawn bin/irqsim.js, which otherwise runs the sources with a note on stderr, and
 * test/package/pack-install.test.ts would rebuild dist/ while the other worker's tests run it.
 * On a fresh `npm ci` (CI) dist/ is current and this does nothing.
 */
import { execFileSync } from 'child_process';
import { join } from 'path';

const ROOT = join(__dirname, '..', '..');

export function mochaGlobalSetup(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { pick } = require(join(ROOT, 'bin', 'root.js')) as { pick: (root: string) => { ts: boolean } };
  if (process.env.IRQSIM_FROM || !pick(ROOT).ts) return;
  process.stderr.write('dist/ is missing or older than the sources: npm run build first\n');
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
}
