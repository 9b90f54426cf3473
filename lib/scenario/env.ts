/**
 * IRQSIM_SEED and IRQSIM_ITERATIONS: a hunt seen in CI reruns locally by setting one variable.
 * The CLI and the mocha helper both read them here (flags and explicit options win over them).
 */
import { InputError, checkPositiveInt, checkSeed } from '../../scheduler';

/** IRQSIM_SEED and IRQSIM_ITERATIONS, checked as the flags are (a bad value is a one-line error). */
export function envHuntOverrides(env: NodeJS.ProcessEnv = process.env): { seed?: number; iterations?: number } {
  const out: { seed?: number; iterations?: number } = {};
  const seed = env.IRQSIM_SEED;
  const it = env.IRQSIM_ITERATIONS;
  if (seed !== undefined && seed !== '') {
    try {
      out.seed = checkSeed(seed);
    } catch (e) {
      throw new InputError(`IRQSIM_SEED: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (it !== undefined && it !== '') {
    try {
      out.iterations = checkPositiveInt(it, 'iteration count');
    } catch (e) {
      throw new InputError(`IRQSIM_ITERATIONS: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return out;
}
