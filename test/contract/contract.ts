/**
 * The scenario contract (docs/contract.md "Variants and expectations"), as a pure function over
 * what `irqsim list --json` and `irqsim hunt all --json` print: every problem as one line, so a
 * test can both run it on the real catalog and show it says "no" on planted violations.
 */

/** One `irqsim list --json` entry (only what the contract reads). */
export interface ListedScenario {
  id: string;
  file: string;
  variants: ({ name: string } | string)[];
}

interface ExpectJson {
  findings?: string[];
  absent?: string[];
  clean?: boolean;
  metrics?: string[];
}

/** One scenario's part of the hunt's JSON (only what the contract reads). */
export interface HuntedScenario {
  scenario: { id: string; file: string };
  runs: { variant: string; verdict: string; expect?: ExpectJson; findings?: { kind: string }[]; metrics?: Record<string, unknown> }[];
  claims?: { name: string; holds: boolean | null }[];
}

/** `hunt all --json` prints `{scenarios: [...]}`; a single scenario prints its object alone. */
export function huntedScenarios(doc: unknown): HuntedScenario[] {
  const d = doc as { scenarios?: HuntedScenario[] } & Partial<HuntedScenario>;
  if (Array.isArray(d?.scenarios)) return d.scenarios;
  if (d && typeof d === 'object' && d.scenario) return [d as HuntedScenario];
  throw new Error('hunt --json printed neither {scenarios: [...]} nor one scenario object');
}

/** Every way the catalog breaks the contract; empty when it keeps it. */
export function contractProblems(list: ListedScenario[], hunted: HuntedScenario[]): string[] {
  const bad: string[] = [];
  if (!Array.isArray(list) || list.length === 0) return ['irqsim list --json: not a non-empty array'];
  for (const s of list) {
    const name = s.id || s.file;
    const out = hunted.find((h) => h.scenario.id === s.id);
    if (!out) {
      bad.push(`${name}: listed but not hunted`);
      continue;
    }
    const declared = (s.variants ?? []).map((v) => (typeof v === 'string' ? v : v.name));
    if (!declared.includes('buggy') || !declared.includes('fixed')) bad.push(`${name}: no buggy/fixed variant declared`);
    for (const v of declared) if (!out.runs.some((r) => r.variant === v)) bad.push(`${name}/${v}: no run`);
    if (out.runs.length === 0) bad.push(`${name}: no runs`);
    for (const run of out.runs) {
      const e = run.expect ?? {};
      const kinds = (run.findings ?? []).map((f) => f.kind);
      const why: string[] = [];
      if (run.verdict !== 'as-expected') why.push(`verdict ${run.verdict}`);
      const missing = (e.findings ?? []).filter((k) => !kinds.includes(k));
      if (missing.length) why.push(`expected [${e.findings}] got [${kinds}]`);
      const appeared = kinds.filter((k) => (e.absent ?? []).includes(k));
      if (appeared.length) why.push(`absent kinds appeared: [${appeared}]`);
      if (e.clean && kinds.length) why.push(`expected clean got [${kinds}]`);
      const unreported = (e.metrics ?? []).filter((m) => typeof run.metrics?.[m] !== 'number');
      if (unreported.length) why.push(`metrics missing: [${unreported}]`);
      if (run.variant === 'buggy' && !(e.findings?.length || e.metrics?.length)) why.push('buggy variant expects nothing');
      if (why.length) bad.push(`${name}/${run.variant}: ${why.join(', ')}`);
    }
    for (const c of out.claims ?? []) if (c.holds === false) bad.push(`${name}: claim ${c.name} does not hold`);
  }
  for (const h of hunted) if (!list.some((s) => s.id === h.scenario.id)) bad.push(`${h.scenario.id}: hunted but not listed`);
  return bad;
}
