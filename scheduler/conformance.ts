/**
 * Conformance mode (a debug check, slow): model state registered with `sim.shared()` is proxied,
 * and any access to it outside a step that declared its object (or while holding its guard)
 * throws, naming the object and the step. Proves every shared effect is a step.
 */
import { ProgramError } from './errors';
import { NO_OBJECT } from './ops';
import { STEP_NONE, STEP_TIMER, type ExecutionState } from './state';

export function conformanceProxy<T extends object>(sim: ExecutionState, obj: number, target: T, guard?: () => boolean): T {
  const check = (key: PropertyKey, write: boolean): void => {
    const s = sim.stepObj;
    if (s === obj || s === STEP_NONE || s === STEP_TIMER) return;
    for (let i = 0; i < sim.alsoLen; i++) if (sim.alsoObjs[i] === obj) return;
    if (guard !== undefined && guard()) return;
    const who = sim.exec !== null ? `thread ${sim.exec.name}` : 'no thread';
    const declared = s === NO_OBJECT ? 'no object' : sim.objectName(s);
    throw new ProgramError(
      `conformance: ${write ? 'write of' : 'read of'} ${sim.objectName(obj)}.${String(key)} by ${who} at step ${sim.step}, in a step that declared ${declared}: every shared effect must be a visible op on its object`,
    );
  };
  return new Proxy(target, {
    get(t, key, recv) {
      if (typeof key === 'string') check(key, false);
      return Reflect.get(t, key, recv);
    },
    set(t, key, v, recv) {
      check(key, true);
      return Reflect.set(t, key, v, recv);
    },
  });
}
