/**
 * Typed hook payloads (issue 20, item 3): lib/mm and lib/dma merge their records into the
 * kernel's HookPayloads, so a detector's handler gets the record's type. The @ts-expect-error
 * lines are the failing side: `npx tsc --noEmit -p .` rejects this file if a payload went back
 * to `unknown` (the expected error would vanish) or to the wrong record.
 */
import { expect } from 'chai';
import type { HookPayload, KernelHooks } from '../../lib/kernel/hooks';
import type { DmaDebugInfo } from '../../lib/dma/debug';
import type { IommuMapInfo } from '../../lib/dma/iommu';
import type { SwiotlbFullInfo } from '../../lib/dma/swiotlb/map';
import type { CmaAllocInfo } from '../../lib/mm/cma';
import type { OomKillInfo } from '../../lib/mm/oom';
import type { AllocFailureInfo } from '../../lib/mm/page-alloc';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(ok: Equal<A, B>): boolean => ok;

describe('hook payloads (declaration merging from lib/mm and lib/dma)', () => {
  it('each mm/dma hook carries its layer record, not unknown', () => {
    expect(same<HookPayload<'allocFailure'>, AllocFailureInfo>(true)).to.equal(true);
    expect(same<HookPayload<'oomKill'>, OomKillInfo>(true)).to.equal(true);
    expect(same<HookPayload<'cmaAlloc'>, CmaAllocInfo>(true)).to.equal(true);
    expect(same<HookPayload<'swiotlbFull'>, SwiotlbFullInfo>(true)).to.equal(true);
    expect(same<HookPayload<'iommuMap'>, IommuMapInfo>(true)).to.equal(true);
    // The planted mistake: unknown (or another record) is not the payload.
    // @ts-expect-error the allocFailure payload is AllocFailureInfo, not unknown
    expect(same<HookPayload<'allocFailure'>, unknown>(true)).to.equal(true);
    // @ts-expect-error the iommuMap payload is not the swiotlb record
    expect(same<HookPayload<'iommuMap'>, SwiotlbFullInfo>(true)).to.equal(true);
    // A name no layer declares stays unknown.
    expect(same<HookPayload<'noSuchHook'>, unknown>(true)).to.equal(true);
  });

  it('a handler reads the record without a cast, and dmaDebug tells its two records apart by `message`', () => {
    const seen: string[] = [];
    const hooks: KernelHooks = {
      iommuMap(_cur, info) {
        seen.push(`${info.domain}:${info.min_pagesz}`);
      },
      dmaDebug(_cur, info) {
        seen.push('message' in info ? `warn:${info.message}` : `debug:${info.fn}`);
      },
    };
    hooks.iommuMap!(null as never, { domain: 'd', iova: 0, paddr: 0, size: 0x800, min_pagesz: 0x1000 });
    const dbg: DmaDebugInfo = { subkind: 'leak', dev: 'x', text: 't', fn: 'check_unmap', addr: 0, size: 0, entry: null } as DmaDebugInfo;
    hooks.dmaDebug!(null, dbg);
    hooks.dmaDebug!(null, { subkind: 'map_overflow', dev: 'x', message: 'm' });
    expect(seen).to.deep.equal(['d:4096', 'debug:check_unmap', 'warn:m']);
  });
});
