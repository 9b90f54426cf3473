/**
 * No file under lib/ or scheduler/ is over 700 lines unless docs/layout.md lists it (with the
 * kernel file it models and why it stays whole). The list is read from that table, so the doc
 * and the check cannot drift apart.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'fs';
import { join, relative } from 'path';

const ROOT = join(__dirname, '..', '..');
const LIMIT = 700;

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (/\.(ts|js)$/.test(e) && !e.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The files docs/layout.md's "Files over 700 lines" table names. */
export function listedExceptions(layoutMd: string): Set<string> {
  const at = layoutMd.indexOf('## Files over 700 lines');
  const section = at < 0 ? '' : layoutMd.slice(at).split('\n## ')[0];
  return new Set([...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
}

export function oversized(paths: readonly { file: string; lines: number }[], allowed: Set<string>): string[] {
  return paths.filter((p) => p.lines > LIMIT && !allowed.has(p.file)).map((p) => `${p.file}: ${p.lines} lines`);
}

describe('architecture: file sizes', () => {
  it(`no file under lib/ or scheduler/ over ${LIMIT} lines unless docs/layout.md lists it`, () => {
    const allowed = listedExceptions(readFileSync(join(ROOT, 'docs', 'layout.md'), 'utf8'));
    expect(allowed.size, 'the table was found').to.be.greaterThan(0);
    const sizes = [...files(join(ROOT, 'lib')), ...files(join(ROOT, 'scheduler'))].map((f) => ({
      file: relative(ROOT, f),
      lines: readFileSync(f, 'utf8').split('\n').length - 1,
    }));
    expect(oversized(sizes, allowed)).to.deep.equal([]);
    // every listed exception still exists and is still over the limit (no stale entries)
    for (const f of allowed) expect(sizes.find((s) => s.file === f)?.lines ?? 0, f).to.be.greaterThan(LIMIT);
  });

  it('says no to an unlisted long file', () => {
    const allowed = listedExceptions('## Files over 700 lines\n\n| file | lines |\n|---|---|\n| `lib/a.ts` | 900 |\n');
    expect(oversized([{ file: 'lib/a.ts', lines: 900 }, { file: 'lib/b.ts', lines: 701 }, { file: 'lib/c.ts', lines: 700 }], allowed)).to.deep.equal(['lib/b.ts: 701 lines']);
  });
});
