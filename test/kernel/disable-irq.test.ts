/**
 * disable_irq / disable_irq_nosync / enable_irq as kernel/irq does them (v6.12): a disabled line
 * takes an interrupt without running the action and marks it pending (IRQS_PENDING, chip.c's
 * flow handlers); enable_irq replays a pending edge interrupt (resend.c check_irq_resend) but not
 * a level one, which the device re-asserts if it still needs service. A driver that frees its
 * data after disable_irq therefore never has its handler touch freed memory, even for an
 * interrupt raised before the call; and a use-after-free without RCU is KASAN's
 * `use_after_free`, not an `rcu` finding.
 */
import { expect } from 'chai';
import { Engine, makeStrategy, type Finding } from '../../scheduler';
import { IRQF_TRIGGER_HIGH, disable_irq, disable_irq_nosync, enable_irq, irq_set_level_source, raise_irq, request_irq, type IrqLine } from '../../lib/kernel/irq';
import { local_irq_disable, local_irq_enable } from '../../lib/kernel/irqflags';
import { READ_ONCE, kfree, kobject_alloc, type KObject } from '../../lib/kernel/object';
import type { Machine } from '../../lib/kernel/machine';
import { fn } from '../../lib/kernel/stack';
import type { Task } from '../../lib/kernel/task';
import { kernelProgram } from '../support/kernel';

interface Out {
  findings: Finding[];
  handled: number;
}

/**
 * CPU1 keeps IRQs off until CPU0's remove path is done, so an interrupt the device raised
 * before disable_irq is delivered only afterwards. `after` runs on CPU0 once the line is
 * disabled: free the data, or enable the line again.
 */
function run(o: { nosync?: boolean; flags?: number; asserted?: () => boolean; takenWhileDisabled?: boolean; after: (cur: Task, m: Machine, line: IrqLine, data: KObject<{ x: number }>) => Generator<unknown, void, unknown> }): Out {
  let handled = 0;
  const p = kernelProgram('disable-irq', 2, (m) => {
    const data = kobject_alloc(m, 'foo_priv', { x: 1 });
    let irqsOff = false;
    let done = false;
    const line = request_irq(m, 1, 'foo', function* foo_irq(cur) {
      yield* READ_ONCE(cur, data, 'x');
      handled++;
    }, o.flags ?? 0);
    if (o.asserted) irq_set_level_source(line, o.asserted);
    let disabled = false;
    m.kthread('busy', 1, function* (cur) {
      yield* local_irq_disable(cur);
      irqsOff = true;
      // takenWhileDisabled: CPU1 takes the interrupt while the line is disabled (it goes pending)
      yield cur.thread.spinUntil(() => (o.takenWhileDisabled ? disabled : done));
      yield* local_irq_enable(cur);
    });
    m.process('rmmod', 0, function* (cur) {
      yield cur.thread.spinUntil(() => irqsOff);
      yield* fn(cur, 'foo_remove', (function* () {
        raise_irq(m, line); // the device interrupts just before the driver disables the line
        if (o.nosync) yield* disable_irq_nosync(cur, line);
        else yield* disable_irq(cur, line);
        disabled = true;
        if (o.takenWhileDisabled) yield cur.thread.spinUntil(() => line.pendingWhileMasked);
        yield* o.after(cur, m, line, data);
      })());
      done = true;
    });
  });
  const e = new Engine();
  const r = e.run(p, makeStrategy({ strategy: 'dfs' }), 0, 100);
  return { findings: r.findings, handled };
}

describe('disable_irq / enable_irq (lazy disable, IRQS_PENDING, resend)', () => {
  it('an interrupt raised before disable_irq does not run the handler after it: freeing the data is safe', () => {
    for (const nosync of [false, true]) {
      const r = run({ nosync, after: (cur, _m, _l, data) => kfree(cur, data) });
      expect(r.findings.map((f) => f.headline), `nosync=${nosync}`).to.deep.equal([]);
      expect(r.handled).to.equal(0);
    }
  });

  it('enable_irq replays the pending edge interrupt once', () => {
    const r = run({ takenWhileDisabled: true, after: (cur, _m, line) => enable_irq(cur, line) });
    expect(r.findings).to.deep.equal([]);
    expect(r.handled).to.equal(1);
    // without enable_irq the pending interrupt stays pending
    expect(run({ takenWhileDisabled: true, after: function* () {} }).handled).to.equal(0);
  });

  it('a level line is not resent: it fires again only while the device still asserts it', () => {
    let asserted = true;
    const still = run({ flags: IRQF_TRIGGER_HIGH, asserted: () => asserted, takenWhileDisabled: true, after: (cur, _m, line) => enable_irq(cur, line) });
    expect(still.handled).to.equal(1);
    // the device was serviced otherwise (polled) and deasserted the line while it was disabled
    const quiet = run({
      flags: IRQF_TRIGGER_HIGH,
      asserted: () => asserted,
      takenWhileDisabled: true,
      after: function* (cur, _m, line) {
        asserted = false;
        yield* enable_irq(cur, line);
      },
    });
    expect(quiet.handled).to.equal(0);
  });

  it('freeing the data while the line is enabled again is a KASAN use-after-free of kind use_after_free, in KASAN\'s words without an RCU note', () => {
    const r = run({
      after: function* (cur, _m, line, data) {
        yield* kfree(cur, data);
        yield* enable_irq(cur, line); // the replayed interrupt reads the freed data
      },
    });
    expect(r.findings.map((f) => f.kind)).to.deep.equal(['use_after_free']);
    const f = r.findings[0];
    expect(f.subkind).to.equal("kasan");
    expect(f.fingerprint).to.equal('use_after_free:kasan:foo_priv@foo');
    // print_report (mm/kasan/report.c): the bug line, the access line naming the task, the
    // stack, then the allocation and free tracks, then where the address lies in the object
    expect(f.text).to.match(/^={66}\nBUG: KASAN: slab-use-after-free in foo\nRead of size 8 at addr ffff8881[0-9a-f]{8} by task swapper\/1\/0\n/);
    expect(f.text).to.match(/Call Trace:\n <IRQ>\n dump_stack_lvl\n print_report\n kasan_report\n foo\n/);
    expect(f.text).to.match(/\nAllocated by task \d+ on cpu \d+ at [0-9.]+s:\n/);
    expect(f.text).to.match(/\nFreed by task \d+ on cpu 0 at [0-9.]+s:\n kfree\n foo_remove\n/);
    expect(f.text).to.match(/The buggy address is located 0 bytes inside of\n freed 8-byte region \[/);
    expect(f.text).to.not.match(/RCU/);
  });
});
