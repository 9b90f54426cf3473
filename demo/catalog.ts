/**
 * npm run demo — the whole scenario catalog, hunted once per variant with each variant's declared
 * budget, as a table: scenario, variant, verdict, key metric, the replay command of the first
 * finding. Scenarios are spread over worker processes (one per core); the table is in catalog
 * order and does not depend on the worker count. `--markdown` prints the README's table.
 */
import { fork, type ChildProcess } from 'child_process';
import { availableParallelism } from 'os';
import { join, relative } from 'path';
import { formatMetric } from '../lib/report/text';
import { scenarioFiles } from '../lib/scenario/registry';
import { NEWEST_KERNEL } from '../lib/kernel/config';
import type { ScenarioDef } from '../lib/scenario/define';
import type { CatalogReply } from './catalog-worker';

export interface CatalogRow {
  scenario: string;
  name: string;
  variant: string;
  verdict: string;
  schedules: number;
  findings: string;
  keyMetric: string;
  /** On a scenario's first row: how many of its claims hold ("3/4 hold; FAILS: x"). */
  claims: string;
  replay: string;
}

/** S1..S14 first in numeric order, then the kernel-basics scenarios by id. */
function catalogOrder(a: CatalogReply, b: CatalogReply): number {
  const na = /^S(\d+)$/.exec(a.id);
  const nb = /^S(\d+)$/.exec(b.id);
  if (na && nb) return Number(na[1]) - Number(nb[1]);
  if (na) return -1;
  if (nb) return 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Hunt every scenario file on `workers` worker processes; `onReply` sees each scenario as it
 * finishes (in finishing order), the result is in catalog order.
 */
export async function runCatalog(workers = Math.max(1, availableParallelism()), onReply?: (r: CatalogReply, done: number, total: number) => void): Promise<CatalogReply[]> {
  const files = scenarioFiles();
  const replies: CatalogReply[] = [];
  let next = 0;
  const spawnOne = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const child: ChildProcess = fork(join(__dirname, 'catalog-worker.ts'), [], { execArgv: ['-r', 'ts-node/register/transpile-only'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const feed = () => {
        if (next >= files.length) {
          child.disconnect();
          return;
        }
        const index = next++;
        child.send({ index, file: relative(process.cwd(), files[index]) });
      };
      child.on('message', (r: CatalogReply) => {
        replies.push(r);
        onReply?.(r, replies.length, files.length);
        feed();
      });
      child.on('exit', (code) => (code === 0 || code === null ? resolve() : reject(new Error(`demo worker exited with ${code}`))));
      child.on('error', reject);
      feed();
    });
  await Promise.all(Array.from({ length: Math.min(workers, files.length) }, spawnOne));
  return replies.sort(catalogOrder);
}

export function catalogRows(replies: CatalogReply[]): CatalogRow[] {
  const rows: CatalogRow[] = [];
  for (const s of replies) {
    if (s.error) {
      rows.push({ scenario: s.id, name: '', variant: '-', verdict: `error: ${s.error}`, schedules: 0, findings: '', keyMetric: '', claims: '', replay: '' });
      continue;
    }
    for (const [i, r] of s.runs.entries()) {
      const first = [...r.findings].filter((f) => f.replay).sort((a, b) => a.iteration - b.iteration)[0];
      const kv = s.key?.values[i];
      rows.push({
        scenario: s.id,
        name: s.name,
        variant: r.variant,
        verdict: r.verdict,
        schedules: r.schedulesRun,
        findings: [...new Set(r.findings.map((f) => f.kind))].join(', ') || 'clean',
        keyMetric: s.key === null ? '' : `${s.key.label} = ${kv === null || kv === undefined ? '-' : formatMetric(kv)}`,
        claims: i === 0 ? claimsCell(s) : '',
        replay: first?.replay ?? '',
      });
    }
  }
  return rows;
}

/** "4/4 hold", "3/4 hold; FAILS: name", or "" without claims. */
function claimsCell(s: CatalogReply): string {
  if (s.claims.length === 0) return '';
  const failed = s.claims.filter((c) => c.holds === false).map((c) => c.name);
  return `${s.claims.filter((c) => c.holds === true).length}/${s.claims.length} hold${failed.length ? `; FAILS: ${failed.join(', ')}` : ''}`;
}

/** Every run as expected and every claim holding. */
export function catalogOk(replies: CatalogReply[], rows: CatalogRow[]): boolean {
  return rows.every((r) => r.verdict === 'as-expected') && replies.every((s) => s.claims.every((c) => c.holds !== false));
}

/** One scenario's rows as it finishes: "[ 3/21] S3 buggy: as-expected, 120 schedules, lockdep, deadlock". */
export function liveLines(r: CatalogReply, done: number, total: number): string[] {
  const n = String(total).length;
  const tag = `[${String(done).padStart(n)}/${total}]`;
  return catalogRows([r]).map((row) => `${tag} ${row.scenario} ${row.variant}: ${row.verdict}${row.schedules ? `, ${row.schedules} schedule(s)` : ''}${row.findings ? `, ${row.findings}` : ''}${row.claims ? `; claims ${row.claims}` : ''}`);
}

const HEAD = ['scenario', 'variant', 'verdict', 'schedules', 'findings', 'key metric (per schedule or per operation)', 'claims', 'replay of the first finding'];
const cells = (r: CatalogRow) => [r.scenario, r.variant, r.verdict, String(r.schedules), r.findings, r.keyMetric, r.claims, r.replay];

export function formatText(rows: CatalogRow[]): string {
  const all = [HEAD, ...rows.map(cells)];
  const w = HEAD.map((_, c) => Math.max(...all.map((row) => row[c].length)));
  return all.map((row) => row.map((x, c) => (c === row.length - 1 ? x : x.padEnd(w[c]))).join('  ').trimEnd()).join('\n');
}

export function formatMarkdown(rows: CatalogRow[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [`| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const c = cells(r);
    c[7] = c[7] ? `\`${c[7]}\`` : '';
    lines.push(`| ${c.map(esc).join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const markdown = process.argv.includes('--markdown');
  const bad = process.argv.slice(2).filter((a) => a !== '--markdown');
  if (bad.length) {
    process.stderr.write(`demo: unknown argument "${bad[0]}" (only --markdown)\n`);
    return 2;
  }
  const started = Date.now(); // wall time of the demo itself, printed only; no simulation reads it
  // Each scenario's rows on stderr as it finishes (the run takes a while); the table on stdout
  // stays in catalog order, independent of which worker finished first.
  process.stderr.write(`demo: hunting ${scenarioFiles().length} scenarios on ${Math.max(1, availableParallelism())} worker(s); rows print as each finishes\n`);
  const replies = await runCatalog(undefined, (r, done, total) => {
    for (const line of liveLines(r, done, total)) process.stderr.write(`${line}\n`);
  });
  const rows = catalogRows(replies);
  if (markdown) {
    process.stdout.write(`${formatMarkdown(rows)}\n`);
  } else {
    process.stdout.write(`irqsim scenario catalog: ${replies.length} scenarios, every variant hunted with its declared budget\n\n`);
    process.stdout.write(`${formatText(rows)}\n\n`);
    const ok = rows.filter((r) => r.verdict === 'as-expected').length;
    const claims = replies.flatMap((x) => x.claims);
    process.stdout.write(`${ok} of ${rows.length} runs as expected, ${claims.filter((c) => c.holds === true).length} of ${claims.length} claims hold, in ${((Date.now() - started) / 1000).toFixed(1)} s. Details: npx irqsim hunt <scenario>; replay any finding with the command shown.\n`);
  }
  return catalogOk(replies, rows) ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => (process.exitCode = code),
    (e) => {
      process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}

/** The kernel a scenario runs under by default: its `kernel` parameter, its kernel spec, else the newest. */
export function kernelOf(def: ScenarioDef): string {
  return typeof def.params.kernel === 'string' ? def.params.kernel : (def.kernel?.version ?? NEWEST_KERNEL);
}

/** The catalog's markdown table with a `kernel` column after `scenario` (each row: its scenario's profile). */
export function withKernelColumn(markdown: string, kernel: (scenario: string) => string): string {
  return markdown
    .split('\n')
    .map((line, i) => {
      if (i === 0) return line.replace(/^\| scenario \|/, '| scenario | kernel |');
      if (i === 1) return `|---${line}`;
      return line.replace(/^\| ([^|]+?) \|/, (_all, id: string) => `| ${id} | ${kernel(id)} |`);
    })
    .join('\n');
}
