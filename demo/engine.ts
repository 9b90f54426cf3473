/**
 * npm run demo:engine — the engine on its own, without the kernel model: a race between a thread
 * and an interrupt handler found by a seeded hunt, shrunk to the choices that matter, replayed
 * with the event log on, and the fix checked exhaustively.
 */
import { decodeSchedule, describeDeviation, hunt, replay, shrinkSchedule, type Program, type Thread } from '../scheduler';

/**
 * A driver keeps an in-flight counter. The submit path does a read-modify-write of it; the
 * completion interrupt decrements it. Without masking the interrupt around the update, the
 * interrupt can land between the read and the write and its decrement is lost.
 */
function inflightCounter(maskIrq: boolean): Program {
  return {
    name: `demo-inflight-${maskIrq ? 'fixed' : 'buggy'}`,
    params: { maskIrq, requests: 3 },
    setup(sim) {
      const counter = sim.object('inflight');
      const st = { inflight: 0, completed: 0 };
      sim.world = st;
      const cpu = sim.spawn('submit', function* (t: Thread) {
        for (let i = 0; i < 3; i++) {
          yield t.work(200); // build the request
          if (maskIrq) t.interruptible = false; // local_irq_save
          yield t.read(counter);
          const v = st.inflight;
          yield t.work(20);
          yield t.write(counter);
          st.inflight = v + 1;
          if (maskIrq) {
            t.interruptible = true; // local_irq_restore
            yield t.point();
          }
          sim.after(150, () => sim.raise(done), 'device'); // the device completes while the next request is built
        }
      });
      const done = sim.interruptSource({
        name: 'completion',
        target: cpu,
        *handler(t: Thread) {
          yield t.read(counter);
          const v = st.inflight;
          yield t.write(counter);
          st.inflight = v - 1;
          st.completed++;
        },
      });
    },
    finish(sim) {
      const st = sim.world as { inflight: number; completed: number };
      sim.assert(st.inflight === 3 - st.completed, 'inflight', `in-flight counter is ${st.inflight} after ${st.completed} completions of 3 requests`);
    },
  };
}

function line(s = ''): void {
  process.stdout.write(`${s}\n`);
}

const buggy = inflightCounter(false);
line('irqsim engine demo: a thread and its completion interrupt race on a counter\n');
const h = hunt(buggy, { strategy: 'random', seed: 1, iterations: 1000 });
if (h.findings.length === 0) {
  line('no finding (unexpected)');
  process.exit(1);
}
const f = h.findings[0];
line(`hunt: random walk, seed 1: found after ${h.schedulesRun} schedule(s) (iteration ${f.iteration})`);
line(`  ${f.kind}: ${f.headline}`);
line(`  schedule: ${f.schedule} (${decodeSchedule(f.schedule).devs.length} deviations from the default order)`);

const s = shrinkSchedule(buggy, f.schedule, f.fingerprint);
line(`\nshrink: ${s.before} -> ${s.after} deviation(s) in ${s.runs} replays`);
line(`  shrunk:   ${s.schedule}`);
for (const d of decodeSchedule(s.schedule).devs) line(`    ${describeDeviation(d)}  (ids: thread 0 = submit, interrupt source 0 = completion)`);

const r = replay(buggy, s.schedule);
line('\nreplay of the shrunk schedule (event log):');
for (const e of r.events!) line(`  ${e}`);
line(`  => ${r.findings.map((x) => `${x.kind}: ${x.headline}`).join('; ')}`);

const fixed = inflightCounter(true);
const proof = hunt(fixed, { strategy: 'dfs', iterations: 100_000, stopAtFirst: false });
line(`\nreplay it yourself: replay(program, '${s.schedule}')`);
line(`\nfixed (interrupts masked around the update): DFS explored ${proof.schedulesRun} schedule(s)${proof.exhausted ? ', the whole tree' : ''}: ${proof.findings.length === 0 ? 'clean' : `${proof.findings.length} finding(s)`}`);
const rnd = hunt(fixed, { strategy: 'pct', seed: 1, iterations: 2000, stopAtFirst: false });
line(`fixed under PCT(d=3), 2000 schedules: ${rnd.findings.length === 0 ? 'clean' : `${rnd.findings.length} finding(s)`}`);

process.exit(proof.findings.length === 0 && rnd.findings.length === 0 ? 0 : 1);
