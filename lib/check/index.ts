/** The detectors: each subscribes to the kernel model's hooks and reports findings. */
import type { Machine } from '../kernel/machine';
import { installAllocCheck } from './alloc';
import { installCmaCheck } from './cma';
import { installCoverage } from './coverage';
import { installDmaCheck } from './dma';
import { installDeadlockCheck } from './deadlock';
import { installIpiCheck } from './ipi';
import { installIdleScheduleCheck } from './idle';
import { installMightSleep } from './might-sleep';
import { installLockdep } from './lockdep';
import { installRcuCheck } from './rcu';
import { installWatchdogs } from './watchdog';

export { installAllocCheck, installCmaCheck, installCoverage, installDmaCheck, installDeadlockCheck, installIpiCheck, installLockdep, installMightSleep, installRcuCheck, installWatchdogs };

export function installDetectors(m: Machine): void {
  installMightSleep(m);
  installIdleScheduleCheck(m);
  installIpiCheck(m);
  installDeadlockCheck(m);
  installRcuCheck(m);
  installAllocCheck(m); // findings only from a machine with a memory model (lib/mm)
  installCmaCheck(m);
  installDmaCheck(m); // swiotlb_full, dma_debug, iommu_map: only from a machine with a DMA layer
  installLockdep(m); // only when the machine has lockdep on
  installWatchdogs(m); // only in timed mode or under a fair strategy
  installCoverage(m); // hunt coverage (lock orders, IRQs while holding, interleaving class): reports nothing
}
