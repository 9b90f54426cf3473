/**
 * The kernel a scenario models, as one object: a version and the few Kconfig choices that change
 * what the model does or prints. Everything else is derived the way Kconfig derives it, and an
 * impossible combination is refused with one line (the CLI exits 2):
 *
 *  - PREEMPTION (PREEMPT_BUILD) for preempt full or dynamic (kernel/Kconfig.preempt);
 *  - PREEMPT_RCU = TREE_RCU && PREEMPTION (kernel/rcu/Kconfig): so a PREEMPT_DYNAMIC kernel booted
 *    preempt=none still has preemptible RCU, and a voluntary or none build does not (its
 *    rcu_read_lock() is preempt_disable());
 *  - PREEMPT_COUNT: always (DEBUG_ATOMIC_SLEEP, which the might_sleep checks model, selects it);
 *  - DEBUG_PREEMPT depends on PREEMPTION (lib/Kconfig.debug);
 *  - PROVE_RCU is def_bool PROVE_LOCKING (kernel/rcu/Kconfig.debug): it is on exactly when lockdep is;
 *  - PROVE_RAW_LOCK_NESTING depends on PROVE_LOCKING (lib/Kconfig.debug; since v5.8);
 *  - PREEMPT_DYNAMIC exists since v5.12: not on '3.x-arm', which is also 32-bit ARM only.
 */
import { InputError } from '../../scheduler';

/** The kernels the model distinguishes (newest last). */
export const KERNEL_VERSIONS = ['3.x-arm', '6.3', '6.6', '6.8', '6.12'] as const;
export type KernelVersion = (typeof KERNEL_VERSIONS)[number];
export const NEWEST_KERNEL: KernelVersion = '6.12';

export type PreemptConfig = 'none' | 'voluntary' | 'full' | 'dynamic';
export type PreemptionModel = 'none' | 'voluntary' | 'full';

export interface KernelConfigSpec {
  /** CONFIG_PREEMPT_NONE / _VOLUNTARY / PREEMPT, or PREEMPT_DYNAMIC (the mode chosen at boot). */
  preempt?: PreemptConfig;
  /** With preempt 'dynamic': the preempt= boot parameter (default voluntary, as distributions ship). */
  boot?: PreemptionModel;
  /** CONFIG_DEBUG_PREEMPT: "Preemption disabled at:" in sleeping-in-atomic reports. */
  debugPreempt?: boolean;
  /** CONFIG_PROVE_RCU: must equal lockdep (def_bool PROVE_LOCKING); omitted: follows lockdep. */
  proveRcu?: boolean;
  /** CONFIG_PROVE_RAW_LOCK_NESTING: spinlock_t's wait type is LD_WAIT_CONFIG (3), not 2. */
  proveRawLockNesting?: boolean;
}

/** What a scenario declares: `kernel: { version, config }`. */
export interface KernelSpec {
  version?: KernelVersion;
  config?: KernelConfigSpec;
}

/** The derived configuration the Machine carries. */
export interface KernelConfig {
  version: KernelVersion;
  preempt: PreemptConfig;
  /** The preemption model in effect (the boot mode of a dynamic kernel). */
  preemption: PreemptionModel;
  PREEMPTION: boolean;
  PREEMPT_DYNAMIC: boolean;
  PREEMPT_RCU: boolean;
  PREEMPT_COUNT: true;
  DEBUG_PREEMPT: boolean;
  PROVE_LOCKING: boolean;
  PROVE_RCU: boolean;
  PROVE_RAW_LOCK_NESTING: boolean;
}

export function isKernelVersion(v: string): v is KernelVersion {
  return (KERNEL_VERSIONS as readonly string[]).includes(v);
}

/** Version order: '3.x-arm' < '6.3' < ... < '6.12'. */
export function kernelAtLeast(c: { version: KernelVersion }, v: KernelVersion): boolean {
  return KERNEL_VERSIONS.indexOf(c.version) >= KERNEL_VERSIONS.indexOf(v);
}

function bad(msg: string): never {
  throw new InputError(`kernel config: ${msg}`);
}

/**
 * Derive the configuration. `preemption` is the machine's preemption option (a scenario without
 * a `kernel` declaration, or one that sets both: they must agree); `lockdep` is PROVE_LOCKING.
 */
export function deriveKernelConfig(spec: KernelSpec | undefined, machine: { preemption?: PreemptionModel; lockdep: boolean }): KernelConfig {
  const version = spec?.version ?? NEWEST_KERNEL;
  if (!isKernelVersion(version)) bad(`unknown version "${String(version)}": expected ${KERNEL_VERSIONS.join(', ')}`);
  const c = spec?.config ?? {};
  const preempt: PreemptConfig = c.preempt ?? machine.preemption ?? 'voluntary';
  if (!['none', 'voluntary', 'full', 'dynamic'].includes(preempt)) bad(`unknown preempt "${String(preempt)}": expected none, voluntary, full or dynamic`);
  if (c.boot !== undefined && preempt !== 'dynamic') bad(`boot=${c.boot} needs preempt: 'dynamic' (PREEMPT_DYNAMIC), not '${preempt}'`);
  if (preempt === 'dynamic' && version === '3.x-arm') bad(`PREEMPT_DYNAMIC does not exist in ${version} (added in v5.12)`);
  const preemption: PreemptionModel = preempt === 'dynamic' ? (c.boot ?? 'voluntary') : preempt;
  if (machine.preemption !== undefined && machine.preemption !== preemption) bad(`the machine's preemption '${machine.preemption}' contradicts the kernel's preempt '${preempt}'${preempt === 'dynamic' ? ` booted ${preemption}` : ''}`);
  const PREEMPTION = preempt === 'full' || preempt === 'dynamic';
  if (c.debugPreempt === true && !PREEMPTION) bad(`DEBUG_PREEMPT depends on PREEMPTION: preempt '${preempt}' has none (use full or dynamic)`);
  if (c.proveRcu !== undefined && c.proveRcu !== machine.lockdep) bad(`PROVE_RCU is def_bool PROVE_LOCKING: proveRcu ${c.proveRcu} with lockdep ${machine.lockdep ? 'on' : 'off'} is impossible`);
  if (c.proveRawLockNesting === true && !machine.lockdep) bad('PROVE_RAW_LOCK_NESTING depends on PROVE_LOCKING: lockdep is off');
  if (c.proveRawLockNesting === true && version === '3.x-arm') bad(`PROVE_RAW_LOCK_NESTING does not exist in ${version} (added in v5.8)`);
  return {
    version,
    preempt,
    preemption,
    PREEMPTION,
    PREEMPT_DYNAMIC: preempt === 'dynamic',
    PREEMPT_RCU: PREEMPTION,
    PREEMPT_COUNT: true,
    DEBUG_PREEMPT: c.debugPreempt === true,
    PROVE_LOCKING: machine.lockdep,
    PROVE_RCU: machine.lockdep,
    PROVE_RAW_LOCK_NESTING: c.proveRawLockNesting === true,
  };
}
