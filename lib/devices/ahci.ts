/**
 * An AHCI SATA controller with one disk (drivers/ata/ahci.c + libata, as far as DMA sees it): the
 * block device Tesarik measured his v2 series on (a QEMU SATA drive), and one without a
 * min_align_mask, so the per-mapping designs of 2023 serve it (NVMe's 0xfff makes swiotlb_dyn_map
 * refuse every NVMe mapping). One port behind the SCSI midlayer is one blk-mq hardware queue with
 * NCQ's 32 tags and one interrupt vector. ata_scsi_queuecmd takes ap->lock with
 * spin_lock_irqsave and ata_qc_issue -> ata_sg_setup maps the scatterlist (dma_map_sg) under it,
 * so mappings are made with IRQs off; the interrupt handler (ahci_single_level_irq_intr ->
 * ahci_handle_port_interrupt) completes commands under the same lock, and ata_qc_complete ->
 * ata_sg_clean unmaps them there, in hardirq context.
 *
 * The queue, the device's service model (latency plus transfer time), swap I/O and fio are those
 * of the NVMe driver shape (nvme.ts), with AHCI's hardware description.
 *
 * Simplified: no SCSI command translation or error handling; the midlayer's completion softirq is
 * folded into the handler (the unmap, which is what DMA sees, happens in the handler upstream too);
 * the device is 64-bit capable (CAP.S64A, as QEMU's ICH9 AHCI); segments are at most 64 KiB.
 */
import type { Machine } from '../kernel/machine';
import { M_REQUEUES } from './block';
import { M_NVME_MAP_FAILURES, NvmeDevice, type NvmeOptions, type StorageHw } from './nvme';

/** AHCI: no min_align_mask, one port = one queue of NCQ depth 32, ap->lock around submission and completion. */
export const AHCI_HW: StorageHw = {
  driver: 'ahci',
  name: 'ata1',
  minAlignMask: 0,
  queues: () => 1,
  depth: 32,
  maxDepth: 32,
  completions: ['hardirq'],
  hostLock: 'ap->lock',
  fns: { queue: 'ata_scsi_queuecmd', map: 'ata_qc_issue', complete: 'ata_qc_complete', irq: 'ahci_single_level_irq_intr' },
};

export type AhciOptions = Omit<NvmeOptions, 'queues' | 'completion' | 'irqCpu'>;

export class AhciDevice extends NvmeDevice {
  constructor(m: Machine, o: AhciOptions = {}) {
    super(m, o, AHCI_HW);
  }
}

/** ahci_init_one: the controller and its port. Needs dma_init first. */
export function ahci_probe(m: Machine, o: AhciOptions = {}): AhciDevice {
  const dev = new AhciDevice(m, o);
  // the device's statistics exist from probe on, so a run without failures reports a zero
  m.sim.count(M_NVME_MAP_FAILURES, 0);
  m.sim.count(M_REQUEUES, 0);
  return dev;
}
