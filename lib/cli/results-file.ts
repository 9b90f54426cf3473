/**
 * Results files: what `irqsim hunt --json` prints, `--out` writes while the hunt runs, `--shard`
 * leaves for `irqsim merge`, and `irqsim report` reads. Written whole and renamed into place
 * (lib/report/write-atomic.ts), so a reader (or a hunt killed mid-write) never sees half a file.
 */
import { readFileSync } from 'fs';
import { InputError } from '../../scheduler';
import type { ClaimJson } from '../scenario/claims';
import { JSON_VERSION, type RunJson } from '../report/json';
import { writeAtomic } from '../report/write-atomic';

export interface ScenarioOutput {
  scenario: { id: string; name: string; file?: string; hash: string };
  options: Record<string, unknown>;
  runs: RunJson[];
  /** The scenario's claims judged over the runs (absent while the hunt runs). */
  claims?: ClaimJson[];
}

export type ResultsDoc = { version: number } & (ScenarioOutput | { scenarios: ScenarioOutput[] });

/** One scenario prints its object, several `{scenarios: [...]}`; both carry the JSON format version. */
export function docOf(outputs: ScenarioOutput[]): ResultsDoc {
  return outputs.length === 1 ? { version: JSON_VERSION, ...outputs[0] } : { version: JSON_VERSION, scenarios: outputs };
}

/** A results file's scenarios (either JSON shape); a one-line error for anything else. */
export function readResults(file: string, what = 'a results file (the output of irqsim hunt --json or --out)'): ScenarioOutput[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InputError(`${file} is not JSON (expected ${what})`);
  }
  const list = json && typeof json === 'object' && Array.isArray((json as { scenarios?: unknown }).scenarios) ? (json as { scenarios: unknown[] }).scenarios : [json];
  for (const s of list) {
    const ok = s && typeof s === 'object' && (s as ScenarioOutput).scenario && typeof (s as ScenarioOutput).scenario.id === 'string' && Array.isArray((s as ScenarioOutput).runs);
    if (!ok) throw new InputError(`${file} is not ${what}`);
  }
  // the document's version is not part of a scenario's output
  return (list as (ScenarioOutput & { version?: unknown })[]).map(({ version: _v, ...x }) => x);
}

/**
 * --out: keeps the document and rewrites the file when something changed, at most once a
 * second while the hunt runs (wall clock: presentation only), and always at the end.
 */
export class ResultsWriter {
  private last = 0;

  constructor(
    readonly file: string,
    private readonly doc: () => ResultsDoc,
  ) {}

  update(force = false): void {
    const now = Date.now();
    if (!force && now - this.last < 1000) return;
    this.last = now;
    try {
      writeAtomic(this.file, JSON.stringify(this.doc()));
    } catch (e) {
      // Mid-hunt this runs in a worker's message handler, where a throw would escape as an
      // uncaught exception: the final (forced) write reports it.
      if (force) throw e;
    }
  }
}
