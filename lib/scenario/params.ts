/**
 * A scenario's parameters as a run gets them: the declared defaults, a perturbation's changes,
 * then key=value overrides (--param, the mocha helper's params), each typed by its declared
 * default. `kernel` (the modelled kernel version, lib/kernel/config.ts) is a parameter of every
 * scenario. Also the list-valued parameter parser scenarios share (uptime steps).
 */
import { InputError, ProgramError } from '../../scheduler';
import { KERNEL_VERSIONS, isKernelVersion } from '../kernel/config';
import type { Params, ScenarioDef } from './define';

export function checkKernel(v: string, what: string): string {
  if (!isKernelVersion(v)) throw new InputError(`bad ${what} "${v}": expected ${KERNEL_VERSIONS.join(', ')}`);
  return v;
}

/** key=value overrides (after a perturbation's), typed by the declared default. */
export function applyParams(def: ScenarioDef, overrides: string[], base: Partial<Params> = {}): Params {
  const params: Params = { ...def.params, ...base } as Params;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new InputError(`bad --param "${o}": expected key=value`);
    const key = o.slice(0, eq);
    const raw = o.slice(eq + 1);
    if (key === 'kernel') {
      params.kernel = checkKernel(raw, '--param kernel');
      continue;
    }
    if (!(key in def.params)) {
      throw new InputError(`unknown parameter "${key}" for ${def.id}: declared are ${Object.keys(def.params).join(', ') || '(none)'}`);
    }
    const d = def.params[key];
    if (typeof d === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new InputError(`bad --param ${key}=${raw}: expected a number`);
      if (n < 0) throw new InputError(`bad --param ${key}=${raw}: must not be negative`);
      params[key] = n;
    } else if (typeof d === 'boolean') {
      if (raw !== 'true' && raw !== 'false') throw new InputError(`bad --param ${key}=${raw}: expected true or false`);
      params[key] = raw === 'true';
    } else params[key] = raw;
  }
  return params;
}

/** "0,50,200" -> ascending uptime steps (rounds of the fragmenting workload, lib/mm/uptime.ts). */
export function parseSteps(s: string): number[] {
  const out = s.split(',').map((x) => Number(x.trim()));
  if (out.length === 0 || out.some((x, i) => !Number.isSafeInteger(x) || x < 0 || (i > 0 && x <= out[i - 1]))) {
    throw new ProgramError(`uptimeSteps: want ascending non-negative integers such as "0,50,200", got '${s}'`);
  }
  return out;
}
