/**
 * Iterative bounding (CHESS's iterative context bounding; Musuvathi, Qadeer, PLDI 2007): bounded
 * DFS at bound 0, then 1, 2, ... until a run has a finding or a bound's tree is the whole tree
 * (no alternative was left out for the bound). A hunt that stops at its first finding then
 * stops at the smallest bound where the bug appears, and `bound` says which. The bound is on
 * preemptions ('ipb') or on delays ('idb', delay bounding; see Dfs).
 *
 * Each round repeats the paths of the rounds below it (stateless, as CHESS does).
 */
import type { ChoiceView, Strategy } from '../choice';
import { Dfs } from './dfs';

export class IterativeBounding implements Strategy {
  readonly name: string;
  private dfs: Dfs;
  private complete = false;
  /** The bound of the round in progress (after a finding: the smallest bound that has it). */
  bound = 0;
  /** Runs per finished round. */
  readonly rounds: number[] = [];
  private runsThisRound = 0;

  constructor(
    readonly kind: 'preemption' | 'delay',
    readonly irqBound = Infinity,
    readonly maxBound = 64,
  ) {
    this.name = kind === 'preemption' ? 'ipb' : 'idb';
    this.dfs = this.make(0);
  }

  private make(b: number): Dfs {
    return this.kind === 'preemption' ? new Dfs(b, this.irqBound) : new Dfs(Infinity, Infinity, b);
  }

  get divergences(): number {
    return this.dfs.divergences;
  }

  begin(seed: number, expected: number): void {
    this.dfs.begin(seed, expected);
  }

  choose(kind: number, ids: Int32Array, n: number, def: number, view: ChoiceView, w: Float64Array | null): number {
    return this.dfs.choose(kind, ids, n, def, view, w);
  }

  notePending(src: number, view: ChoiceView): void {
    this.dfs.notePending(src, view);
  }

  end(steps: number): void {
    this.dfs.end(steps);
    this.runsThisRound++;
    if (!this.dfs.exhausted()) return;
    this.rounds.push(this.runsThisRound);
    this.runsThisRound = 0;
    if (this.dfs.cutByBound === 0 || this.bound >= this.maxBound) {
      this.complete = true;
      return;
    }
    this.bound++;
    this.dfs = this.make(this.bound);
  }

  exhausted(): boolean {
    return this.complete;
  }
}
