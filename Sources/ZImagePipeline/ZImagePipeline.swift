import Foundation
import ZImageModels
import ZImageTensor
import ZImageTokenizer
import ZImageWeights

/// Numeric precision of a generation: the activations' dtype (and, on a GPU, the weights'), and
/// how the quantised projections hold their weights — the DiT's image-token blocks (noise refiner,
/// main layers) and the text encoder's q/k/v/o/gate/up/down; everything else stays dense.
/// `fp8` is bf16 with those projections as FP8 e4m3 GEMMs (weights quantised per output channel at
/// load, activations per token each call) on FP8 tensor cores (CUDA compute capability 8.9+);
/// other GPUs widen the FP8 weights for a bf16 GEMM; the CPU backend emulates the FP8 GEMM in
/// float32 (for checks). `int8` is bf16 with those weights as symmetric int8 per output channel,
/// widened for a bf16 GEMM each call (weight-only, any GPU).
public enum Precision: String, Sendable, CaseIterable, Codable {
    case float32 = "fp32", bfloat16 = "bf16", float16 = "fp16", float8 = "fp8", int8 = "int8"

    /// The activations' dtype.
    public var dtype: DType {
        switch self {
        case .float32: .float32
        case .bfloat16, .float8, .int8: .bfloat16
        case .float16: .float16
        }
    }

    /// How the quantised projections (the DiT's image-token blocks, the text encoder's) hold
    /// their weights.
    public var linearFormat: LinearWeightFormat {
        switch self {
        case .float8: .float8
        case .int8: .int8
        case .float32, .bfloat16, .float16: .dense
        }
    }

    /// How the DiT's image-token projections hold their weights.
    public var transformerLinearFormat: LinearWeightFormat { linearFormat }

    /// The precisions `--text-encoder-precision` takes: the bf16 family, which differ only in how
    /// the encoder's projections are stored.
    public static let textEncoderChoices: [Precision] = [.bfloat16, .float8, .int8]

    /// How the text encoder's projections hold their weights: this precision's format, or that of
    /// `textEncoder` (`--text-encoder-precision`), which must compute in the same dtype.
    public func textEncoderLinearFormat(_ textEncoder: Precision? = nil) throws -> LinearWeightFormat {
        guard let textEncoder else { return linearFormat }
        guard Self.textEncoderChoices.contains(textEncoder), textEncoder.dtype == dtype else {
            throw GenerationError.invalidParameter(
                "text encoder precision", "\(textEncoder.rawValue) with precision \(rawValue): the text encoder "
                    + "takes bf16, fp8 or int8 with a bf16-activation precision (bf16, fp8, int8)")
        }
        return textEncoder.linearFormat
    }

    /// The VAE's dtype (weights and activations): float32 for fp16, as the VAE config's
    /// `force_upcast` asks and ComfyUI does on cards without bf16 (docs/notes/fp16.md).
    public var autoencoderDType: DType { self == .float16 ? .float32 : dtype }

    /// The dtype the VAE's weights load in, given the other components' (`nil`: as stored).
    public func autoencoderWeightDType(_ weightDType: DType?) -> DType? {
        self == .float16 ? .float32 : weightDType
    }
}

/// Progress of a running generation.
public struct GenerationProgress: Sendable {
    public enum Stage: Sendable, Equatable { case encodingPrompt, denoising, decoding }
    public var stage: Stage
    /// Image of the batch (0-based) being worked on.
    public var image: Int
    /// Completed steps of that image and the total.
    public var step: Int, steps: Int
    /// A rough picture of the current latents (see `LatentPreview`), on the steps asked for.
    public var preview: RGBImage?

    public init(stage: Stage, image: Int, step: Int, steps: Int, preview: RGBImage? = nil) {
        (self.stage, self.image, self.step, self.steps, self.preview) = (stage, image, step, steps, preview)
    }
}

/// One finished image.
public struct GeneratedImage: Sendable {
    public var image: RGBImage
    public var seed: UInt64
    /// The A1111 infotext for this image.
    public var infotext: String
    /// Whether the prompt (or the negative prompt, when guidance used it) was cut at the
    /// 512-token limit: what the text encoder saw is shorter than what was asked.
    public var promptTruncated: Bool

    public init(image: RGBImage, seed: UInt64, infotext: String, promptTruncated: Bool = false) {
        (self.image, self.seed, self.infotext, self.promptTruncated) = (image, seed, infotext, promptTruncated)
    }
}

/// Text to image with Z-Image-Turbo (diffusers `ZImagePipeline`): prompt → template →
/// Qwen3 features → noise (torch-compatible, seed + i per image) → N FlowMatch Euler steps of the
/// DiT (optionally with classifier-free guidance) → VAE decode → 8-bit RGB.
///
/// Not `Sendable`: it owns tensors. Keep one per device behind a serial executor.
public final class ZImagePipeline {
    public let backend: any Backend
    public let precision: Precision
    public let tokenizer: BPETokenizer
    /// The text encoder while it is on the device (nil between prompts with `releasesTextEncoder`).
    public private(set) var textEncoder: Qwen3TextEncoder?
    /// Loads the text encoder again from its (memory-mapped) file; nil for a pipeline built from
    /// loaded components, which keeps its encoder.
    private let loadTextEncoder: (() throws -> Qwen3TextEncoder)?
    /// Sequential components (the planner's `sequential` mode): the text encoder is freed after each
    /// new prompt's encoding, and the backend's cached memory given back, so the denoising and the
    /// decode run without it; a new prompt loads it again (a repeated one hits `encodePrompt`'s cache).
    public var releasesTextEncoder = false
    /// Where the components' weights were put at load.
    public let placement: ComponentPlacement
    /// The transformer denoising runs on: `baseTransformer` with the active LoRAs merged in.
    public private(set) var transformer: ZImageTransformer
    /// The transformer as loaded, never changed (LoRAs are merged into copies of its weights);
    /// with streamed blocks, the one built for the active LoRAs (`useLoRAs` builds it again).
    public private(set) var baseTransformer: ZImageTransformer
    /// Builds the streamed transformer again with LoRAs merged as it reads (block streaming: the
    /// merged weights go to host memory like the plain ones; text streaming: the resident weights
    /// merged as they upload, the caption refiner's host copies likewise); nil when nothing streams.
    private var streamedTransformer: (([WeightedLoRA]) throws -> ZImageTransformer)?
    /// The LoRAs merged into `transformer`, in order.
    public private(set) var loras: [WeightedLoRA] = []
    /// Reads the transformer's dense weights again, for an FP8 `baseTransformer` that dropped
    /// them (`hasDenseWeights` false): LoRAs merge into these, then the result is quantised.
    private var denseTransformerParameters: (() throws -> ParameterStore)?
    public let decoder: VAEDecoder
    /// The VAE encoder for img2img and inpainting (nil when the VAE file has none).
    public let encoder: VAEEncoder?
    /// The scheduler's `shift` from scheduler_config.json.
    public let shift: Float
    /// A short name for infotext (the model folder's name).
    public var modelName: String
    /// Seconds each component took to load (host clock; the uploads are queued, so a component's
    /// time includes waiting for the previous one's copies), for the profile. Empty when the
    /// components came loaded.
    public private(set) var loadTimings: [(component: String, seconds: Double)] = []
    /// The version written into infotexts and reported by the CLI and the server.
    public static let version = "zimage 0.1"

    /// Loads every component of a diffusers model directory (verified loads; memory-mapped where
    /// the backend computes on the stored dtype, so the CPU backend copies no weights at fp32).
    /// `textEncoderPrecision` (bf16, fp8 or int8; nil: `precision`'s) picks only how the text
    /// encoder's projections are stored (see `Precision.textEncoderLinearFormat`). `placement` says
    /// where each component's weights go (streamed layers, the embedding table on the host);
    /// `.sequential` for the text encoder sets `releasesTextEncoder`.
    public init(modelDirectory path: String, backend: any Backend, precision: Precision = .float32,
                textEncoderPrecision: Precision? = nil, placement: ComponentPlacement = .resident) throws {
        let model = try ModelDirectory(path: path)
        guard model.pipelineClass == "ZImagePipeline" else {
            throw GenerationError.modelNotSupported("\(path) holds a \(model.pipelineClass), not a ZImagePipeline")
        }
        self.backend = backend
        self.precision = precision
        self.placement = placement
        releasesTextEncoder = placement.textEncoder == .sequential
        // The CPU backend computes on stored bf16/f32 weights directly; other backends (and bf16
        // runs, which the reference does on bf16-rounded weights) convert at load.
        let weightDType: DType? = backend is any HostMemoryBorrowing && precision == .float32 ? nil : precision.dtype
        var clock = Date(), timings: [(component: String, seconds: Double)] = []
        func lap(_ component: String) {
            timings.append((component, Date().timeIntervalSince(clock)))
            clock = Date()
        }
        let tokenizerPath = try model.component("tokenizer").directory + "/tokenizer.json"
        let tokenizerLoad = BackgroundWork { try BPETokenizer(path: tokenizerPath) }   // parsed while the weights upload
        let textConfiguration = try ComponentConfiguration.decode(Qwen3Configuration.self, from: model.component("text_encoder"))
        let textWeights = try model.weights(of: "text_encoder")
        let textFormat = try precision.textEncoderLinearFormat(textEncoderPrecision)
        let loadTextEncoder = { [backend] in
            try Qwen3TextEncoder(configuration: textConfiguration, weights: textWeights, backend: backend, dtype: weightDType,
                                 linearFormat: textFormat, embeddingOnHost: placement.embeddingOnHost,
                                 streamsLayers: placement.textEncoder == .streamed)
        }
        self.loadTextEncoder = loadTextEncoder
        textEncoder = try loadTextEncoder()
        lap("text encoder")
        let transformerConfiguration = try ComponentConfiguration.decode(ZImageTransformerConfiguration.self,
                                                                         from: model.component("transformer"))
        let transformerWeights = try model.weights(of: "transformer")
        if placement.streamsTransformerBlocks || placement.textEncoder == .streamed {
            // The low-memory placements: the caption refiner streams too (made for each new
            // prompt's caption), and the image blocks with block streaming.
            let build = { [backend] (loras: [WeightedLoRA]) in
                try ZImageTransformer(configuration: transformerConfiguration, streamingFrom: transformerWeights,
                                      backend: backend, dtype: weightDType, linearFormat: precision.transformerLinearFormat,
                                      streamsImageBlocks: placement.streamsTransformerBlocks, loras: loras)
            }
            baseTransformer = try build([])
            streamedTransformer = build
            try backend.releaseCachedDeviceMemory()
        } else if precision.transformerLinearFormat != .dense {
            // FP8 and int8 hold the projections once (no dense copy); LoRAs re-read the dense weights.
            let read = { [backend] in
                try ZImageTransformer.parameterSpec(transformerConfiguration)
                    .load(from: transformerWeights, component: "transformer", on: backend, dtype: weightDType)
            }
            // Each projection quantised as it loads (the dense transformer is never on the device
            // at once), then the pool's cache of the dense blocks handed back to the driver.
            baseTransformer = try ZImageTransformer(configuration: transformerConfiguration, quantisedFrom: transformerWeights,
                                                    linearFormat: precision.transformerLinearFormat, backend: backend,
                                                    dtype: weightDType)
            try backend.releaseCachedDeviceMemory()
            denseTransformerParameters = read
        } else {
            baseTransformer = try ZImageTransformer(configuration: transformerConfiguration, weights: transformerWeights,
                                                    backend: backend, dtype: weightDType,
                                                    linearFormat: precision.transformerLinearFormat)
        }
        lap("transformer")
        transformer = baseTransformer
        let vaeConfiguration = try ComponentConfiguration.decode(AutoencoderConfiguration.self,
                                                                 from: model.component("vae"))
        let vaeWeights = try model.weights(of: "vae")
        let vaeDType = precision.autoencoderWeightDType(weightDType)
        decoder = try VAEDecoder(configuration: vaeConfiguration, weights: vaeWeights, backend: backend, dtype: vaeDType)
        encoder = VAEEncoder.isPresent(in: vaeWeights)
            ? try VAEEncoder(configuration: vaeConfiguration, weights: vaeWeights, backend: backend, dtype: vaeDType)
            : nil
        lap("VAE")
        tokenizer = try tokenizerLoad.result()
        lap("tokenizer (wait)")
        loadTimings = timings
        shift = Float(try model.component("scheduler").config?["shift"] as? Double ?? 3)
        modelName = URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent
    }

    /// A pipeline from components already loaded (see `init(splitFiles:…)` for ComfyUI's files).
    public init(backend: any Backend, precision: Precision, tokenizer: BPETokenizer, textEncoder: Qwen3TextEncoder,
                transformer: ZImageTransformer, decoder: VAEDecoder, encoder: VAEEncoder? = nil, shift: Float,
                modelName: String) {
        self.backend = backend
        self.precision = precision
        placement = ComponentPlacement(textEncoder: textEncoder.streamsLayers ? .streamed : .resident,
                                       streamsTransformerBlocks: transformer.streamsBlocks,
                                       embeddingOnHost: textEncoder.embeddingOnHost)
        self.tokenizer = tokenizer
        self.textEncoder = textEncoder
        loadTextEncoder = nil
        self.transformer = transformer
        baseTransformer = transformer
        self.decoder = decoder
        self.encoder = encoder
        self.shift = shift
        self.modelName = modelName
    }

    // MARK: LoRAs

    /// Makes `loras` (in order, each at its strength) the ones merged into `transformer`: built
    /// from `baseTransformer`'s weights each time, so switching or dropping LoRAs between jobs
    /// neither reloads the model nor subtracts anything. The same list again is free.
    public func useLoRAs(_ loras: [WeightedLoRA]) throws {
        func identity(_ list: [WeightedLoRA]) -> [String] {
            list.map { "\($0.lora.path)\u{0}\($0.lora.name)\u{0}\($0.strength)" }
        }
        guard identity(loras) != identity(self.loras) else { return }
        if let build = streamedTransformer {
            // Text or block streaming: the transformer is built again from the file with these LoRAs
            // merged as each weight is read. The previous one stays until the new one is built (a
            // failed LoRA leaves it, and `loras`, as they were): for that time the device holds both
            // (block streaming: both sets of slots; text streaming: both resident transformers, which
            // the planner counts) and the host both sets of streamed copies.
            let rebuilt = try build(loras)
            baseTransformer = rebuilt
            transformer = rebuilt
            self.loras = loras
            try backend.synchronize()
            try backend.releaseCachedDeviceMemory()
            return
        }
        transformer = baseTransformer
        self.loras = []
        if !loras.isEmpty, baseTransformer.streamsWeights {
            throw GenerationError.modelNotSupported("LoRAs with streamed weights from split files are not supported "
                + "yet: use a model folder, or a resident mode (--memory-mode)")
        }
        if !loras.isEmpty, !baseTransformer.hasDenseWeights {
            guard let read = denseTransformerParameters else { _ = try baseTransformer.merging(loras); return }
            // The dense weights are read from the (memory-mapped) file only for the merge.
            transformer = try ZImageTransformer(configuration: baseTransformer.configuration,
                                                parameters: LoRAMerge.apply(loras, to: read()),
                                                linearFormat: baseTransformer.linearFormat, keepsDenseWeights: false)
        } else {
            transformer = try baseTransformer.merging(loras)
        }
        self.loras = loras
    }

    // MARK: Stages (public so parity tests can check each)

    /// Caption features `[L, cap_dim]` of a prompt (templated, cut at 512 tokens) and whether it was cut.
    /// The last `promptCacheSize` prompts' features are kept (a few MiB at most), so a repeated
    /// prompt (a batch, the next job with the same text) skips the text encoder: the hook the
    /// planner's sequential-components mode relies on (the encoder need not be resident then).
    public func encodePrompt(_ prompt: String) throws -> (features: Tensor, truncated: Bool) {
        if promptCacheSize > 0, let index = promptCache.firstIndex(where: { $0.prompt == prompt }) {
            let hit = promptCache.remove(at: index)
            promptCache.insert(hit, at: 0)
            return (hit.features, hit.truncated)
        }
        let tokenized = TokenizedPrompt(prompt: prompt, tokenizer: tokenizer)
        backend.beginStage("text encoder")
        let encoder: Qwen3TextEncoder
        if let resident = textEncoder {
            encoder = resident
        } else if let loadTextEncoder {
            encoder = try loadTextEncoder()
            textEncoder = encoder
        } else {
            throw GenerationError.modelNotSupported("the text encoder was released and cannot be loaded again")
        }
        let features = try encoder.encode(ids: tokenized.ids, activationDType: precision.dtype)
        if releasesTextEncoder, loadTextEncoder != nil {
            // Its weights go back to the pool; the pool's cache goes back to the driver.
            textEncoder = nil
            try backend.synchronize()
            try backend.releaseCachedDeviceMemory()
        }
        promptCache.insert((prompt, features, tokenized.truncated), at: 0)
        if promptCache.count > promptCacheSize { promptCache.removeLast(promptCache.count - max(promptCacheSize, 0)) }
        return (features, tokenized.truncated)
    }

    /// How many prompts' caption features `encodePrompt` keeps (0 turns the cache off).
    public var promptCacheSize = 4 {
        didSet { if promptCache.count > max(promptCacheSize, 0) { promptCache.removeLast(promptCache.count - max(promptCacheSize, 0)) } }
    }
    /// The cached caption features, most recent first.
    private var promptCache: [(prompt: String, features: Tensor, truncated: Bool)] = []

    /// The initial latent `[16, 1, H/8, W/8]` for one seed: `torch.randn` on a CPU generator.
    public func initialLatent(width: Int, height: Int, seed: UInt64) throws -> Tensor {
        let shape: Shape = [transformer.configuration.inChannels, 1, 2 * (height / 16), 2 * (width / 16)]
        var generator = TorchGenerator(seed: seed)
        return try backend.tensor(generator.randn(count: shape.count), shape: shape)
    }

    /// Runs the denoising loop on one latent; `onStep` sees each step's latents (float32) with the
    /// count of steps run before it, and returns false to cancel. img2img starts at `firstStep`;
    /// inpainting's `blend` replaces the latents after each step (it gets the schedule's index).
    public func denoise(_ latent: Tensor, caption: ZImageTransformer.PreparedCaption,
                        negative: ZImageTransformer.PreparedCaption?, parameters p: GenerationParameters,
                        firstStep: Int = 0, blend: ((Int, Tensor) throws -> Tensor)? = nil,
                        onStep: (Int, Tensor) throws -> Bool) throws -> Tensor {
        let scheduler = FlowMatchEulerScheduler(steps: p.steps, shift: shift)
        var latents = try latent.cast(to: .float32)
        for step in firstStep..<scheduler.steps {
            let t = scheduler.modelTime(step)
            backend.beginStage("step \(step + 1)")
            let input = try latents.cast(to: precision.dtype)
            let positive = try transformer(input, t: t, caption: caption).cast(to: .float32)
            var prediction = positive
            // Guidance is skipped at steps whose model time exceeds cfg_truncation (reference order).
            if let negative, p.guidanceScale > 0, !(t > p.cfgTruncation) {
                let other = try transformer(input, t: t, caption: negative).cast(to: .float32)
                prediction = try positive + (positive - other).affine(scale: p.guidanceScale)
                if p.cfgNormalization > 0 {
                    let positiveNorm = try Self.norm(positive), guidedNorm = try Self.norm(prediction)
                    let limit = positiveNorm * p.cfgNormalization
                    if guidedNorm > limit { prediction = try prediction.affine(scale: limit / guidedNorm) }
                }
            }
            // Euler: x ← x + (σ_{i+1} − σ_i) · (−v).
            latents = try latents + prediction.unary(.negate).affine(scale: scheduler.stepSize(step))
            if let blend { latents = try blend(step, latents) }
            guard try onStep(step - firstStep, latents) else { throw GenerationError.cancelled }
        }
        return latents
    }

    static func norm(_ x: Tensor) throws -> Float {
        Float(try x.toFloats().reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
    }

    /// Pixels of one latent: un-scaled, decoded (tiled if asked), mapped to 8-bit RGB as the
    /// reference post-processes: (x/2 + 0.5) clamped to [0, 1], ×255, rounded half to even.
    public func decode(_ latents: Tensor, tiled: Bool = false) throws -> RGBImage {
        backend.beginStage("vae")
        let z = try decoder.decoderInput(latents: latents.cast(to: precision.autoencoderDType))
        let (channels, height, width) = (z.shape[0], z.shape[2], z.shape[3])
        let batched = try z.reshaped([1, channels, height, width])
        let pixels = try (tiled ? TiledDecoding.decode(batched, decoder: decoder) : decoder.decode(batched))
        return try Self.rgb(pixels)
    }

    /// `[1, 3, H, W]` in [−1, 1] → 8-bit RGB, on the backend (`Backend.rgb8`: a GPU sends 3 bytes a
    /// pixel instead of 3 floats and spends no host time on 3 M conversions).
    public static func rgb(_ pixels: Tensor) throws -> RGBImage {
        let bytes = try pixels.backend.rgb8(pixels).toBytes()
        return RGBImage(width: pixels.shape[3], height: pixels.shape[2], pixels: bytes)
    }

    // MARK: Whole generation

    /// Generates `batchSize` images. `progress` is told of every stage and step and returns false
    /// to cancel (the generation stops at the next step with `GenerationError.cancelled`).
    /// `previewEvery` > 0 attaches a latent preview to every that-many-th step's progress.
    /// With `initImage` it is img2img (or inpainting, with its mask) from that picture, which must
    /// have the parameters' size; `parameters.strength` says how much of the schedule runs.
    public func generate(_ parameters: GenerationParameters, initImage: InitImage? = nil, previewEvery: Int = 0,
                         progress: (GenerationProgress) -> Bool = { _ in true }) throws -> [GeneratedImage] {
        try parameters.validate()
        var parameters = parameters
        parameters.strength = initImage.map { parameters.strength ?? $0.defaultStrength }
        let stepsRun = parameters.steps - Self.firstStep(steps: parameters.steps, strength: parameters.strength ?? 1)
        let firstSeed = try parameters.seed ?? Seed.resolve(nil)
        guard progress(GenerationProgress(stage: .encodingPrompt, image: 0, step: 0, steps: stepsRun)) else {
            throw GenerationError.cancelled
        }
        let dtype = precision.dtype
        // The prompt is tokenized once, here; whether it was cut travels with the images.
        // A1111's <lora:name:s> tags choose LoRAs (the caller applies them with useLoRAs); the text
        // encoder never sees them, as in A1111.
        let encoded = try encodePrompt(PromptLoRAs.parse(parameters.prompt).prompt)
        let caption = try transformer.prepareCaption(encoded.features, activationDType: dtype)
        var truncated = encoded.truncated
        var negative: ZImageTransformer.PreparedCaption?
        if parameters.guidanceScale > 0 {
            let encodedNegative = try encodePrompt(parameters.negativePrompt)
            negative = try transformer.prepareCaption(encodedNegative.features, activationDType: dtype)
            truncated = truncated || encodedNegative.truncated
        }
        var images: [GeneratedImage] = []
        for index in 0..<parameters.batchSize {
            let seed = Seed.of(image: index, first: firstSeed)
            let start = try initImage.map { try editStart($0, parameters: parameters, seed: seed) }
                ?? EditStart(latent: initialLatent(width: parameters.width, height: parameters.height, seed: seed),
                             firstStep: 0, blend: nil)
            let final = try denoise(start.latent, caption: caption, negative: negative, parameters: parameters,
                                    firstStep: start.firstStep, blend: start.blend) { step, latents in
                let wantsPreview = previewEvery > 0 && ((step + 1) % previewEvery == 0 || step + 1 == stepsRun)
                let preview = wantsPreview ? try LatentPreview.image(latents) : nil
                return progress(GenerationProgress(stage: .denoising, image: index, step: step + 1,
                                                   steps: stepsRun, preview: preview))
            }
            guard progress(GenerationProgress(stage: .decoding, image: index, step: stepsRun,
                                              steps: stepsRun)) else { throw GenerationError.cancelled }
            let image = try decode(final, tiled: parameters.tiledDecode)
            let infotext = Infotext.render(parameters, seed: seed, model: modelName, version: Self.version, loras: loras)
            images.append(GeneratedImage(image: image, seed: seed, infotext: infotext, promptTruncated: truncated))
        }
        return images
    }
}
