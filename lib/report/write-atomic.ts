/**
 * The one way irqsim writes an output file (results, HTML, traces): whole, to a temporary file
 * renamed over the target, so a reader (or a run killed mid-write) never sees half a file. A
 * file that cannot be written (no such folder, a folder in its place) is bad input: one line,
 * exit code 2, never an internal error.
 */
import { renameSync, statSync, unlinkSync, writeFileSync } from 'fs';
import { InputError } from '../../scheduler';

function cannotWrite(file: string, e: unknown): InputError {
  return new InputError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
}

export function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was created
    }
    throw cannotWrite(file, e);
  }
}

/** Fails before a long run, not after it, when `file` cannot be written. */
export function checkWritable(file: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw Object.assign(new Error(), { code: 'EISDIR' });
    writeFileSync(tmp, '');
    unlinkSync(tmp);
  } catch (e) {
    throw cannotWrite(file, e);
  }
}
