/**
 * Operation codes a thread hands the engine with `yield`. A thread's methods (t.work, t.read,
 * t.block, ...) write the operation into the thread's op register and return OP; the engine
 * reads the register after the generator yields. This keeps the hot path free of per-step
 * allocation. Always `yield` the value right away: `yield t.work(10)`.
 */

/** The token every op method returns; a thread that yields anything else is malformed. */
export const OP: unique symbol = Symbol('irqsim.op');
export type Op = typeof OP;

// Ops a thread yields.
export const OP_WORK = 1; // local work for opA ns: invisible, never a scheduling point in interleave mode
export const OP_ACCESS = 2; // visible operation on shared object opA (opB = 1 for write)
export const OP_BLOCK = 3; // block on waitable opObj until woken (processed at once, not a choice)
export const OP_SPIN = 4; // spin until predicate opObj() holds (blocked-on-predicate, no busy steps)
// 5 was a retry marker no strategy read; left unused so the other codes (mixed into the event
// hash) keep their values.

// Pending states the engine sets itself (never yielded).
export const P_RESUME = 6; // woken from a block: continue when scheduled (visible)
export const P_CONT = 7; // timed mode: continue after local work (invisible, no choice)
export const P_EXIT = 8; // body finished but an interrupt is still due on this thread

// Native counting-resource ops (see resource.ts): visible steps with no helper generator.
export const OP_ACQUIRE = 9; // take a unit of resource opObj, or queue for the hand-over
export const OP_RELEASE = 10; // hand the unit to the first waiter, or give it back

// A spawned thread's first step: its body runs to its first op (never inside the spawner's step).
export const P_START = 11;

export const OP_NAMES = ['', 'work', 'access', 'block', 'spin', '', 'resume', 'cont', 'exit', 'acquire', 'release', 'start'];

/** Object id used by t.point(): a scheduling point that touches nothing. */
export const NO_OBJECT = -1;
