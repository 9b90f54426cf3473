/**
 * The model-semantics version: part of every scenario's program hash (lib/scenario/identity.ts),
 * so schedules recorded against an older kernel model are refused as recorded for another
 * program instead of replaying onto different behaviour.
 *
 * Bump it (by one) in the commit that changes what the model DOES on some path: a primitive's
 * steps, costs or choice points (lib/kernel), an allocator's or swiotlb's decisions (lib/mm,
 * lib/dma), a device's timing (lib/devices), a detector's verdict or report text (lib/check),
 * or how a scenario's program is set up (scenarioProgram in lib/scenario/define.ts: the program
 * hash no longer reads its text). Do not bump it for releases, refactors that keep every path, comments, the CLI, reports or
 * tests. The engine's own changes are covered by SCHEDULE_VERSION (scheduler/schedule.ts), and a
 * run that still slips through takes another path and fails the schedule's event hash.
 */
export const MODEL_VERSION = 1;
