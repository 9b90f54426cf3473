/**
 * S9 under the 6.6 and 6.12 swiotlb profiles (issue 19, item 3): both run, and the lookups a
 * bounced unmap costs fall from 4 to 2 in the direction v6.12's "pool passed down" change
 * explains (swiotlb_find_pool once per dma_* call instead of once per helper: is_swiotlb_buffer
 * in the sync and the unmap, swiotlb_del_transient, swiotlb_release_slots). NVMe writes are
 * DMA_TO_DEVICE, so the sync does not bounce: 4 in v6.6, not 5.
 */
import * as chai from 'chai';
import { expect } from 'chai';
import { hunt, irqsimChai } from '../../lib/testing';
import scenario from '../../scenarios/s09-chunked-growth-burst';

chai.use(irqsimChai);

describe('kernel profiles: S9 under 6.6 and 6.12', function () {
  this.timeout(180_000);

  const perUnmap = (m: Record<string, number>, what: string) => m[what] / m['swiotlb.unmaps'];

  it('both profiles run every variant as declared; swiotlb_find_pool calls per unmap: 4 (6.6) -> 2 (6.12), lookup steps halve', async () => {
    const got: Record<string, Record<string, number>> = {};
    for (const kernel of ['6.6', '6.12']) {
      for (const variant of ['buggy', 'fixed']) {
        const r = await hunt(scenario, { variant, seed: 0, params: { kernel } });
        expect(r, `${kernel}/${variant}`).to.be.asExpected;
        got[`${kernel}/${variant}`] = r.metrics;
      }
    }
    for (const variant of ['buggy', 'fixed']) {
      expect(perUnmap(got[`6.6/${variant}`], 'swiotlb.find_calls'), variant).to.equal(4);
      expect(perUnmap(got[`6.12/${variant}`], 'swiotlb.find_calls'), variant).to.equal(2);
      expect(perUnmap(got[`6.12/${variant}`], 'swiotlb.lookup_steps'), variant).to.be.below(0.6 * perUnmap(got[`6.6/${variant}`], 'swiotlb.lookup_steps'));
    }
  });

  it('an unknown kernel version is a one-line error; upstream on 6.3 (no CONFIG_SWIOTLB_DYNAMIC) is refused', async () => {
    let err = '';
    try {
      await hunt(scenario, { variant: 'fixed', seed: 0, iterations: 1, params: { kernel: '6.7' } });
    } catch (e) {
      err = String(e);
    }
    expect(err).to.match(/unknown version "6.7": expected 3.x-arm, 6.3, 6.6, 6.8, 6.12/);
    err = '';
    try {
      await hunt(scenario, { variant: 'fixed', seed: 0, iterations: 1, params: { kernel: '6.3' } });
    } catch (e) {
      err = String(e);
    }
    expect(err).to.match(/first in v6.6/);
  });
});
