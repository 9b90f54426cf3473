/**
 * The simulated call stack shown in splats: a kernel function transcribed as a generator wraps
 * its body with fn(cur, 'name', ...) so reports can print "Call Trace:" as the kernel would.
 */
import type { KernelBody } from './machine';
import type { Task } from './task';

export function* fn<R>(cur: Task, name: string, body: KernelBody<R>): KernelBody<R> {
  const stack = cur.stack;
  stack.push(name);
  const r = yield* body;
  stack.pop();
  return r;
}
