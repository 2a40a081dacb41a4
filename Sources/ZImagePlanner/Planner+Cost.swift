/// The cost of one plan: memory per stage and time per image.
///
/// Memory: peak = context + workspaces + what stays on the device through the run + the largest
/// stage's own bytes with the pool's cache at that point (`StageMemory.peak`). A streamed component
/// holds two slots (its largest layer twice) instead of its layers; in the streamed modes the text
/// encoder's slots and the caption refiner are on the device only while the prompt is encoded (the
/// engine gives them back to the pool, whose cache then holds them); a tiled decode's tiles are served
/// from the blocks the loop freed. Under a budget the pool's cache goes back before the budget would
/// be passed (`Plan.kept(under:)`): what must fit is the tensors in use (`StageMemory.inUse`).
/// Time: a streamed stage takes the larger of its compute and its copies over the host link
/// (double-buffered: the copy of layer i + 1 overlaps the compute of layer i).
extension Planner {
    /// Device bytes of one plan, by what stays and what each stage adds (without the fixed overhead).
    struct StageMemory: Equatable {
        /// On the device from the first stage to the last.
        var resident: Int
        var textEncoding: Int, denoising: Int, decoding: Int
        /// What the text stage gives back to the pool's cache when it ends (the streamed modes' slots
        /// and caption refiner): cached through the later stages unless a budget makes the pool return it.
        var textLeftInCache = 0
        /// A tiled decode: its tiles reuse the blocks the denoising loop freed.
        var tiled = false
        /// Merging the request's LoRAs, before the prompt is encoded: what the merge holds beside
        /// `resident` (0 without LoRAs).
        var merging = 0

        /// The peak with the pool keeping `cache` bytes of freed blocks through the loop (unbudgeted):
        /// the loop's activations and cache (and what the text stage left); a full decode on top of
        /// that cache (its calibrated bytes are what the unbudgeted full decode added over it), a tiled
        /// one inside it unless a tile is larger.
        func peak(cache: Int) -> Int {
            let loop = denoising + cache + textLeftInCache
            let decode = tiled ? max(decoding, loop) : decoding + cache + textLeftInCache
            return resident + max(merging, textEncoding, loop, decode)
        }

        /// The tensors in use at the peak when the pool gives its cache back (under a budget).
        var inUse: Int { resident + max(merging, textEncoding, denoising, decoding) }
    }

    /// Where `settings` puts the weights and activations of `request`.
    func stageMemory(_ settings: PlanSettings, _ request: PlanRequest) -> StageMemory {
        let e = efficiencies
        let format = settings.weights
        let keepsDense = format.isQuantised && !capabilities.fp8WithoutDenseCopy
        let weights = model.weightBytes(format, keepsDenseCopy: keepsDense, quantisedTextEncoder: settings.quantisedTextEncoder,
                                        embeddingOnDevice: !settings.textEmbeddingOnHost)
        let joint = model.imageTokens(width: request.width, height: request.height) + model.captionTokens(request.promptTokens)
        let ditActivations = model.transformerActivationBytes(tokens: joint)
        let decodedPixels = settings.tiledDecode ? TileGrid.largestTilePixels(width: request.width, height: request.height)
            : request.width * request.height
        // A full decode (or a "tiled" one that is a single tile): its calibrated bytes per pixel
        // (live tensors and the blocks it could not reuse); a tile of several: its live tensors
        // (served from the loop's freed blocks).
        let tiles = settings.tiledDecode && TileGrid.tileCount(width: request.width, height: request.height) > 1
        let vaeActivations = Int((tiles ? e.vaeLiveBytesPerPixel : e.vaeBytesPerPixel) * Double(decodedPixels))
        let textActivations = model.textHidden * max(request.promptTokens, 1) * 2 * 16
        let transformer: Int
        switch settings.transformer {
        case .resident: transformer = weights.transformer
        case .streamed:
            let block = model.blockBytes(format)
            transformer = weights.transformer - model.streamedBlocks * block + 2 * block
        }
        // LoRAs (`loraBytes`, as bf16): a resident transformer keeps merged copies of the weights they
        // change beside its own (`ZImagePipeline.useLoRAs`); FP8/int8 without dense weights read the
        // dense transformer again to merge, then quantise a second transformer; a streamed one (text
        // or block streaming) is built again from the file beside the old one, then the old one goes.
        var loraResident = 0, merging = 0
        if request.loraBytes > 0 {
            switch (settings.transformer, settings.textEncoder) {
            case (.streamed, _), (.resident, .streamed): merging = transformer   // built from the file again
            case (.resident, _) where format.isQuantised:
                let dense = model.weightBytes(.bf16, keepsDenseCopy: false).transformer
                loraResident = transformer
                merging = keepsDense ? request.loraBytes : dense + request.loraBytes
            case (.resident, _): loraResident = request.loraBytes
            }
        }
        let textSlots = 2 * model.textLayerBytes(format, quantised: settings.quantisedTextEncoder)
        // The streamed modes stream the caption refiner too; both it and the encoder's slots are
        // on the device only while the prompt is encoded (given back after: measured, the block-
        // streaming run's tensors peak at 1.78 GiB with them gone).
        let captionRefiner = model.refinerLayers * model.captionBlockBytes
        switch settings.textEncoder {
        case .resident:
            return StageMemory(resident: weights.textEncoder + transformer + loraResident + weights.vae,
                               textEncoding: textActivations, denoising: ditActivations, decoding: vaeActivations,
                               tiled: tiles, merging: merging)
        case .sequential:
            // The encoder runs next to the transformer, then leaves (the pool's cache given back with it).
            return StageMemory(resident: transformer + loraResident + weights.vae,
                               textEncoding: weights.textEncoder + textActivations,
                               denoising: ditActivations, decoding: vaeActivations, tiled: tiles, merging: merging)
        case .streamed:
            let encoding = max(textSlots, captionRefiner)
            return StageMemory(resident: transformer - captionRefiner + weights.vae,
                               textEncoding: encoding + textActivations,
                               denoising: ditActivations, decoding: vaeActivations, textLeftInCache: encoding,
                               tiled: tiles, merging: merging)
        }
    }

    /// What this build's engine lacks to run `format` in `mode` on `card` (empty: runnable).
    func missingCapabilities(_ format: WeightFormat, _ mode: MemoryMode, _ card: Card) -> [String] {
        var missing: [String] = []
        if format == .fp8, !card.fp8TensorCores, !capabilities.fp8StorageWithoutFP8Cores {
            missing.append("FP8 tensor cores (Ada, Hopper or Blackwell)")
        }
        if format == .int8, !capabilities.int8Weights { missing.append("int8 weights") }
        if mode == .sequential, !capabilities.sequentialComponents { missing.append("sequential components") }
        if mode.streamsTextEncoder, !capabilities.textEncoderStreaming { missing.append("text-encoder streaming") }
        if mode == .blockStreaming, !capabilities.blockStreaming { missing.append("block streaming") }
        return missing
    }

    /// Seconds of one DiT forward with `settings` on `card`: compute (bf16 rate; FP8 GEMMs at the
    /// FP8 rate; int8 at the bf16 rate plus a widening pass reading 1 B and writing 2 B per weight),
    /// or, with streamed blocks, the copies of those blocks when they are slower.
    func forwardSeconds(_ settings: PlanSettings, _ request: PlanRequest, _ card: Card) -> Double {
        let e = efficiencies
        let f = model.transformerFLOPs(width: request.width, height: request.height, captionTokens: request.promptTokens)
        let bf16Rate = e.bf16 * card.bf16FLOPS
        let fp8Cores = settings.weights == .fp8 && card.fp8TensorCores
        let linearRate = fp8Cores ? e.fp8 * (card.fp8FLOPS ?? card.bf16FLOPS) : bf16Rate
        var compute = (f.attention + f.other) / bf16Rate + f.imageLinear / linearRate
        if settings.weights.isQuantised, !fp8Cores { compute += widenSeconds(model.fp8Parameters, card) }
        guard settings.transformer == .streamed else { return compute }
        let streamed = Double(model.streamedBlocks * model.blockBytes(settings.weights))
        return max(compute, streamed / card.hostBandwidth)
    }

    /// Seconds to widen `parameters` one-byte weights to bf16 (read 1 B, write 2 B each) at the
    /// calibrated share of memory bandwidth.
    func widenSeconds(_ parameters: Int, _ card: Card) -> Double {
        Double(3 * parameters) / (efficiencies.textEncoderBandwidth * card.memoryBandwidth)
    }

    /// Seconds of the text encoder for one new prompt: its weights read once (bandwidth-bound at
    /// prompt lengths) or its FLOPs, plus int8's widening; sequential reloads it from the mapped
    /// file first; streamed, it takes the larger of that and its layers' copies.
    func textEncoderSeconds(_ settings: PlanSettings, _ request: PlanRequest, _ card: Card) -> Double {
        let e = efficiencies
        let layers = model.textLayersRun * model.textLayerBytes(settings.weights, quantised: settings.quantisedTextEncoder)
        var compute = max(Double(layers) / (e.textEncoderBandwidth * card.memoryBandwidth),
                          model.textEncoderFLOPs(tokens: request.promptTokens) / (e.bf16 * card.bf16FLOPS))
        let fp8Cores = settings.weights == .fp8 && card.fp8TensorCores
        if settings.quantisedTextEncoder, !fp8Cores {
            compute += widenSeconds(model.textLayersRun * model.textLayerProjectionParameters, card)
        }
        switch settings.textEncoder {
        case .resident: return compute
        case .sequential:
            let embedding = settings.textEmbeddingOnHost ? 0 : 2 * model.textEmbeddingParameters
            return compute + Double(layers + embedding) / card.hostBandwidth
        case .streamed: return max(compute, Double(layers) / card.hostBandwidth)
        }
    }

    /// The predicted peak and seconds of one plan (see docs/notes/vram-planner.md for the model).
    func cost(_ format: WeightFormat, _ mode: MemoryMode, tiled: Bool, _ request: PlanRequest, _ card: Card) -> Plan {
        let e = efficiencies
        let missing = missingCapabilities(format, mode, card)
        let settings = PlanSettings(mode: mode, weights: format, tiledDecode: tiled, capabilities: capabilities)
        let memory = stageMemory(settings, request)
        let forwards = Double(request.steps * (request.guidance ? 2 : 1))
        let vaeFLOPs = model.vaeDecodeFLOPs(width: request.width, height: request.height)
            * (tiled ? TileGrid.overlapFactor(width: request.width, height: request.height) : 1)
        let vae = vaeFLOPs / (e.vae * card.bf16FLOPS)
        let batch = Double(max(request.batch, 1))
        // A repeated prompt skips the text encoder (the prompt cache); a new one is shared by the batch.
        let perImage = forwards * forwardSeconds(settings, request, card) + vae + e.perImageOverheadSeconds
        let text = textEncoderSeconds(settings, request, card)
        return Plan(weights: format, mode: mode, tiledDecode: tiled, settings: settings,
                    peakBytes: memory.peak(cache: e.poolCacheBytes) + e.contextBytes + e.workspaceBytes,
                    minimumBytes: memory.inUse + e.contextBytes + e.workspaceBytes,
                    secondsPerImage: perImage, secondsPerImageNewPrompt: perImage + text / batch,
                    runnable: missing.isEmpty, missing: missing, firstImageOverheadSeconds: e.firstImageOverheadSeconds)
    }
}
