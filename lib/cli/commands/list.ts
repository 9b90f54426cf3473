/** irqsim list: every scenario with its variants, parameters, perturbations and claims. */
import { InputError } from '../../../scheduler';
import { describeClaim } from '../../scenario/claims';
import { scenarioCatalog } from '../../scenario/registry';
import type { Io } from '../command';
import type { CliOptions } from '../options';
import { JSON_VERSION } from '../../report/json';
import type { Perturbation } from '../../scenario/define';

/** A perturbation in one line: its own description when it has one, else what it changes. */
export function describePerturbation(p: Perturbation): string {
  if (p.description !== undefined && p.description !== '') return p.description;
  const changes = Object.entries(p.params).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return `${changes.join(', ') || 'no parameter change'}${p.scale !== undefined && p.scale !== 1 ? `; budget x${p.scale}` : ''}`;
}

export function cmdList(o: CliOptions, io: Io): number {
  if (o.positionals.length > 0) throw new InputError(`unexpected argument "${o.positionals[0]}": irqsim list takes none`);
  // A broken file is named on stderr; the others are listed (and a duplicate id is an error).
  const { scenarios, broken } = scenarioCatalog();
  for (const b of broken) io.err(`irqsim: skipped ${b.file}: ${b.message}`);
  const list = scenarios.map((s) => ({
    id: s.id,
    name: s.name,
    file: s.file,
    description: s.description,
    params: s.params,
    variants: s.variants.map((v) => ({ name: v.name, expect: v.expect })),
    perturbations: (s.perturbations ?? []).map((p) => ({ name: p.name, description: describePerturbation(p), params: p.params, ...(p.scale !== undefined ? { scale: p.scale } : {}) })),
    claims: (s.claims ?? []).map((c) => ({ name: c.name, text: c.text, relation: describeClaim(c) })),
  }));
  if (o.json) io.out(JSON.stringify({ version: JSON_VERSION, scenarios: list }));
  else for (const s of list) io.out(`${s.id.padEnd(8)} ${s.name}  [${s.variants.map((v) => v.name).join(', ')}]  ${s.file}`);
  return broken.length > 0 ? 2 : 0;
}
