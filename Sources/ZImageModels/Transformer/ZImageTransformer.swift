import Foundation
import ZImageTensor
import ZImageWeights

/// `ZImageTransformer2DModel`, the single-stream DiT (diffusers 0.42.1, basic non-Omni path).
///
/// One call denoises one latent `[16, 1, H, W]` against one caption `[L, cap_feat_dim]`. Items of a
/// batch run one after another; for a single item the reference uses no attention mask, and the
/// inner multiple-of-32 padding (learned pad tokens) is attended to, as in the reference.
/// The caption half of the sequence depends on the prompt only: `prepareCaption` runs the caption
/// embedder and context refiner once, and every step reuses the result.
public final class ZImageTransformer {
    public let configuration: ZImageTransformerConfiguration
    /// How the image-token blocks' projections hold their weights (dense, FP8 or int8).
    public let linearFormat: LinearWeightFormat
    /// The tensors the layers were built from, by diffusers key (without the FP8 projections'
    /// dense weights when `hasDenseWeights` is false).
    public let parameters: ParameterStore
    /// Whether `parameters` holds every dense weight (LoRA merges start from them); false for an
    /// FP8 transformer built with `keepsDenseWeights: false`, which then holds its projections once.
    public let hasDenseWeights: Bool
    /// Whether float16 activations keep the residual streams, embedders and modulations in
    /// float32 and bound what reaches float16 (docs/notes/fp16.md). On by default; off only to
    /// show what it prevents (tests). bf16 and f32 runs never read it.
    public var guardsFloat16Overflow = true
    static let sequenceMultiple = 32
    /// Sinusoid frequencies of the timestep embedding (a cos and a sin each).
    static let timestepFrequencies = 128

    private let modules: Modules<LoadedParameters>
    /// The image-token blocks (noise refiner, then main layers) when they stream from host memory
    /// (`init(configuration:streamingFrom:…)`); nil when they are resident in `modules`.
    private let streamedBlocks: StreamedLayers<ZImageTransformerBlock<LoadedParameters>>?
    /// The caption refiner's blocks when they stream (made on the device for each new prompt's
    /// caption, then given back); nil when resident in `modules`.
    private let streamedCaptionRefiner: StreamedLayers<ZImageTransformerBlock<LoadedParameters>>?
    private let rope: ZImageRoPE
    /// The image stream's RoPE tables of the last (grid, caption length, backend): the same at
    /// every step of a generation, and 4096 × 64 cos/sin pairs on the host at 1024².
    private var imageTables: (key: ImageTableKey, cos: Tensor, sin: Tensor)?

    private struct ImageTableKey: Equatable {
        let rows: Int, columns: Int, captionLength: Int
        let backend: ObjectIdentifier
    }

    /// The model's layers, built from `Source`: each layer declares its keys (diffusers names) as
    /// it is built, so this is both the model and its parameter list.
    struct Modules<Source: ParameterSource> {
        let timestepMLP1: Linear<Source>, timestepMLP2: Linear<Source>
        let captionNorm: RMSNorm<Source>, captionLinear: Linear<Source>
        let xEmbedder: Linear<Source>
        let xPadToken: Source.Value, captionPadToken: Source.Value
        let noiseRefiner: [ZImageTransformerBlock<Source>]
        let contextRefiner: [ZImageTransformerBlock<Source>]
        let layers: [ZImageTransformerBlock<Source>]
        let finalModulation: Linear<Source>, finalLinear: Linear<Source>

        /// `linearFormat` is the image-token blocks' (noise refiner and main layers); the caption
        /// refiner, embedders and modulations stay dense. `imageBlocks: false` leaves the
        /// image-token blocks out (they stream: `imageBlock`).
        init(_ source: Source, _ c: ZImageTransformerConfiguration, linearFormat: LinearWeightFormat,
             imageBlocks: Bool = true, captionRefiner: Bool = true) throws(Source.Failure) {
            let d = c.dim, key = c.patchKey, frequencies = ZImageTransformer.timestepFrequencies
            timestepMLP1 = try Linear(source, "t_embedder.mlp.0", input: 2 * frequencies, output: 1024, bias: true)
            timestepMLP2 = try Linear(source, "t_embedder.mlp.2", input: 1024, output: c.adaLNDim, bias: true)
            captionNorm = try RMSNorm(source, "cap_embedder.0", dimension: c.capFeatDim, eps: Float(c.normEps))
            captionLinear = try Linear(source, "cap_embedder.1", input: c.capFeatDim, output: d, bias: true)
            xEmbedder = try Linear(source, "all_x_embedder.\(key)", input: c.patchFeatures, output: d, bias: true)
            xPadToken = try source.tensor("x_pad_token", shape: [1, d])
            captionPadToken = try source.tensor("cap_pad_token", shape: [1, d])
            var noiseRefiner: [ZImageTransformerBlock<Source>] = [], contextRefiner = noiseRefiner, layers = noiseRefiner
            for i in 0..<(imageBlocks ? c.nRefinerLayers : 0) {
                noiseRefiner.append(try Self.imageBlock(source, i, c, linearFormat: linearFormat))
            }
            for i in 0..<(captionRefiner ? c.nRefinerLayers : 0) { contextRefiner.append(try Self.captionBlock(source, i, c)) }
            for i in 0..<(imageBlocks ? c.nLayers : 0) {
                layers.append(try Self.imageBlock(source, c.nRefinerLayers + i, c, linearFormat: linearFormat))
            }
            self.noiseRefiner = noiseRefiner
            self.contextRefiner = contextRefiner
            self.layers = layers
            finalModulation = try Linear(source, "all_final_layer.\(key).adaLN_modulation.1", input: c.adaLNDim,
                                         output: d, bias: true)
            finalLinear = try Linear(source, "all_final_layer.\(key).linear", input: d, output: c.patchFeatures,
                                     bias: true)
        }

        /// Caption-refiner block `index` (unmodulated, dense).
        static func captionBlock(_ source: Source, _ index: Int, _ c: ZImageTransformerConfiguration)
            throws(Source.Failure) -> ZImageTransformerBlock<Source> {
            try ZImageTransformerBlock(source, "context_refiner.\(index).", c, modulated: false)
        }

        /// Image-token block `index`: the noise refiner's blocks first, then the main layers (one
        /// shape, so they stream through the same slots).
        static func imageBlock(_ source: Source, _ index: Int, _ c: ZImageTransformerConfiguration,
                               linearFormat: LinearWeightFormat) throws(Source.Failure) -> ZImageTransformerBlock<Source> {
            let prefix = index < c.nRefinerLayers ? "noise_refiner.\(index)." : "layers.\(index - c.nRefinerLayers)."
            return try ZImageTransformerBlock(source, prefix, c, modulated: true, linearFormat: linearFormat)
        }
    }

    /// Every parameter the model has, by diffusers key, as its layers declare them; `linearFormat`
    /// marks the weights held as FP8 (`ParameterSpec.formats`).
    public static func parameterSpec(_ c: ZImageTransformerConfiguration,
                                     linearFormat: LinearWeightFormat = .dense) -> ParameterSpec {
        let declarations = ParameterDeclarations()
        _ = Modules(declarations, c, linearFormat: linearFormat)
        return declarations.spec()
    }

    /// Loads the transformer, verified against `parameterSpec`; `dtype` converts the weights at
    /// load (the reference rounds the fp32 checkpoint to bf16); nil keeps the stored dtype.
    /// `linearFormat` `.float8` quantises the projections of the image-token blocks (noise refiner
    /// and main layers) to FP8 at load; the caption refiner, embedders and modulations stay dense.
    public convenience init(configuration c: ZImageTransformerConfiguration, weights: WeightSet, backend: any Backend,
                            dtype: DType? = nil, linearFormat: LinearWeightFormat = .dense) throws {
        try Self.checkSupported(c)
        let store = try Self.parameterSpec(c).load(from: weights, component: "transformer", on: backend, dtype: dtype)
        try self.init(configuration: c, parameters: store, linearFormat: linearFormat)
    }

    /// The transformer built from parameters already loaded (and perhaps changed, as `LoRAMerge`
    /// does); `parameters` is kept, so another set of LoRAs can start again from the same tensors.
    /// With `linearFormat` `.float8` the layers hold FP8 copies and `parameters` the dense weights
    /// (the LoRA merge starts from those), so FP8 with LoRAs costs the dense weights' memory too.
    /// `keepsDenseWeights: false` (FP8 only) drops the projections' dense weights from `parameters`
    /// once the layers hold their FP8 copies: half the memory, and a LoRA merge then needs the
    /// dense weights read again (`ZImagePipeline.useLoRAs` does).
    public init(configuration c: ZImageTransformerConfiguration, parameters store: ParameterStore,
                linearFormat: LinearWeightFormat = .dense, keepsDenseWeights: Bool = true) throws {
        try Self.checkSupported(c)
        configuration = c
        let drops = linearFormat != .dense && !keepsDenseWeights
        let quantised = drops ? Set(Self.float8Keys(c)) : []
        parameters = drops ? ParameterStore(component: store.component,
                                            tensors: store.tensors.filter { !quantised.contains($0.key) }) : store
        hasDenseWeights = !drops
        self.linearFormat = linearFormat
        modules = try Modules(LoadedParameters(store), c, linearFormat: linearFormat)
        streamedBlocks = nil
        streamedCaptionRefiner = nil
        rope = ZImageRoPE(theta: c.ropeTheta, axesDims: c.axesDims, axesLens: c.axesLens)
    }

    /// The FP8 transformer read straight from `weights` (see `init(configuration:quantisedFrom:…)`).
    public convenience init(configuration c: ZImageTransformerConfiguration, float8From weights: WeightSet,
                            backend: any Backend, dtype: DType?) throws {
        try self.init(configuration: c, quantisedFrom: weights, linearFormat: .float8, backend: backend, dtype: dtype)
    }

    /// The quantised (`linearFormat` `.float8` or `.int8`) transformer read straight from `weights`
    /// (verified against `parameterSpec` first): each projection is uploaded dense, quantised and
    /// let go before the next is read, so the device never holds the dense transformer
    /// (`keepsDenseWeights: false` after a full load holds it all at once first). `parameters`
    /// keeps the weights the format does not quantise.
    public init(configuration c: ZImageTransformerConfiguration, quantisedFrom weights: WeightSet,
                linearFormat: LinearWeightFormat, backend: any Backend, dtype: DType?) throws {
        try Self.checkSupported(c)
        try Self.parameterSpec(c).verify(weights, component: "transformer")
        let quantised = linearFormat == .dense ? Set<String>() : Set(Self.float8Keys(c))
        final class Kept { var tensors: [String: Tensor] = [:] }
        let kept = Kept()
        let source = LoadedParameters(component: "transformer") { key in
            let tensor = try weights.tensor(key, on: backend, as: dtype)
            if !quantised.contains(key) { kept.tensors[key] = tensor }
            return tensor
        }
        configuration = c
        modules = try Modules(source, c, linearFormat: linearFormat)
        streamedBlocks = nil
        streamedCaptionRefiner = nil
        parameters = ParameterStore(component: "transformer", tensors: kept.tensors)
        hasDenseWeights = linearFormat == .dense
        self.linearFormat = linearFormat
        rope = ZImageRoPE(theta: c.ropeTheta, axesDims: c.axesDims, axesLens: c.axesLens)
    }

    /// The transformer with its image-token blocks (noise refiner and the main layers: all but a
    /// few percent of its weights) streamed from host memory through two device slots (block
    /// streaming, `StreamedLayers`); the embedders, caption refiner and final layer are resident.
    /// Each block is built on the device as a resident one would be (converted to `dtype`,
    /// quantised for `linearFormat`), copied to host memory and let go, so the device never holds
    /// more than three blocks. `parameters` holds the resident weights only (no LoRA merges).
    ///
    /// `streamsImageBlocks: false` keeps the image-token blocks resident (read and, for FP8,
    /// quantised block by block, as `float8From` does); `streamsCaptionRefiner` streams the caption
    /// refiner's two blocks too, made on the device for a new prompt's caption and given back after.
    ///
    /// `loras` are merged into each weight as it is read (before FP8 or int8 quantise it), so a
    /// streamed transformer with LoRAs is built from the file the same way, without its dense
    /// weights on the device at once.
    public init(configuration c: ZImageTransformerConfiguration, streamingFrom weights: WeightSet, backend: any Backend,
                dtype: DType?, linearFormat: LinearWeightFormat = .dense, streamsImageBlocks: Bool = true,
                streamsCaptionRefiner: Bool = true, loras: [WeightedLoRA] = []) throws {
        try Self.checkSupported(c)
        let spec = Self.parameterSpec(c)
        try spec.verify(weights, component: "transformer")
        let updates = loras.isEmpty ? nil : try LoRAMerge.Updates(loras, shapes: spec.shapes)
        final class Kept { var tensors: [String: Tensor] = [:] }
        let kept = Kept()
        let fetch = { (key: String) -> Tensor in
            let stored = try weights.tensor(key, on: backend, as: dtype)
            return try updates?.merged(key, stored) ?? stored
        }
        let quantised = linearFormat == .dense ? [] : Set(Self.float8Keys(c))
        let resident = LoadedParameters(component: "transformer") { key in
            let tensor = try fetch(key)
            if !quantised.contains(key) { kept.tensors[key] = tensor }
            return tensor
        }
        configuration = c
        modules = try Modules(resident, c, linearFormat: linearFormat, imageBlocks: !streamsImageBlocks,
                              captionRefiner: !streamsCaptionRefiner)
        streamedBlocks = try streamsImageBlocks
            ? StreamedLayers(count: c.nRefinerLayers + c.nLayers, backend: backend, component: "transformer",
                             fetch: fetch) { index, source in
                try Modules<LoadedParameters>.imageBlock(source, index, c, linearFormat: linearFormat)
            }
            : nil
        streamedCaptionRefiner = try streamsCaptionRefiner
            ? StreamedLayers(count: c.nRefinerLayers, backend: backend, component: "transformer", fetch: fetch) { index, source in
                try Modules<LoadedParameters>.captionBlock(source, index, c)
            }
            : nil
        try streamedCaptionRefiner?.releaseSlots()
        parameters = ParameterStore(component: "transformer", tensors: kept.tensors)
        hasDenseWeights = false
        self.linearFormat = linearFormat
        rope = ZImageRoPE(theta: c.ropeTheta, axesDims: c.axesDims, axesLens: c.axesLens)
    }

    /// Whether the image-token blocks stream from host memory.
    public var streamsBlocks: Bool { streamedBlocks != nil }

    /// Whether any part streams from host memory (image blocks or the caption refiner).
    public var streamsWeights: Bool { streamedBlocks != nil || streamedCaptionRefiner != nil }

    /// Image-token block `index` (noise refiner first), resident or brought in by the stream.
    private func imageBlock(_ index: Int) throws -> ZImageTransformerBlock<LoadedParameters> {
        if let streamedBlocks { return try streamedBlocks.layer(index) }
        let refiners = configuration.nRefinerLayers
        return index < refiners ? modules.noiseRefiner[index] : modules.layers[index - refiners]
    }

    /// The weights FP8 and int8 quantise: the attention and feed-forward projections of the
    /// image-token blocks (noise refiner, main layers).
    public static func float8Keys(_ c: ZImageTransformerConfiguration) -> [String] {
        let blocks = (0..<c.nRefinerLayers).map { "noise_refiner.\($0)." } + (0..<c.nLayers).map { "layers.\($0)." }
        let projections = ["attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0",
                           "feed_forward.w1", "feed_forward.w2", "feed_forward.w3"]
        return blocks.flatMap { block in projections.map { block + $0 + ".weight" } }
    }

    /// Image positions (Lp + 1, h, w), pad rows (0, 0, 0): tables made once per grid and caption length.
    private func imageRoPE(rows ht: Int, columns wt: Int, padded: Int, captionLength: Int,
                           backend: any Backend) throws -> (Tensor, Tensor) {
        let key = ImageTableKey(rows: ht, columns: wt, captionLength: captionLength, backend: ObjectIdentifier(backend))
        if let cached = imageTables, cached.key == key { return (cached.cos, cached.sin) }
        var positions: [(Int, Int, Int)] = []
        positions.reserveCapacity(padded)
        for h in 0..<ht { for w in 0..<wt { positions.append((captionLength + 1, h, w)) } }
        positions += Array(repeating: (0, 0, 0), count: padded - ht * wt)
        let (cos, sin) = try rope.tables(positions, backend: backend)
        imageTables = (key, cos, sin)
        return (cos, sin)
    }

    static func checkSupported(_ c: ZImageTransformerConfiguration) throws {
        guard c.nKVHeads == c.nHeads, c.axesDims.count == 3, c.axesDims.reduce(0, +) == c.headDim,
              c.allPatchSize.count == 1, c.allFPatchSize == [1] else {
            throw WeightLoadingError.malformedJSON(path: "transformer/config.json",
                                                   detail: "unsupported configuration (heads, axes or patch sizes)")
        }
    }

    static func padded(_ count: Int) -> Int { (count + sequenceMultiple - 1) / sequenceMultiple * sequenceMultiple }

    // MARK: Caption (once per prompt)

    /// The caption stream after the embedder and the context refiner, ready for every step.
    public struct PreparedCaption {
        /// `[Lp, dim]`.
        public let tokens: Tensor
        /// Real caption tokens (before padding to a multiple of 32).
        public let length: Int
        public var paddedLength: Int { tokens.shape[0] }
        let cos: Tensor, sin: Tensor
        /// The projections' dtype; `tokens` (the stream) is float32 instead when float16 is guarded.
        let activationDType: DType
    }

    /// The dtype of the residual streams for `activationDType`: float32 for guarded float16.
    func streamDType(for activationDType: DType) -> DType {
        activationDType == .float16 && guardsFloat16Overflow ? .float32 : activationDType
    }

    /// Embeds caption features `[L, cap_feat_dim]`, pads them with the learned pad token to a
    /// multiple of 32, and runs the context refiner (positions (k+1, 0, 0), pads included).
    public func prepareCaption(_ features: Tensor, activationDType: DType) throws -> PreparedCaption {
        guard features.shape.rank == 2, features.shape[1] == configuration.capFeatDim, features.shape[0] > 0 else {
            throw TensorError.shapeMismatch(op: "transformer caption",
                                            detail: "\(features.shape), expected [L, \(configuration.capFeatDim)]")
        }
        features.backend.beginStage("caption")
        let length = features.shape[0], paddedLength = Self.padded(length)
        let stream = streamDType(for: activationDType)
        var tokens = try modules.captionLinear(modules.captionNorm(features.cast(to: stream)))
        tokens = try padRows(tokens, to: paddedLength, with: modules.captionPadToken.cast(to: stream))
        let (cos, sin) = try rope.tables((0..<paddedLength).map { ($0 + 1, 0, 0) }, backend: features.backend)
        for index in 0..<configuration.nRefinerLayers {
            let block = try streamedCaptionRefiner?.layer(index) ?? modules.contextRefiner[index]
            tokens = try block(tokens, cos: cos, sin: sin, modulation: nil, compute: activationDType)
        }
        // A streamed refiner's slots go back until the next prompt's caption.
        try streamedCaptionRefiner?.releaseSlots()
        return PreparedCaption(tokens: tokens, length: length, cos: cos, sin: sin, activationDType: activationDType)
    }

    private func padRows(_ x: Tensor, to rows: Int, with token: Tensor) throws -> Tensor {
        let missing = rows - x.shape[0]
        guard missing > 0 else { return x }
        return try Tensor.concat([x] + Array(repeating: token, count: missing), axis: 0)
    }

    // MARK: Timestep

    /// The timestep conditioning `c` `[1, adaLN]` for model time `t` ∈ [0, 1] (diffusers' `TimestepEmbedder`):
    /// a [cos, sin] sinusoid of t·t_scale with ω_j = exp(−ln(10000)·j/128), then the MLP.
    public func timestepEmbedding(_ t: Float, activationDType: DType, backend: any Backend) throws -> Tensor {
        let half = Self.timestepFrequencies
        let scaled = t * Float(configuration.tScale)
        let logPeriod = Float(-Foundation.log(10000.0))
        var embedding = [Float](repeating: 0, count: 2 * half)
        for j in 0..<half {
            let frequency = Foundation.exp(logPeriod * Float(j) / Float(half))
            let argument = scaled * frequency
            embedding[j] = Foundation.cos(argument)
            embedding[half + j] = Foundation.sin(argument)
        }
        let input = try backend.tensor(embedding, shape: [1, 2 * half], dtype: activationDType)
        return try modules.timestepMLP2(modules.timestepMLP1(input).silu())
    }

    // MARK: Forward

    /// The predicted velocity `[16, 1, H, W]` for latent `[16, 1, H, W]` at model time `t`.
    public func callAsFunction(_ latent: Tensor, t: Float, caption: PreparedCaption) throws -> Tensor {
        let c = configuration
        let activationDType = caption.activationDType, stream = caption.tokens.dtype
        let backend = latent.backend
        guard latent.shape.rank == 4, latent.shape[0] == c.inChannels, latent.shape[1] == 1,
              latent.shape[2] % c.patchSize == 0, latent.shape[3] % c.patchSize == 0 else {
            throw TensorError.shapeMismatch(op: "transformer", detail: "latent \(latent.shape), expected [16, 1, H, W]")
        }
        let (height, width) = (latent.shape[2], latent.shape[3])
        let p = c.patchSize, (ht, wt) = (height / p, width / p)
        let imageTokens = ht * wt, paddedImage = Self.padded(imageTokens)
        let conditioning = try timestepEmbedding(t, activationDType: stream, backend: backend)

        // Patchify, channel fastest: [C, Ht, pH, Wt, pW] → [Ht, Wt, pH, pW, C].
        let patches = try latent.cast(to: stream).reshaped([c.inChannels, ht, p, wt, p])
            .permuted([1, 3, 2, 4, 0]).reshaped([imageTokens, c.patchFeatures])
        var x = try padRows(modules.xEmbedder(patches), to: paddedImage,
                            with: modules.xPadToken.cast(to: stream))

        let (imageCos, imageSin) = try imageRoPE(rows: ht, columns: wt, padded: paddedImage,
                                                 captionLength: caption.paddedLength, backend: backend)

        for index in 0..<c.nRefinerLayers {
            let block = try imageBlock(index)
            x = try block(x, cos: imageCos, sin: imageSin, modulation: block.modulation(for: conditioning),
                          compute: activationDType)
        }
        // Unified sequence: image first, then caption.
        var unified = try Tensor.concat([x, caption.tokens], axis: 0)
        let cos = try Tensor.concat([imageCos, caption.cos], axis: 0)
        let sin = try Tensor.concat([imageSin, caption.sin], axis: 0)
        for index in c.nRefinerLayers..<(c.nRefinerLayers + c.nLayers) {
            let block = try imageBlock(index)
            unified = try block(unified, cos: cos, sin: sin, modulation: block.modulation(for: conditioning),
                                compute: activationDType)
        }
        // Final layer: LayerNorm (no affine, eps 1e-6) · (1 + Linear(SiLU(c))), then the projection.
        let scale = try modules.finalModulation(conditioning.silu()).affine(scale: 1, shift: 1)
        let image = try unified.rows(0..<imageTokens)
        let out = try modules.finalLinear((image.layerNorm(eps: 1e-6) * scale).cast(to: activationDType))
        // Unpatchify: [Ht, Wt, pH, pW, C] → [C, Ht, pH, Wt, pW].
        return try out.reshaped([ht, wt, p, p, c.inChannels]).permuted([4, 0, 2, 1, 3])
            .reshaped([c.inChannels, 1, height, width])
    }
}
