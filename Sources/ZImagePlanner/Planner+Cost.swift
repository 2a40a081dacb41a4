/// The cost of one plan: memory per stage and time per image.
extension Planner {
    /// The predicted peak and seconds of one plan (see docs/notes/vram-planner.md for the model).
    func cost(_ format: WeightFormat, _ mode: MemoryMode, tiled: Bool, _ request: PlanRequest, _ card: Card) -> Plan {
        var missing: [String] = []
        if format == .fp8, !card.fp8TensorCores, !capabilities.fp8StorageWithoutFP8Cores {
            missing.append("FP8 tensor cores (Ada, Hopper or Blackwell)")
        }
        if mode == .sequential, !capabilities.sequentialComponents { missing.append("sequential components") }
        if mode == .swapped, !capabilities.componentSwapping { missing.append("component swapping") }
        if mode == .blockStreaming, !capabilities.blockStreaming { missing.append("block streaming") }
        let e = efficiencies
        let keepsDense = format == .fp8 && !capabilities.fp8WithoutDenseCopy
        let weights = model.weightBytes(format, keepsDenseCopy: keepsDense)
        let joint = model.imageTokens(width: request.width, height: request.height) + model.captionTokens(request.promptTokens)
        let ditActivations = model.transformerActivationBytes(tokens: joint)
        let decodedPixels = tiled ? TileGrid.largestTilePixels(width: request.width, height: request.height)
            : request.width * request.height
        let vaeActivations = Int(e.vaeBytesPerPixel * Double(decodedPixels))
        let textActivations = model.textHidden * max(request.promptTokens, 1) * 2 * 16
        // What stays on the device through the denoising loop and the decode.
        let transformerResident: Int
        switch mode {
        case .resident, .sequential, .swapped: transformerResident = weights.transformer
        case .blockStreaming:
            let blocks = model.layers + 2 * model.refinerLayers
            transformerResident = weights.transformer - blocks * model.blockBytes(format) + 2 * model.blockBytes(format)
        }
        let peakDenoise = transformerResident + weights.vae + max(ditActivations, vaeActivations)
        let peak: Int
        switch mode {
        case .resident: peak = weights.textEncoder + peakDenoise
        case .sequential:
            // The encoder runs next to the transformer, then leaves before the decode's buffers.
            peak = max(weights.textEncoder + textActivations + transformerResident + weights.vae, peakDenoise)
        case .swapped:
            peak = max(weights.textEncoder + textActivations, peakDenoise)
        case .blockStreaming:
            // The text encoder's layers stream too: its embedding and two layers on the device.
            let layer = (model.textParameters - model.textEmbeddingParameters) / model.textLayersRun
            let text = 2 * (model.textEmbeddingParameters + 2 * layer) + textActivations
            peak = max(text + transformerResident + weights.vae, peakDenoise)
        }
        // Time.
        let f = model.transformerFLOPs(width: request.width, height: request.height, captionTokens: request.promptTokens)
        let bf16Rate = e.bf16 * card.bf16FLOPS
        let linearRate = format == .fp8 && card.fp8TensorCores ? e.fp8 * (card.fp8FLOPS ?? card.bf16FLOPS) : bf16Rate
        var forward = (f.attention + f.other) / bf16Rate + f.imageLinear / linearRate
        if mode == .blockStreaming {
            let streamed = Double((model.layers + 2 * model.refinerLayers) * model.blockBytes(format))
            forward = max(forward, streamed / card.hostBandwidth)  // copies overlap compute; the slower wins
        }
        let forwards = Double(request.steps * (request.guidance ? 2 : 1))
        let vaeFLOPs = model.vaeDecodeFLOPs(width: request.width, height: request.height)
            * (tiled ? TileGrid.overlapFactor(width: request.width, height: request.height) : 1)
        let vae = vaeFLOPs / (e.vae * card.bf16FLOPS)
        let text = max(Double(weights.textEncoder) / (e.textEncoderBandwidth * card.memoryBandwidth),
                       model.textEncoderFLOPs(tokens: request.promptTokens) / bf16Rate)
        let batch = Double(max(request.batch, 1))
        let perImage = forwards * forward + vae + e.perImageOverheadSeconds + text / batch
        // A new prompt in sequential mode: the text encoder comes back, the transformer is re-uploaded.
        var reupload = 0.0
        if mode == .sequential { reupload = Double(weights.textEncoder) / card.hostBandwidth }
        if mode == .swapped { reupload = Double(weights.textEncoder + weights.transformer) / card.hostBandwidth }
        if mode == .blockStreaming { reupload = Double(weights.textEncoder) / card.hostBandwidth }  // streamed once per prompt
        return Plan(weights: format, mode: mode, tiledDecode: tiled, peakBytes: peak + e.fixedOverheadBytes,
                    secondsPerImage: perImage - (mode == .resident ? 0 : text / batch),
                    secondsPerImageNewPrompt: perImage + reupload / batch,
                    runnable: missing.isEmpty, missing: missing)
    }
}
