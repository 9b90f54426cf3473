/**
 * A USB mass-storage disk behind an xHCI host controller (drivers/usb/storage + usbcore, as far as
 * DMA sees it): a swap device without a min_align_mask whose mappings are made in process
 * context. usb-storage hands each SCSI command to its worker thread (usb_stor_control_thread),
 * which submits the URBs; usb_hcd_submit_urb -> usb_hcd_map_urb_for_dma maps the scatterlist
 * there, with IRQs on and no spinlock held - the one kind of block path where a driver could pass
 * DMA_ATTR_MAY_SLEEP (libata maps under ap->lock with IRQs off, NVMe from blk-mq dispatch under
 * RCU). The host controller completes URBs in its BH (HCD_BH: usb_giveback_urb_bh, a softirq),
 * where unmap_urb_for_dma unmaps them. usb-storage runs one command at a time (can_queue 1).
 *
 * The queue, service model, swap I/O and fio are those of the NVMe driver shape (nvme.ts), with
 * this hardware description.
 *
 * Simplified: the worker thread is folded into the submitter (the mapping runs in the
 * submitting task, which is process context as the worker's is); bulk-only transport without
 * UAS; one URB per command; no resets.
 */
import type { Machine } from '../kernel/machine';
import { M_REQUEUES } from './block';
import { M_NVME_MAP_FAILURES, NvmeDevice, type NvmeOptions, type StorageHw } from './nvme';

/** usb-storage: no min_align_mask, one command at a time, mapped in process context, unmapped in the HCD's BH. */
export const USB_STORAGE_HW: StorageHw = {
  driver: 'usb-storage',
  name: 'sda',
  minAlignMask: 0,
  queues: () => 1,
  depth: 1,
  maxDepth: 1,
  completions: ['softirq'],
  hostLock: null,
  fns: { queue: 'usb_stor_control_thread', map: 'usb_hcd_map_urb_for_dma', complete: 'usb_giveback_urb_bh', irq: 'xhci_irq' },
};

export type UsbStorageOptions = Omit<NvmeOptions, 'queues' | 'irqCpu'>;

export class UsbStorageDevice extends NvmeDevice {
  constructor(m: Machine, o: UsbStorageOptions = {}) {
    super(m, { completion: 'softirq', ...o }, USB_STORAGE_HW);
  }
}

/** storage_probe: the disk on its host controller. Needs dma_init first. */
export function usb_storage_probe(m: Machine, o: UsbStorageOptions = {}): UsbStorageDevice {
  const dev = new UsbStorageDevice(m, o);
  m.sim.count(M_NVME_MAP_FAILURES, 0);
  m.sim.count(M_REQUEUES, 0);
  return dev;
}
