/** The detectors: each subscribes to the kernel model's hooks and reports findings. */
import type { Machine } from '../kernel/machine';
import { installDeadlockCheck } from './deadlock';
import { installIpiCheck } from './ipi';
import { installMightSleep } from './might-sleep';

export { installDeadlockCheck, installIpiCheck, installMightSleep };

export function installDetectors(m: Machine): void {
  installMightSleep(m);
  installIpiCheck(m);
  installDeadlockCheck(m);
}
