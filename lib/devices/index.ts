/** DMA devices: a blk-mq block layer with an NVMe-like SSD, and a GPU / display engine pair sharing frames by dma-buf. */
export * from './block';
export * from './nvme';
export * from './ahci';
export * from './usb-storage';
export * from './dma-buf';
export * from './display';
export * from './workloads/fio';
