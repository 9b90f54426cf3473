/**
 * The catalog as a whole: every claim S1..S14 of docs/claims.md has a scenario, each
 * declared the way docs/contract.md and the demo need, and README's generated table lists exactly the
 * catalog's variants (regenerate it with `npm run readme:table`).
 */
import { kernelOf } from '../../demo/catalog';
import { expect } from 'chai';
import { readFileSync } from 'fs';
import { join } from 'path';
import { allScenarios } from '../../lib/scenario/registry';

const catalog = allScenarios();
const claims = catalog.filter((s) => /^S\d+$/.test(s.id));

describe('scenario catalog', () => {
  it('has one scenario per claim S1..S14, in files named sNN-*.ts', () => {
    const ids = claims.map((s) => s.id).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
    expect(ids).to.deep.equal(Array.from({ length: 14 }, (_, i) => `S${i + 1}`));
    for (const s of claims) expect(s.file, s.id).to.match(new RegExp(`scenarios/s${s.id.slice(1).padStart(2, '0')}-[\\w-]+\\.ts$`));
    expect(new Set(catalog.map((s) => s.id.toLowerCase())).size).to.equal(catalog.length);
  });

  for (const s of claims) {
    it(`${s.id} declares its claim, parameters, variants, key metrics and perturbations`, () => {
      expect(s.description.length, 'a paragraph citing the thread and author').to.be.greaterThan(200);
      expect(Object.keys(s.params).length, 'parameters with defaults').to.be.greaterThan(1);
      const names = s.variants.map((v) => v.name);
      expect(names).to.include.members(['buggy', 'fixed']);
      const buggy = s.variants.find((v) => v.name === 'buggy')!;
      expect((buggy.expect.findings ?? []).length + (buggy.expect.metrics ?? []).length, 'buggy expects findings or metrics').to.be.greaterThan(0);
      for (const v of s.variants) {
        const e = v.expect;
        expect(e.findings !== undefined || e.absent !== undefined || e.clean !== undefined || e.metrics !== undefined, `${v.name} declares an expectation`).to.equal(true);
      }
      expect(s.keyMetrics ?? [], 'keyMetrics').to.not.be.empty;
      const perts = s.perturbations ?? [];
      expect(perts.length, 'at least 3 perturbations').to.be.at.least(3);
      for (const p of perts) {
        expect(Object.keys(p.params), p.name).to.not.be.empty;
        for (const [k, v] of Object.entries(p.params)) {
          expect(s.params, `${p.name} sets a declared parameter`).to.have.property(k);
          expect(typeof v, `${p.name}.${k} has the declared type`).to.equal(typeof s.params[k]);
        }
      }
    });
  }

  it("README's table lists exactly the catalog's scenarios and variants (npm run readme:table)", () => {
    const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
    const a = readme.indexOf('<!-- demo-table:start');
    const b = readme.indexOf('<!-- demo-table:end -->');
    expect(a, 'table markers').to.be.greaterThan(0);
    const rows = readme
      .slice(a, b)
      .split('\n')
      .filter((l) => l.startsWith('| ') && !l.startsWith('| scenario '))
      .map((l) => l.slice(2).split(' | '))
      // columns: scenario | kernel | variant | ...
      .map(([id, kernel, variant]) => `${id}/${variant}@${kernel}`);
    const want = catalog.flatMap((s) => s.variants.map((v) => `${s.id}/${v.name}@${kernelOf(s)}`));
    expect([...rows].sort()).to.deep.equal([...want].sort());
  });
});
