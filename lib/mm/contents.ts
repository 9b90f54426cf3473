/**
 * What memory holds, for the tests that care (bounce round trips, DMA-API data checks): a
 * sparse byte store over physical addresses, one 4 KiB chunk per touched chunk, created only
 * when a scenario or test asks for it (phys_contents_enable). Without it the model tracks where
 * data goes and what copying costs, never the bytes. Reads of untouched memory return zeros.
 */
import type { Machine } from '../kernel/machine';

const CHUNK_SHIFT = 12;
const CHUNK = 1 << CHUNK_SHIFT;

export class PhysContents {
  private readonly chunks = new Map<number, Uint8Array>();

  private chunk(idx: number, create: boolean): Uint8Array | undefined {
    let c = this.chunks.get(idx);
    if (c === undefined && create) {
      c = new Uint8Array(CHUNK);
      this.chunks.set(idx, c);
    }
    return c;
  }

  write(addr: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const a = addr + done;
      const idx = Math.floor(a / CHUNK);
      const off = a - idx * CHUNK;
      const n = Math.min(CHUNK - off, bytes.length - done);
      this.chunk(idx, true)!.set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const idx = Math.floor(a / CHUNK);
      const off = a - idx * CHUNK;
      const n = Math.min(CHUNK - off, len - done);
      const c = this.chunk(idx, false);
      if (c !== undefined) out.set(c.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  fill(addr: number, len: number, value: number): void {
    this.write(addr, new Uint8Array(len).fill(value));
  }

  /** memcpy between physical ranges (they may overlap only if identical). */
  copy(dst: number, src: number, len: number): void {
    if (len <= 0 || dst === src) return;
    this.write(dst, this.read(src, len));
  }

  /** Chunks touched (a footprint figure). */
  get touched(): number {
    return this.chunks.size;
  }
}

const stores = new WeakMap<Machine, PhysContents>();

/** Track memory contents on this machine from now on (idempotent). */
export function phys_contents_enable(m: Machine): PhysContents {
  let s = stores.get(m);
  if (s === undefined) {
    s = new PhysContents();
    stores.set(m, s);
  }
  return s;
}

/** The machine's contents store, or null when contents are not tracked. */
export function phys_contents(m: Machine): PhysContents | null {
  return stores.get(m) ?? null;
}
