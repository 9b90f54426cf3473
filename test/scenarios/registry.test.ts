/**
 * The scenario registry (lib/scenario/registry.ts) on a temporary catalog (IRQSIM_SCENARIO_DIR /
 * the dir parameter): ids read without loading, a broken file named without failing other
 * lookups, a repeated id an error naming both files; and the program hash covering the whole
 * scenario file, so a helper edited outside `build` is caught on replay.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { spawnSync } from 'child_process';
import { join, resolve } from 'path';
import { InputError, ScheduleError, decodeSchedule, engineOptions, hunt, programHash, replay } from '../../scheduler';
import { scenarioProgram } from '../../lib/scenario/define';
import { huntVariant, variantHuntOptions } from '../../lib/scenario/hunt';
import { allScenarios, findScenario, idOfSource, scenarioCatalog, scenarioIds } from '../../lib/scenario/registry';
import { ownerHint, scheduleOwner } from '../../lib/scenario/owner';
import { main } from '../../lib/cli/main';

const REPO = resolve(__dirname, '..', '..');

/** scenarios/abba.ts with its imports pointing into this checkout, so it loads from anywhere. */
function abbaSource(): string {
  return readFileSync(join(REPO, 'scenarios', 'abba.ts'), 'utf8').replace(/from '\.\.\/lib\//g, `from '${REPO}/lib/`);
}

function forget(file: string): void {
  delete require.cache[require.resolve(file)];
}

describe('scenario registry', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'irqsim-registry-'));
  });
  afterEach(() => {
    for (const k of Object.keys(require.cache)) if (k.startsWith(dir)) delete require.cache[k];
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads each catalog file\'s id from its text', () => {
    const ids = scenarioIds();
    expect(ids).to.include.members(['abba', 'S3', 'S14', 'rcu-uaf']);
    expect(idOfSource(`// id: 'no'\nconst s = defineScenario({ params: { id: 'inner' }, /* id: 'x' */ name: 'id: "y"', id: 'real' });`)).to.equal('real');
    expect(idOfSource(`defineScenario<P>({ id: ID })`)).to.equal(null);
    expect(idOfSource('no scenario here')).to.equal(null);
  });

  it('looks up one id without loading the others; a broken file fails only its own lookup and is named', () => {
    writeFileSync(join(dir, 'abba.ts'), abbaSource());
    writeFileSync(join(dir, 'broken.ts'), `import { defineScenario } from '${REPO}/lib/scenario/define';\nexport default defineScenario({ id: 'broken', name: 'x' (\n`);
    writeFileSync(join(dir, 'throws.ts'), `throw new Error('boom at load');\n`);
    writeFileSync(join(dir, 'lazy.ts'), `${abbaSource().replace("id: 'abba'", 'id: ID').replace('const scenario =', "const ID = 'lazy-id';\nconst scenario =")}`);
    const def = findScenario('ABBA', dir);
    expect(def.id).to.equal('abba');
    expect(Object.keys(require.cache).some((k) => k.endsWith('broken.ts'))).to.equal(false);
    // an id that is not a literal is learnt by loading (the broken files are skipped there)
    expect(findScenario('lazy-id', dir).id).to.equal('lazy-id');
    expect(() => findScenario('broken', dir)).to.throw(InputError, /broken\.ts/);
    expect(() => findScenario('nope', dir)).to.throw(InputError, /unknown scenario "nope".*abba.*\(.*throws\.ts could not be loaded\)/);
    const cat = scenarioCatalog(dir);
    expect(cat.scenarios.map((s) => s.id)).to.deep.equal(['abba', 'lazy-id']);
    expect(cat.broken.map((b) => b.file.replace(/.*\//, ''))).to.deep.equal(['broken.ts', 'throws.ts']);
    expect(cat.broken[1].message).to.match(/boom at load/);
    expect(() => allScenarios(dir)).to.throw(InputError, /broken\.ts[\s\S]*boom at load/);
  });

  it('the directory is overridable through IRQSIM_SCENARIO_DIR', () => {
    writeFileSync(join(dir, 'only.ts'), abbaSource().replace("id: 'abba'", "id: 'only'"));
    const before = process.env.IRQSIM_SCENARIO_DIR;
    process.env.IRQSIM_SCENARIO_DIR = dir;
    try {
      expect(scenarioIds()).to.deep.equal(['only']);
      expect(() => findScenario('abba')).to.throw(InputError, /unknown scenario "abba"/);
    } finally {
      if (before === undefined) delete process.env.IRQSIM_SCENARIO_DIR;
      else process.env.IRQSIM_SCENARIO_DIR = before;
    }
  });

  it('irqsim list shows the good files and names the broken one on stderr (exit 2)', () => {
    writeFileSync(join(dir, 'abba.ts'), abbaSource());
    writeFileSync(join(dir, 'throws.ts'), `throw new Error('boom at load');\n`);
    const before = process.env.IRQSIM_SCENARIO_DIR;
    process.env.IRQSIM_SCENARIO_DIR = dir;
    const out: string[] = [];
    const err: string[] = [];
    try {
      const code = main(['list', '--json'], { out: (x) => out.push(x), err: (x) => err.push(x) });
      expect(code).to.equal(2);
    } finally {
      if (before === undefined) delete process.env.IRQSIM_SCENARIO_DIR;
      else process.env.IRQSIM_SCENARIO_DIR = before;
    }
    expect(JSON.parse(out.join('')).scenarios.map((s: { id: string }) => s.id)).to.deep.equal(['abba']);
    expect(err.join('\n')).to.match(/skipped .*throws\.ts: .*boom at load/);
  });

  it('a second file declaring an id is an error naming both files', () => {
    writeFileSync(join(dir, 'a-first.ts'), abbaSource());
    writeFileSync(join(dir, 'b-hijack.ts'), abbaSource().replace("name: 'ABBA", "name: 'hijacked ABBA"));
    expect(() => findScenario('abba', dir)).to.throw(InputError, /"abba" is declared by two files: .*a-first\.ts and .*b-hijack\.ts/);
    const cat = scenarioCatalog(dir);
    expect(cat.scenarios).to.have.length(1);
    expect(cat.scenarios[0].file).to.match(/a-first\.ts$/);
    expect(cat.broken).to.have.length(1);
    expect(cat.broken[0].message).to.match(/a-first\.ts and .*b-hijack\.ts/);
    // a case-only difference is the same id (lookups ignore case)
    writeFileSync(join(dir, 'b-hijack.ts'), abbaSource().replace("id: 'abba'", "id: 'ABBA'"));
    expect(() => findScenario('abba', dir)).to.throw(InputError, /declared by two files/);
  });

  it('a helper edited outside build changes the program hash: the replay is refused, not run', () => {
    const file = join(dir, 'abba.ts');
    writeFileSync(file, abbaSource());
    const def = findScenario('abba', dir);
    const v = def.variants.find((x) => x.name === 'buggy')!;
    const opts = variantHuntOptions(def, v, { seed: 3 });
    const h = hunt(scenarioProgram(def, 'buggy', def.params), { ...opts, stopWhenSeen: ['deadlock'] });
    const f = h.findings.find((x) => x.kind === 'deadlock');
    expect(f, 'the toy deadlocks').to.not.equal(undefined);
    expect(replay(scenarioProgram(def, 'buggy', def.params), f!.schedule, engineOptions(opts)).reproduced).to.equal(true);
    // take_both (a helper outside build, machine and prepare) now holds each lock 10x longer
    const edited = abbaSource().replace('yield cur.thread.work(holdNs);\n  yield* spin_lock(cur, second);', 'yield cur.thread.work(holdNs * 10);\n  yield* spin_lock(cur, second);');
    expect(edited).to.not.equal(abbaSource());
    writeFileSync(file, edited);
    forget(file);
    const def2 = findScenario('abba', dir);
    expect(def2.build.toString()).to.equal(def.build.toString()); // build itself did not change
    const p2 = scenarioProgram(def2, 'buggy', def2.params);
    expect(programHash(p2, engineOptions(opts))).to.not.equal(h.hash);
    expect(() => replay(p2, f!.schedule, engineOptions(opts))).to.throw(ScheduleError, /recorded for program hash/);
  });

  it('end to end: irqsim replay of a file whose helper was edited says the program changed', () => {
    const file = join(dir, 'abba.ts');
    writeFileSync(file, abbaSource());
    let out = '';
    let err = '';
    const io = { out: (x: string) => (out += `${x}\n`), err: (x: string) => (err += `${x}\n`) };
    expect(main(['hunt', file, '--variant', 'buggy', '--seed', '3', '--no-shrink', '--json'], io)).to.equal(0);
    const schedule = (JSON.parse(out).runs[0].findings as { kind: string; schedule: string }[]).find((f) => f.kind === 'deadlock')!.schedule;
    out = '';
    expect(main(['replay', file, schedule, '--variant', 'buggy', '--json'], io)).to.not.equal(2);
    writeFileSync(file, abbaSource().replace('yield cur.thread.work(holdNs);\n  yield* spin_lock(cur, second);', 'yield cur.thread.work(holdNs * 10);\n  yield* spin_lock(cur, second);'));
    forget(file);
    out = '';
    err = '';
    expect(main(['replay', file, schedule, '--variant', 'buggy'], io)).to.equal(2);
    expect(out).to.equal('');
    expect(err).to.match(/schedule was recorded for program hash \w+, but abba\/buggy .*hashes to \w+/);
  });

  it('the program hash is the same from bin/irqsim.js (sucrase or dist) and from ts-node', () => {
    const argv = ['hunt', 'abba', '--variant', 'fixed', '--seed', '5', '--iterations', '2', '--json'];
    const child = spawnSync(process.execPath, [join(REPO, 'bin', 'irqsim.js'), ...argv], { cwd: REPO, encoding: 'utf8', env: { ...process.env, IRQSIM_YIELD_TIMEOUT: '0' } });
    expect(child.status, child.stderr).to.equal(0);
    let out = '';
    expect(main(argv, { out: (x) => (out += x), err: () => undefined })).to.equal(0);
    expect(JSON.parse(child.stdout).scenario.hash).to.equal(JSON.parse(out).scenario.hash);
  });

  it('scheduleOwner names the scenario and variant a hunted schedule belongs to', () => {
    const def = findScenario('abba');
    const v = def.variants.find((x) => x.name === 'buggy')!;
    // a hunt as the CLI runs it records the schedule
    const run = huntVariant(def, v, def.params, { hunt: { seed: 3 }, shrink: false });
    const schedule = run.findings.find((f) => f.kind === 'deadlock')!.schedule;
    const owner = scheduleOwner(decodeSchedule(schedule).hash);
    expect(owner).to.deep.include({ id: 'abba', variant: 'buggy' });
    expect(owner!.file).to.match(/scenarios\/abba\.ts$/);
    expect(scheduleOwner('00000000')).to.equal(null);
    // replayed on the other variant: the hint names the owner and the command, not --continue
    expect(() => replay(scenarioProgram(def, 'fixed', def.params), schedule, engineOptions(variantHuntOptions(def, def.variants[1])))).to.throw(ScheduleError, /recorded for program hash/);
    const hint = ownerHint(schedule, { id: 'abba', variant: 'fixed' })!;
    expect(hint).to.match(/^this schedule belongs to abba\/buggy with its default parameters \(.*abba\.ts\), not abba\/fixed: replay it with npx irqsim replay abba 2:\S+ --variant buggy$/);
    // the same variant with other parameters: it says what it was recorded for
    expect(ownerHint(schedule, { id: 'abba', variant: 'buggy' })).to.match(/^it was recorded for abba\/buggy with its default parameters/);
    // a perturbation's hash is found too
    const s3 = findScenario('S3');
    const pert = (s3.perturbations ?? [])[0];
    if (pert !== undefined) {
      const sv = s3.variants[0];
      const h = programHash(scenarioProgram(s3, sv.name, { ...s3.params, ...pert.params } as typeof s3.params), engineOptions({ ...variantHuntOptions(s3, sv), instrument: false }));
      expect(scheduleOwner(h, [def, s3])).to.deep.include({ id: 'S3', variant: sv.name, perturbation: pert.name });
    }
  });
});
