/**
 * The frame a report blames: the innermost transcribed frame that is not the reporting
 * subsystem's own (the allocator's, the DMA API's, the function that warned), as the kernel's
 * WARN lines name the caller (%pS of the return address); the context's name when every frame
 * is the subsystem's.
 */
import type { Task } from '../kernel/task';

export function callerOf(cur: Task, own: (frame: string) => boolean): string {
  const s = cur.stack;
  for (let i = s.length - 1; i >= 0; i--) if (!own(s[i])) return s[i];
  return cur.context;
}
