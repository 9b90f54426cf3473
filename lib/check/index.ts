/** The detectors: each subscribes to the kernel model's hooks and reports findings. */
import type { Machine } from '../kernel/machine';
import { installDeadlockCheck } from './deadlock';
import { installIpiCheck } from './ipi';
import { installMightSleep } from './might-sleep';
import { installRcuCheck } from './rcu';

export { installDeadlockCheck, installIpiCheck, installMightSleep, installRcuCheck };

export function installDetectors(m: Machine): void {
  installMightSleep(m);
  installIpiCheck(m);
  installDeadlockCheck(m);
  installRcuCheck(m);
}
