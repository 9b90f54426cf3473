/**
 * Crashes are findings. An exception escaping a run (a TypeError in model code, an op the
 * engine refuses, a throw in a timer) ends that run with a fatal finding of kind
 * `internal_error` — the innermost frame outside the engine is in the tool's own model (the
 * directories the layer above names as internal) — or `scenario_error` — it is anywhere else:
 * the user's scenario. The hunt records it with its schedule and goes on.
 */
import { dirname, relative, sep } from 'path';
import { ProgramError } from './errors';
import type { FindingInput } from './finding';
import type { Thread } from './thread';

/** The engine refused an op a thread issued: the crash belongs to the code that issued it. */
export class OpError extends ProgramError {
  constructor(
    readonly thread: Thread,
    message: string,
  ) {
    super(message);
    this.name = 'ProgramError';
  }
}

const ENGINE_DIR = __dirname;
const ROOT = dirname(ENGINE_DIR);

interface Frame {
  fn: string;
  file: string;
  line: number;
  col: number;
}

/** Parse V8's "    at fn (file:line:col)" / "    at file:line:col" lines. */
export function stackFrames(stack: string | undefined): Frame[] {
  if (!stack) return [];
  const out: Frame[] = [];
  for (const raw of stack.split('\n')) {
    const line = raw.trim();
    if (!line.startsWith('at ')) continue;
    let m = /^at (.*?) \((.*):(\d+):(\d+)\)$/.exec(line);
    if (m) {
      out.push({ fn: m[1], file: m[2], line: +m[3], col: +m[4] });
      continue;
    }
    m = /^at (.*):(\d+):(\d+)$/.exec(line);
    if (m) out.push({ fn: '<anonymous>', file: m[1], line: +m[2], col: +m[3] });
  }
  return out;
}

function isEngine(file: string): boolean {
  return file.startsWith(ENGINE_DIR + sep) && !file.includes(`${sep}examples${sep}`);
}

function isNode(file: string): boolean {
  return file.startsWith('node:') || file.includes(`${sep}node_modules${sep}`) || !file.includes(sep);
}

/**
 * Frames that are the program's: not the engine's own, not Node's or a dependency's, and only
 * the innermost stretch of them: past the engine frame that ran the step come the frames of
 * whoever called the engine (the CLI, a test, a worker thread), which differ between callers
 * of the same run and would make the finding's text depend on them.
 */
function programFrames(frames: Frame[]): Frame[] {
  let i = 0;
  while (i < frames.length && (isEngine(frames[i].file) || isNode(frames[i].file))) i++;
  const out: Frame[] = [];
  for (; i < frames.length && !isEngine(frames[i].file); i++) if (!isNode(frames[i].file)) out.push(frames[i]);
  return out;
}

function rel(file: string): string {
  const r = relative(ROOT, file);
  return r.startsWith('..') ? file : r.split(sep).join('/');
}

const internalRoots: string[] = [];

/**
 * The layer above names the directory of its model (lib/) once, at load: a crash whose
 * innermost program frame lies there is the tool's own bug.
 */
export function registerInternalRoot(dir: string): void {
  if (!internalRoots.includes(dir)) internalRoots.push(dir);
}

export interface CrashContext {
  /** Thread whose step threw, or null (setup, a timer). */
  thread: string | null;
  step: number;
  /** Where the op the engine refused was issued (OpError), when known. */
  site: Error | null;
  internalRoots: readonly string[];
}

/** The finding for an exception that escaped a run. */
export function crashFinding(e: unknown, ctx: CrashContext): FindingInput {
  const err = e instanceof Error ? e : new Error(String(e));
  const ownFrames = programFrames(stackFrames(err.stack));
  // An op the engine refused: the frames that matter are the issuer's (the op's site).
  const frames = ctx.site !== null ? programFrames(stackFrames(ctx.site.stack)) : ownFrames;
  const roots = [...internalRoots, ...ctx.internalRoots];
  const inModel = (f: Frame): boolean => roots.some((r) => f.file.startsWith(r.endsWith(sep) ? r : r + sep));
  // A ProgramError the model throws on purpose (kmalloc(-1), a bad option) is the model
  // refusing its caller: it belongs to the innermost frame outside the model, when there is
  // one. Anything else (a TypeError in model code, an op the engine refused) belongs to the
  // innermost frame that threw or issued the op.
  const refusal = ctx.site === null && err instanceof ProgramError && !(err instanceof OpError);
  const inner = (refusal ? frames.find((f) => !inModel(f)) : undefined) ?? frames[0];
  const internal = inner === undefined || inModel(inner);
  const kind = internal ? 'internal_error' : 'scenario_error';
  const name = err.name || 'Error';
  const message = (err.message.split('\n')[0] ?? '').trim();
  const where = inner !== undefined ? `${rel(inner.file)}:${inner.line}` : 'engine';
  // The fingerprint leaves out step numbers and times: the same bug on a shrunk schedule.
  const stable = message.replace(/\bstep \d+\b/g, 'step N').replace(/\d+(\.\d+)?\s*ns\b/g, 'N ns');
  const who = ctx.thread !== null ? `thread ${ctx.thread}` : 'setup or a timer';
  const lines = (frames.length > 0 ? frames : ownFrames).slice(0, 12).map((f) => `    at ${f.fn} (${rel(f.file)}:${f.line}:${f.col})`);
  const headline = internal ? `irqsim internal error: ${name}: ${message} (${where})` : `scenario error: ${name}: ${message} (${where})`;
  const text = [
    internal
      ? `irqsim internal error (a bug in irqsim's model, not a kernel finding): ${who} at step ${ctx.step}`
      : `scenario error (an exception in the scenario's code): ${who} at step ${ctx.step}`,
    `${name}: ${err.message}`,
    ...lines,
  ].join('\n');
  return {
    kind,
    fingerprint: `${kind}:${name}:${stable}@${where}`,
    headline,
    text,
    fatal: true,
    data: { stack: lines.join('\n') },
  };
}
