import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai, type HuntReport } from '../../lib/testing';
import scenario from '../../scenarios/s08-dyn-list-lookup';

chai.use(irqsimChai);

const key = (r: HuntReport) => ({
  dyn: r.metrics['lookup.steps_per_dyn_lookup'],
  miss: r.metrics['lookup.steps_per_nonbounced_unmap'],
  missNs: r.metrics['lookup.ns_per_nonbounced_unmap'],
  len: r.metrics['swiotlb.index_len_peak'],
});

const perturb = (name: string) => scenario.perturbations!.find((p) => p.name === name)!.params;

describe('scenario S8: per-device index of dynamic buffers, v2 list vs rbtree, by queue depth', function () {
  this.timeout(120_000);

  it('both variants as expected with the defaults (queue depth 1024, 1 timed schedule each), clean', async () => {
    for (const variant of ['buggy', 'fixed']) {
      const r = await hunt(scenario, { variant, seed: 1 });
      expect(r, variant).to.be.asExpected;
      expect(r, variant).to.be.clean;
    }
  });

  it('v2-list: steps per lookup grow linearly with the queue depth (32 -> 1024: >= 20x), rbtree: logarithmically (< 3x), over seeds 1..3', async () => {
    for (const seed of [1, 2, 3]) {
      const at = async (variant: string, params: Partial<typeof scenario.params>) => key(await hunt(scenario, { variant, seed, params }));
      const list32 = await at('buggy', perturb('qd-32'));
      const list1k = await at('buggy', {});
      const tree32 = await at('fixed', perturb('qd-32'));
      const tree1k = await at('fixed', {});
      // the index holds about queue depth x bounced share less what the 1 MiB pool holds (16 x 64 KiB)
      expect(list1k.len, `seed ${seed}`).to.be.within(700, 768);
      expect(tree1k.len, `seed ${seed}`).to.equal(list1k.len);
      expect(list1k.dyn / list32.dyn, `seed ${seed} list growth`).to.be.at.least(20);
      expect(tree1k.dyn / tree32.dyn, `seed ${seed} tree growth`).to.be.below(3);
      // a tree walk is at most 2 log2(n + 1) nodes
      expect(tree1k.dyn, `seed ${seed}`).to.be.at.most(2 * Math.log2(tree1k.len + 1));
      expect(list1k.dyn / tree1k.dyn, `seed ${seed} list vs tree`).to.be.at.least(20);
    }
  });

  it('callers that never bounce: a non-bounced unmap walks the whole list (>= half the peak length, >= 20x the ns of rbtree) at queue depth 1024, over seeds 1..3', async () => {
    for (const seed of [1, 2, 3]) {
      const list = key(await hunt(scenario, { variant: 'buggy', seed }));
      const tree = key(await hunt(scenario, { variant: 'fixed', seed }));
      expect(list.miss, `seed ${seed}`).to.be.at.least(list.len / 2);
      expect(tree.miss, `seed ${seed}`).to.be.at.most(2 * Math.log2(tree.len + 1));
      expect(list.missNs / tree.missNs, `seed ${seed}`).to.be.at.least(20);
    }
  });

  it('perturbations qd-256 and half-bounced keep both verdicts and the list/tree gap (>= 5x)', async () => {
    for (const name of ['qd-256', 'half-bounced']) {
      const b = await hunt(scenario, { variant: 'buggy', seed: 1, params: perturb(name) });
      const f = await hunt(scenario, { variant: 'fixed', seed: 1, params: perturb(name) });
      expect(b, name).to.be.asExpected;
      expect(f, name).to.be.asExpected;
      expect(key(b).dyn / key(f).dyn, name).to.be.at.least(5);
    }
  });
});
