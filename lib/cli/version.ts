/**
 * The package version (package.json), found from this file upwards: lib/cli/ in the sources,
 * dist/lib/cli/ in a build, the same file in an installed package.
 */
import { existsSync, readFileSync } from 'fs';
import { dirname, join } from 'path';

export function packageVersion(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const f = join(dir, 'package.json');
    if (existsSync(f)) {
      const pkg = JSON.parse(readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'irqsim' && typeof pkg.version === 'string') return pkg.version;
    }
    if (dirname(dir) === dir) throw new Error('package.json of irqsim not found');
  }
}
