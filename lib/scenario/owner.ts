/**
 * Whose schedule is this? A replay whose program hash does not match the variant it is run on
 * may belong to another variant or scenario of the catalog: this finds which, so the message can
 * name it instead of suggesting --continue. It loads every catalog file and hashes every
 * variant (with the default parameters and each declared perturbation), so it runs only on a
 * mismatch.
 */
import { decodeSchedule, engineOptions, programHash } from '../../scheduler';
import { scenarioProgram, type ScenarioDef } from './define';
import { variantHuntOptions } from './hunt';
import { scenarioCatalog } from './registry';

export interface ScheduleOwner {
  id: string;
  variant: string;
  file: string;
  /** The perturbation whose parameters the schedule was hunted with (--perturb), if any. */
  perturbation?: string;
}

/**
 * The catalog's variant whose program (default parameters, or a declared perturbation's, with
 * the variant's own hunt options) hashes to `hash`; null when none does (the file, the model,
 * --param, --lockdep or an engine option changed since it was recorded). `defs` defaults to the
 * catalog (broken files skipped).
 */
export function scheduleOwner(hash: string, defs: readonly ScenarioDef[] = scenarioCatalog().scenarios): ScheduleOwner | null {
  for (const def of defs) {
    const settings: { params: ScenarioDef['params']; perturbation?: string }[] = [
      { params: def.params },
      ...(def.perturbations ?? []).map((p) => ({ params: { ...def.params, ...p.params } as ScenarioDef['params'], perturbation: p.name })),
    ];
    for (const v of def.variants) {
      const eopts = engineOptions({ ...variantHuntOptions(def, v), instrument: false });
      for (const s of settings) {
        let h: string;
        try {
          h = programHash(scenarioProgram(def, v.name, s.params), eopts);
        } catch {
          continue; // a perturbation the variant's machine refuses
        }
        if (h === hash) return { id: def.id, variant: v.name, file: def.file ?? '', ...(s.perturbation !== undefined ? { perturbation: s.perturbation } : {}) };
      }
    }
  }
  return null;
}

/**
 * The sentence a program-hash mismatch on replay should end with: where the schedule belongs
 * (and the command that replays it there), or null when no catalog variant owns it, in which
 * case --continue is the right advice. `current` is the scenario and variant it was run on.
 */
export function ownerHint(schedule: string, current: { id: string; variant: string }, defs?: readonly ScenarioDef[]): string | null {
  let hash: string;
  try {
    hash = decodeSchedule(schedule).hash;
  } catch {
    return null;
  }
  const o = scheduleOwner(hash, defs);
  if (o === null) return null;
  const where = `${o.id}/${o.variant}${o.perturbation !== undefined ? ` with --perturb ${o.perturbation}` : ' with its default parameters'}`;
  const cmd = `npx irqsim replay ${o.id} ${schedule.trim()} --variant ${o.variant}${o.perturbation !== undefined ? ` --perturb ${o.perturbation}` : ''}`;
  const file = o.file ? ` (${o.file})` : '';
  // the same variant: it was run with other parameters or machine options than it was recorded with
  const head = o.id === current.id && o.variant === current.variant ? `it was recorded for ${where}${file}` : `this schedule belongs to ${where}${file}, not ${current.id}/${current.variant}`;
  return `${head}: replay it with ${cmd}`;
}
