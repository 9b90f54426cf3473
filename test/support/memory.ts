/**
 * Shared by the memory-model suites: a program on a machine with memory. The image is built once
 * (mm_prepare) and restored before every later run, as a scenario's prepare/restore does.
 */
import type { Program } from '../../scheduler';
import type { Machine } from '../../lib/kernel/machine';
import { mm_init, mm_prepare, type IoBackend, type MmOptions } from '../../lib/mm';
import { kernelProgram } from './kernel';

export interface MemProgramOptions extends MmOptions {
  cpus?: number;
  /** Build the swap device on the run's machine (a driver model needs the machine). */
  swapDevice?: (m: Machine) => IoBackend;
}

export function memProgram(name: string, o: MemProgramOptions, build: (m: Machine, log: string[]) => void): Program {
  const { cpus, swapDevice, ...mmo } = o;
  const { image: given, coco: _c, hypercallNs: _h, swap: _s, bdi: _b, kswapd: _k, ...imageOpts } = mmo;
  const image = given ?? mm_prepare(imageOpts);
  let first = true;
  return kernelProgram(name, { cpus: cpus ?? 2 }, (m, log) => {
    if (!first) image.restore();
    first = false;
    mm_init(m, { ...mmo, image, swap: swapDevice ? swapDevice(m) : mmo.swap });
    build(m, log);
  });
}
