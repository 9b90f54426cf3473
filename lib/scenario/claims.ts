/**
 * Claims: a scenario's quantitative statements, each carrying the sentence of its thread, judged
 * over the hunts of its variants (and over parameter values where the thread says "as X grows").
 *
 * A claim relates quantities; a quantity is one variant's counter normalised from the hunt's
 * folded totals: per schedule (the counter's sum over the schedules run / the schedules run), per
 * operation (its sum / another counter's sum, times a scale: "per 1000 maps"), or a peak as the
 * fold keeps it (the largest any schedule saw). Sums, counts and maxima fold the same in one
 * process, on workers, from shards merged afterwards and from a resumed hunt, so a claim's numbers
 * do not depend on how the hunt was split: ratios are taken of the folded sums, never averaged.
 *
 * A claim is judged only when every variant it names was hunted; otherwise it is "not judged"
 * (holds: null), which neither passes nor fails the hunt. Claims over other parameter values run
 * the extra hunts they need with the same hunt request (seed, budget, strategy).
 */
import type { ParamValue, Params, ScenarioDef } from './define';
import type { RunJson } from './hunt';

export interface Quantity {
  variant: string;
  /** A counter summed over the schedules (several are added), or with per 'peak' a peak metric. */
  metric: string | string[];
  /** 'schedule': per schedule run; a counter's name: per one of those (times `scale`); 'peak': as folded. */
  per: 'schedule' | 'peak' | string;
  /** Multiplies the ratio ("per 1000 maps": 1000). */
  scale?: number;
  /** Hunt the variant at these parameter values (an extra hunt) instead of the hunt's own. */
  params?: Params;
}

interface ClaimBase {
  /** Short id (kebab-case), unique in the scenario. */
  name: string;
  /** The sentence of the thread the claim tests, with its author and seed thread. */
  text: string;
}

/** `left op factor × right` (right a quantity or a number). */
export interface CompareClaim extends ClaimBase {
  left: Quantity;
  op: '<' | '<=' | '>' | '>=';
  right: Quantity | number;
  factor?: number;
}

/** The quantity, hunted at each of `values` of `param` in order, strictly falls (or rises) at every step. */
export interface TrendClaim extends ClaimBase {
  quantity: Quantity;
  param: string;
  values: ParamValue[];
  trend: 'falls' | 'rises';
}

export type ClaimDef = CompareClaim | TrendClaim;

/** docs/contract.md, "JSON": `claims: [{name, text, holds, values}]`. */
export interface ClaimJson {
  name: string;
  text: string;
  /** null: not judged (a variant it needs was not hunted, or it was a shard of the hunt). */
  holds: boolean | null;
  /** Each quantity by its label; null where it could not be computed (a zero denominator). */
  values: Record<string, number | null>;
  /** The relation, with the numbers. */
  relation: string;
  /** Why it was not judged, or why a value is missing. */
  note?: string;
}

export const isTrend = (c: ClaimDef): c is TrendClaim => (c as TrendClaim).trend !== undefined;

const metricsOf = (q: Quantity): string[] => (Array.isArray(q.metric) ? q.metric : [q.metric]);

/** What a quantity is, in words: "buggy mm.hypercalls per 1000 swiotlb.maps". */
export function quantityLabel(q: Omit<Quantity, 'variant'> & { variant?: string }, params?: Params): string {
  const p = params ?? q.params;
  const at = p && Object.keys(p).length ? ` [${Object.entries(p).map(([k, v]) => `${k}=${v}`).join(', ')}]` : '';
  const per = q.per === 'schedule' ? ' per schedule' : q.per === 'peak' ? ' (peak)' : ` per ${q.scale !== undefined && q.scale !== 1 ? `${q.scale} ` : ''}${q.per}`;
  return `${q.variant ?? ''}${at}${q.variant ? ' ' : ''}${metricsOf(q as Quantity).join('+')}${per}`;
}

/** The quantity's value in one run's metrics (folded sums and peaks); null when its denominator is 0 or a peak is missing. */
export function quantityValue(q: Omit<Quantity, 'variant' | 'params'>, run: Pick<RunJson, 'metrics' | 'schedulesRun'>): number | null {
  const names = metricsOf(q as Quantity);
  if (q.per === 'peak') {
    if (names.some((n) => typeof run.metrics[n] !== 'number')) return null;
    return names.reduce((s, n) => s + run.metrics[n], 0) * (q.scale ?? 1);
  }
  // A counter never counted in any schedule is zero.
  const sum = names.reduce((s, n) => s + (run.metrics[n] ?? 0), 0);
  const den = q.per === 'schedule' ? run.schedulesRun : (run.metrics[q.per] ?? 0);
  return den > 0 ? (sum * (q.scale ?? 1)) / den : null;
}

export interface ClaimContext {
  /** The hunt's runs, at `params`. */
  runs: RunJson[];
  params: Params;
  /** Hunt a variant at other parameter values (same request as the runs); absent: such claims are not judged. */
  hunt?: (variant: string, params: Params) => RunJson;
  /** Why claims are not judged at all (a shard of a hunt). */
  notJudged?: string;
}

const OPS: Record<CompareClaim['op'], (a: number, b: number) => boolean> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

const fmt = (v: number | null): string => (v === null ? 'n/a' : Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3));

const sameParams = (a: Params, b: Params): boolean => Object.keys({ ...a, ...b }).every((k) => a[k] === b[k]);

/** The variants a claim hunts. */
export function claimVariants(c: ClaimDef): string[] {
  if (isTrend(c)) return [c.quantity.variant];
  return [...new Set([c.left.variant, ...(typeof c.right === 'number' ? [] : [c.right.variant])])];
}

/** Judge every claim of the scenario over the hunt's runs (running the extra hunts a claim needs). */
export function judgeClaims(def: ScenarioDef, ctx: ClaimContext): ClaimJson[] {
  const extra = new Map<string, RunJson>();
  const runAt = (variant: string, over: Params | undefined): RunJson => {
    const params = { ...ctx.params, ...(over ?? {}) };
    if (sameParams(params, ctx.params)) return ctx.runs.find((r) => r.variant === variant) as RunJson;
    const key = `${variant}\u0000${JSON.stringify(Object.keys(params).sort().map((k) => [k, params[k]]))}`;
    let r = extra.get(key);
    if (r === undefined) {
      r = (ctx.hunt as NonNullable<ClaimContext['hunt']>)(variant, params);
      extra.set(key, r);
    }
    return r;
  };
  const hunted = new Set(ctx.runs.map((r) => r.variant));
  return (def.claims ?? []).map((c): ClaimJson => {
    const base = { name: c.name, text: c.text };
    const relation = describeClaim(c);
    if (ctx.notJudged !== undefined) return { ...base, holds: null, values: {}, relation, note: ctx.notJudged };
    const missing = claimVariants(c).filter((v) => !hunted.has(v));
    if (missing.length > 0) return { ...base, holds: null, values: {}, relation, note: `not judged: needs variant ${missing.join(', ')}, which this hunt did not run (hunted: ${[...hunted].join(', ')})` };
    const needsExtra = isTrend(c) ? c.values.some((v) => v !== ctx.params[c.param]) : [c.left, c.right].some((q) => typeof q !== 'number' && q.params !== undefined && !sameParams({ ...ctx.params, ...q.params }, ctx.params));
    if (needsExtra && ctx.hunt === undefined) return { ...base, holds: null, values: {}, relation, note: 'not judged: needs hunts at other parameter values, which this command does not run' };
    if (isTrend(c)) {
      const values: Record<string, number | null> = {};
      const series = c.values.map((v) => {
        const at = { ...(c.quantity.params ?? {}), [c.param]: v };
        const x = quantityValue(c.quantity, runAt(c.quantity.variant, at));
        values[quantityLabel({ ...c.quantity, params: undefined }, { [c.param]: v })] = x;
        return x;
      });
      const ok = series.every((x) => x !== null) && series.every((x, i) => i === 0 || (c.trend === 'falls' ? (x as number) < (series[i - 1] as number) : (x as number) > (series[i - 1] as number)));
      const note = series.some((x) => x === null) ? `a value could not be computed (its denominator was 0)` : undefined;
      return { ...base, holds: ok, values, relation: `${relation}: ${series.map(fmt).join(' -> ')}`, ...(note ? { note } : {}) };
    }
    const l = quantityValue(c.left, runAt(c.left.variant, c.left.params));
    const r = typeof c.right === 'number' ? c.right : quantityValue(c.right, runAt(c.right.variant, c.right.params));
    const values: Record<string, number | null> = { [quantityLabel(c.left)]: l };
    if (typeof c.right !== 'number') values[quantityLabel(c.right)] = r;
    const f = c.factor ?? 1;
    const ok = l !== null && r !== null && OPS[c.op](l, f * r);
    const note = l === null || r === null ? 'a value could not be computed (its denominator was 0, or a peak was never recorded)' : undefined;
    return { ...base, holds: ok, values, relation: `${fmt(l)} ${c.op} ${f !== 1 ? `${fmt(f)} x ` : ''}${fmt(r)}  (${relation})`, ...(note ? { note } : {}) };
  });
}

/** The relation in words, without numbers. */
export function describeClaim(c: ClaimDef): string {
  if (isTrend(c)) return `${quantityLabel(c.quantity)} ${c.trend} at every step of ${c.param} = ${c.values.join(', ')}`;
  const right = typeof c.right === 'number' ? String(c.right) : quantityLabel(c.right);
  return `${quantityLabel(c.left)} ${c.op} ${c.factor !== undefined && c.factor !== 1 ? `${fmt(c.factor)} x ` : ''}${right}`;
}

/** Checked when a scenario is defined: names unique, variants and parameters declared. */
export function checkClaims(def: Pick<ScenarioDef, 'id' | 'params' | 'variants' | 'claims'>): void {
  const names = new Set<string>();
  const variants = new Set(def.variants.map((v) => v.name));
  for (const c of def.claims ?? []) {
    const where = `scenario ${def.id}: claim ${c.name}`;
    if (names.has(c.name)) throw new Error(`${where} is declared twice`);
    names.add(c.name);
    if (!c.text.trim()) throw new Error(`${where} carries no sentence from its thread`);
    for (const v of claimVariants(c)) if (!variants.has(v)) throw new Error(`${where} names variant ${v}, which the scenario does not have`);
    const qs = isTrend(c) ? [c.quantity] : [c.left, ...(typeof c.right === 'number' ? [] : [c.right])];
    for (const q of qs) for (const k of Object.keys(q.params ?? {})) if (!(k in def.params)) throw new Error(`${where} sets undeclared parameter ${k}`);
    if (isTrend(c)) {
      if (!(c.param in def.params)) throw new Error(`${where} varies undeclared parameter ${c.param}`);
      if (c.values.length < 2) throw new Error(`${where} needs at least two values of ${c.param}`);
    }
  }
}

/** The text output's lines for the claims. */
export function formatClaims(claims: ClaimJson[]): string[] {
  const out: string[] = [];
  for (const c of claims) {
    const verdict = c.holds === null ? 'not judged' : c.holds ? 'holds' : 'FAILS';
    out.push(`claim ${c.name}: ${verdict}  ${c.relation}`);
    out.push(`  ${c.text}`);
    if (c.note) out.push(`  ${c.note}`);
  }
  return out;
}

/** True unless a judged claim fails. */
export const claimsHold = (claims: readonly ClaimJson[] | undefined): boolean => (claims ?? []).every((c) => c.holds !== false);
