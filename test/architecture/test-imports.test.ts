/**
 * No file imports a `*.test.ts` file: under mocha --parallel each file runs in its own worker, so
 * an imported test file registers its suites a second time there (they ran twice, unnoticed).
 * Shared test code lives in test/support/.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'fs';
import { join, relative } from 'path';

const ROOT = join(__dirname, '..', '..');

export function importsOfTestFiles(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|require\(\s*|import\(\s*)['"]([^'"]+\.test)(?:\.ts)?['"]/g)) out.push(`${file} imports ${m[1]}`);
  return out;
}

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(ts|js)$/.test(e)) out.push(p);
  }
  return out;
}

describe('architecture: no file imports a test file', () => {
  it('test/, lib/, scheduler/, scenarios/ import no *.test file', () => {
    const bad = ['test', 'lib', 'scheduler', 'scenarios'].flatMap((d) => files(join(ROOT, d))).flatMap((f) => importsOfTestFiles(relative(ROOT, f), readFileSync(f, 'utf8')));
    expect(bad).to.deep.equal([]);
  });

  it('says no to an import of a test file', () => {
    const planted = `import { x } from './conformance${'.test'}';`; // split, so this file does not match itself
    expect(importsOfTestFiles('a.ts', planted)).to.deep.equal(['a.ts imports ./conformance.test']);
    expect(importsOfTestFiles('a.ts', "import { x } from '../support/designs';")).to.deep.equal([]);
  });
});
