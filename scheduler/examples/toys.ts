/**
 * Small programs that exercise the engine: used by its tests, the demo and the benchmark.
 * Each is a Program; none knows anything of kernels.
 */
import type { Engine } from '../engine';
import type { Program } from '../program';
import { Resource } from '../resource';
import type { Thread } from '../thread';

/** Classic lost update: `threads` threads each do a non-atomic read-modify-write `rounds` times. */
export function lostUpdate(threads = 2, rounds = 1, localNs = 10): Program {
  return {
    name: 'toy-lost-update',
    params: { threads, rounds, localNs },
    setup(sim: Engine) {
      const counter = sim.object('counter');
      const state = { value: 0 };
      sim.world = state;
      for (let i = 0; i < threads; i++) {
        sim.spawn(`inc${i}`, function* (t: Thread) {
          for (let r = 0; r < rounds; r++) {
            if (localNs > 0) yield t.work(localNs);
            yield t.read(counter);
            const v = state.value;
            if (localNs > 0) yield t.work(localNs);
            yield t.write(counter);
            state.value = v + 1;
          }
        });
      }
    },
    finish(sim: Engine) {
      const v = (sim.world as { value: number }).value;
      sim.assert(v === threads * rounds, 'lost-update', `lost update: counter is ${v}, expected ${threads * rounds}`);
    },
  };
}

/** `threads` threads of `steps` visible steps each; records the interleaving in sim.world.order. */
export function grid(threads = 2, steps = 3): Program {
  return {
    name: 'toy-grid',
    params: { threads, steps },
    setup(sim: Engine) {
      const order: number[] = [];
      sim.world = { order };
      const obj = sim.object('x');
      for (let i = 0; i < threads; i++) {
        sim.spawn(`g${i}`, function* (t: Thread) {
          for (let s = 0; s < steps; s++) {
            yield t.write(obj);
            order.push(t.id);
          }
        });
      }
    },
  };
}

/**
 * A depth-2 ordering bug that random walk rarely finds: B must take its first step before A's
 * first, then A must run all `m` steps before B's second. Random walk needs ~2^-m luck; PCT
 * with d = 2 needs B above A and one change point at the right step.
 */
export function depth2(m = 12): Program {
  return {
    name: 'toy-depth2',
    params: { m },
    setup(sim: Engine) {
      const st = { b: 0, seen: 0 };
      sim.world = st;
      const ob = sim.object('b');
      sim.spawn('A', function* (t: Thread) {
        for (let i = 0; i < m; i++) {
          yield t.read(ob);
          if (st.b === 1) st.seen++;
        }
      });
      sim.spawn('B', function* (t: Thread) {
        for (let i = 0; i < m; i++) {
          yield t.write(ob);
          st.b++;
        }
      });
    },
    finish(sim: Engine) {
      const st = sim.world as { seen: number };
      sim.assert(st.seen !== m, 'depth2', `A saw B half-done for all ${m} of its steps`);
    },
  };
}

/**
 * A depth-3 bug: B's first step, then all m of A's first phase, then all of B's remaining
 * steps, then A's second phase (three ordering constraints).
 */
export function depth3(m = 8): Program {
  return {
    name: 'toy-depth3',
    params: { m },
    setup(sim: Engine) {
      const st = { b: 0, phase1: 0, phase2: 0 };
      sim.world = st;
      const ob = sim.object('b');
      sim.spawn('A', function* (t: Thread) {
        for (let i = 0; i < m; i++) {
          yield t.read(ob);
          if (st.b === 1) st.phase1++;
        }
        for (let i = 0; i < m; i++) {
          yield t.read(ob);
          if (st.b === m) st.phase2++;
        }
      });
      sim.spawn('B', function* (t: Thread) {
        for (let i = 0; i < m; i++) {
          yield t.write(ob);
          st.b++;
        }
      });
    },
    finish(sim: Engine) {
      const st = sim.world as { phase1: number; phase2: number };
      sim.assert(!(st.phase1 === m && st.phase2 === m), 'depth3', 'A saw B stopped after one step for its whole first phase and finished for its whole second');
    },
  };
}

/**
 * A thread runs a critical section of `len` visible steps; an interrupt raised just before it
 * starts lands somewhere inside. sim.world.landedAt records the index of the step it hit.
 */
export function irqSpread(len = 40): Program {
  return {
    name: 'toy-irq-spread',
    params: { len },
    setup(sim: Engine) {
      const st = { pos: -1, landedAt: -1 };
      sim.world = st;
      const obj = sim.object('cs');
      const cpu = sim.spawn('cpu0', function* (t: Thread) {
        for (let i = 0; i < len; i++) {
          st.pos = i;
          yield t.write(obj);
        }
        st.pos = len;
      });
      const src = sim.interruptSource({
        name: 'irq0',
        target: cpu,
        *handler(t: Thread) {
          st.landedAt = st.pos;
          yield t.work(100);
        },
      });
      sim.raise(src); // pending before the section's first step
    },
  };
}

/** The benchmark's timed workload: `threads` threads each looping on a random local delay. */
export function timeouts(threads: number, eventsPerThread: number): Program {
  return {
    name: 'toy-timeouts',
    params: { threads, eventsPerThread },
    setup(sim: Engine) {
      const rng = sim.rng;
      for (let i = 0; i < threads; i++) {
        sim.spawn(`p${i}`, function* (t: Thread) {
          for (let k = 0; k < eventsPerThread; k++) yield t.work(1 + rng.int(1000));
        });
      }
    },
  };
}

/** The benchmark's contention workload: `threads` threads cycling through a capacity-`cap` resource. */
export function contention(threads: number, cap: number, cyclesPerThread: number): Program {
  return {
    name: 'toy-contention',
    params: { threads, cap, cyclesPerThread },
    setup(sim: Engine) {
      const res = new Resource(sim, 'res', cap);
      for (let i = 0; i < threads; i++) {
        sim.spawn(`c${i}`, function* (t: Thread) {
          for (let k = 0; k < cyclesPerThread; k++) {
            yield res.acquire(t);
            yield t.work(50);
            yield res.release(t);
            yield t.work(20);
          }
        });
      }
    },
  };
}

/**
 * Everything at once, for determinism tests: a lock (capacity-1 resource) with hand-over, a
 * thread spinning on a flag, an interrupt raised by a timer whose handler sets the flag, a
 * wait queue with a choice of waiter, jitter and an injected fault.
 */
export function mixed(workers = 3, rounds = 2): Program {
  return {
    name: 'toy-mixed',
    params: { workers, rounds },
    setup(sim: Engine) {
      const lock = new Resource(sim, 'lock', 1);
      const flagObj = sim.object('flag');
      const wq = sim.waitable('wq');
      const st = { flag: false, sum: 0, log: [] as string[] };
      sim.world = st;
      for (let i = 0; i < workers; i++) {
        sim.spawn(`w${i}`, function* (t: Thread) {
          for (let r = 0; r < rounds; r++) {
            yield t.work(sim.jitter([10, 20, 40]));
            yield lock.acquire(t);
            st.sum += i;
            yield t.work(30);
            yield lock.release(t);
            if (sim.fault(0.2)) st.log.push(`fault w${i}`);
          }
          yield t.write(flagObj);
          sim.wakeChoice(wq);
        });
      }
      const spinner = sim.spawn('spinner', function* (t: Thread) {
        yield t.spinUntil(() => st.flag);
        yield t.read(flagObj);
        st.log.push(`spinner saw flag at ${t.clock}`);
      });
      for (let i = 0; i < 2; i++) {
        sim.spawn(`sleeper${i}`, function* (t: Thread) {
          yield t.write(flagObj);
          yield t.block(wq);
          st.log.push(`sleeper${i} woke at ${t.clock}`);
        });
      }
      const irq = sim.interruptSource({
        name: 'dev',
        target: spinner,
        *handler(t: Thread) {
          yield t.write(flagObj);
          st.flag = true;
          yield t.work(5);
        },
      });
      sim.timer(25, () => sim.raise(irq), 'dev-timer');
    },
    finish(sim: Engine) {
      const st = sim.world as { sum: number };
      sim.assert(st.sum === (rounds * workers * (workers - 1)) / 2, 'sum', `sum ${st.sum}`);
    },
  };
}

/** A thread that never stops taking visible steps (step budget). */
export function runaway(): Program {
  return {
    name: 'toy-runaway',
    setup(sim: Engine) {
      const o = sim.object('o');
      sim.spawn('loop', function* (t: Thread) {
        for (;;) yield t.write(o);
      });
    },
  };
}

/** A lost wakeup: the waker may run between the sleeper's check and its block (no_progress). */
export function lostWakeup(): Program {
  return {
    name: 'toy-lost-wakeup',
    setup(sim: Engine) {
      const cond = sim.object('cond');
      const wq = sim.waitable('wq');
      const st = { ready: false };
      sim.spawn('sleeper', function* (t: Thread) {
        yield t.read(cond);
        const ready = st.ready;
        yield t.point(); // the window: not atomic with the check
        if (!ready) yield t.block(wq);
      });
      sim.spawn('waker', function* (t: Thread) {
        yield t.write(cond);
        st.ready = true;
        t.wake(wq);
      });
    },
  };
}

/** Builds a toy by name, for parallel hunts (pool.ts's ProgramSource): `{name, args}`. */
export function toyProgram(spec: { name: string; args?: number[] }): Program {
  const toys: Record<string, (...a: number[]) => Program> = { lostUpdate, grid, depth2, depth3, irqSpread, mixed, lostWakeup, runaway };
  const f = toys[spec.name];
  if (f === undefined) throw new Error(`no toy ${spec.name}`);
  return f(...(spec.args ?? []));
}
