/** Placeholder: the IOMMU domain model lands with the DMA layer. */
export class iommu_domain {
  constructor(readonly name: string) {}
}
