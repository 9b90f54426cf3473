/**
 * Building a step's footprint (choice.ts's Footprint) for partial-order reduction: the keys a
 * step reads and writes. Only strategies that observe steps (DPOR) pay for it; the engine calls
 * these only when an observer is set.
 */
import { fpObject, fpPending, type Footprint } from './choice';
import { NO_OBJECT, OP_ACCESS, OP_ACQUIRE, OP_RELEASE, OP_SPIN } from './ops';
import type { Thread } from './thread';

export function fpReset(fp: Footprint): void {
  fp.all = false;
  fp.len = 0;
}

export function fpAdd(fp: Footprint, key: number, write: number): void {
  if (fp.len === fp.keys.length) {
    const k = new Int32Array(fp.len * 2);
    k.set(fp.keys);
    fp.keys = k;
    const w = new Uint8Array(fp.len * 2);
    w.set(fp.writes);
    fp.writes = w;
  }
  fp.keys[fp.len] = key;
  fp.writes[fp.len++] = write;
}

/** Reads of a predicate: the declared objects, or everything when undeclared (null). */
export function fpReads(fp: Footprint, reads: readonly number[] | null): void {
  if (reads === null) fp.all = true;
  else for (let i = 0; i < reads.length; i++) fpAdd(fp, fpObject(reads[i]), 0);
}

/** What a step declares before it runs: its op's object, spin reads, its pending interrupts. */
export function stepFootprint(fp: Footprint, t: Thread, kind: number): void {
  fpReset(fp);
  // Whether (and which) interrupt lands at this step depends on t's pending set.
  fpAdd(fp, fpPending(t.id), 0);
  for (let i = 0; i < t.pendingIrqs.length; i++) {
    const s = t.pendingIrqs[i];
    if (s.canDeliver !== undefined) fpReads(fp, s.reads);
  }
  if (kind === OP_ACCESS) {
    if (t.opA !== NO_OBJECT) fpAdd(fp, fpObject(t.opA), t.opB === 1 ? 1 : 0);
  } else if (kind === OP_ACQUIRE || kind === OP_RELEASE) {
    fpAdd(fp, fpObject(t.opA), 1);
  } else if (kind === OP_SPIN) {
    fpReads(fp, t.opReads);
  }
}
