/**
 * RCU read side: rcu_read_lock/unlock count the reader's nesting (PREEMPT_RCU style, so
 * might_sleep reports "RCU nest depth"). Grace periods (synchronize_rcu, call_rcu) and the
 * use-after-free checker come with the RCU detector.
 */
import type { Task } from './task';

export function* rcu_read_lock(cur: Task): Generator<unknown, void, unknown> {
  cur.rcu_read_depth++;
}

export function* rcu_read_unlock(cur: Task): Generator<unknown, void, unknown> {
  if (cur.rcu_read_depth > 0) cur.rcu_read_depth--;
}
