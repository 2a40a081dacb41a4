import ZImageTensor
import ZImageWeights

extension ZImageTransformer {
    /// This transformer with `loras` merged into its weights (`LoRAMerge`), built from this one's
    /// parameters, which stay as they are: calling it on the base transformer with another list
    /// (or none) switches LoRAs without reloading or unmerging anything.
    public func merging(_ loras: [WeightedLoRA]) throws -> ZImageTransformer {
        guard !loras.isEmpty else { return self }
        guard hasDenseWeights else {
            throw LoRAError.unsupported(file: loras[0].lora.path,
                                        detail: "this \(linearFormat.rawValue) transformer dropped its dense "
                + "weights; merge into weights read again (ZImagePipeline.useLoRAs) or use --precision bf16")
        }
        return try ZImageTransformer(configuration: configuration,
                                     parameters: LoRAMerge.apply(loras, to: parameters), linearFormat: linearFormat)
    }
}
