/**
 * The finding kinds of docs/contract.md ("Finding kinds"): every kind a detector, the engine or a
 * scenario may report, and so every kind a variant's `expect.findings` / `expect.absent` may
 * name. defineScenario refuses any other name, so a typo cannot make an expectation vacuous.
 */
export const FINDING_KINDS = [
  'might_sleep',
  'lockdep',
  'deadlock',
  'no_progress',
  'stall',
  'hung_task',
  'soft_lockup',
  'ipi_irqs_off',
  'cma_atomic',
  'alloc_failure',
  'swiotlb_full',
  'iommu_map',
  'dma_debug',
  'oom_kill',
  'rcu',
  // KASAN's report of a freed object used (or freed again) where RCU plays no part
  'use_after_free',
  'assertion',
  'step_budget',
  'nondeterminism',
  'scenario_error',
  'internal_error',
] as const;

export type FindingKind = (typeof FINDING_KINDS)[number];

export function isFindingKind(k: string): k is FindingKind {
  return (FINDING_KINDS as readonly string[]).includes(k);
}
