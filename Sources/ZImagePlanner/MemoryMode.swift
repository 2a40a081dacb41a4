/// How the components use device memory.
public enum MemoryMode: String, Sendable, Codable, CaseIterable {
    /// Text encoder, transformer and VAE all resident (fastest).
    case resident
    /// Sequential components: the text encoder runs next to the transformer, then is freed (its
    /// memory back to the driver) before the decode; a repeated prompt hits the prompt cache, a new
    /// one reloads the encoder from its memory-mapped file.
    case sequential
    /// The text encoder streamed (its layers in pinned host memory, two layer slots on the device,
    /// layer i + 1 copied while layer i computes); transformer and VAE resident. A repeated prompt
    /// hits the prompt cache; a new one streams the encoder's layers again.
    case textStreaming = "text-streaming"
    /// The text encoder streamed and the transformer's main and noise-refiner blocks streamed
    /// through two device slots too: every forward reads those blocks over the host link.
    case blockStreaming = "block-streaming"

    /// The order of simplicity (resident 0 … block streaming 3): the tie-break between equally fast plans.
    public var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }

    /// Whether the text encoder's layers stream from host memory in this mode.
    public var streamsTextEncoder: Bool { self == .textStreaming || self == .blockStreaming }
}

/// What the engine of this build can follow; the planner never promises a plan it cannot run.
///
/// `.current` is this build: a flag is turned on once the engine does it and a GPU run confirms
/// the prediction (the streaming modes, int8, the quantised text encoder and the embedding table on
/// the host are on; FP8 storage widened on cards without FP8 tensor cores is not yet planned).
public struct EngineCapabilities: Sendable, Equatable, Codable {
    /// Sequential components: the text encoder freed after each new prompt (`sequential`).
    public var sequentialComponents: Bool
    /// The text encoder streamed through two layer slots (`text-streaming`, and part of `block-streaming`).
    public var textEncoderStreaming: Bool
    /// The transformer's main and noise-refiner blocks streamed through two slots (`block-streaming`).
    public var blockStreaming: Bool
    /// Weight-only int8 (per-output-channel scales, widened to bf16 before each GEMM).
    public var int8Weights: Bool
    /// Whether fp8 and int8 also quantise the text encoder's projections (else it stays bf16).
    public var quantisedTextEncoder: Bool
    /// Whether the text encoder's token embedding (0.78 GB) stays in host memory, its rows gathered
    /// on the CPU and uploaded per prompt (the streaming modes always keep it there).
    public var textEmbeddingOnHost: Bool
    /// Whether FP8 layers drop their dense bf16 weights (else both stay resident).
    public var fp8WithoutDenseCopy: Bool
    /// Whether FP8 weights can be stored on cards without FP8 tensor cores (widened before each GEMM).
    public var fp8StorageWithoutFP8Cores: Bool

    /// Capabilities flag by flag (all new ones off by default).
    public init(sequentialComponents: Bool, textEncoderStreaming: Bool = false, blockStreaming: Bool = false,
                int8Weights: Bool = false, quantisedTextEncoder: Bool = false, textEmbeddingOnHost: Bool = false,
                fp8WithoutDenseCopy: Bool, fp8StorageWithoutFP8Cores: Bool = false) {
        self.sequentialComponents = sequentialComponents
        self.textEncoderStreaming = textEncoderStreaming
        self.blockStreaming = blockStreaming
        self.int8Weights = int8Weights
        self.quantisedTextEncoder = quantisedTextEncoder
        self.textEmbeddingOnHost = textEmbeddingOnHost
        self.fp8WithoutDenseCopy = fp8WithoutDenseCopy
        self.fp8StorageWithoutFP8Cores = fp8StorageWithoutFP8Cores
    }

    /// This build: every mode (text-encoder and block streaming measured on the H200:
    /// bench/results/2026-12-01-h200-streaming.json), tiled decode, bf16, FP8 and int8 with the
    /// text encoder quantised too, the embedding table on the host; FP8 holds its projections once.
    /// Not yet: FP8 storage widened on cards without FP8 tensor cores (the planner's cost of it).
    public static let current = EngineCapabilities(sequentialComponents: true, textEncoderStreaming: true,
                                                   blockStreaming: true, int8Weights: true, quantisedTextEncoder: true,
                                                   textEmbeddingOnHost: true, fp8WithoutDenseCopy: true)
    /// The engine the H200 calibration runs were made with (FP8 kept the dense copies then; the
    /// token embedding was on the device).
    public static let calibrationRuns = EngineCapabilities(sequentialComponents: false, fp8WithoutDenseCopy: false)
    /// Everything the planner knows how to cost (what `advise` shows as the card's potential).
    public static let all = EngineCapabilities(sequentialComponents: true, textEncoderStreaming: true, blockStreaming: true,
                                               int8Weights: true, quantisedTextEncoder: true, textEmbeddingOnHost: true,
                                               fp8WithoutDenseCopy: true)
}

/// What the engine must do to run a plan, machine-readable: the one description the CLI and the
/// server map onto the pipeline (`Plan.settings`).
public struct PlanSettings: Sendable, Equatable, Codable {
    /// Where the text encoder lives.
    public enum TextEncoderPlacement: String, Sendable, Codable {
        /// On the device for the whole run.
        case resident
        /// On the device to encode a new prompt, then freed and the pool's cache trimmed.
        case sequential
        /// Layers in pinned host memory, streamed through two device slots.
        case streamed
    }
    /// Where the transformer's blocks live.
    public enum TransformerPlacement: String, Sendable, Codable {
        /// Every block on the device.
        case resident
        /// Main and noise-refiner blocks streamed through two device slots; the rest resident.
        case streamed
    }

    public var textEncoder: TextEncoderPlacement
    public var transformer: TransformerPlacement
    /// The storage of the image-token blocks' projections (and the text encoder's, with `quantisedTextEncoder`).
    public var weights: WeightFormat
    /// Whether fp8/int8 apply to the text encoder's projections too (false: it stays bf16).
    public var quantisedTextEncoder: Bool
    /// Whether the token-embedding table stays in host memory.
    public var textEmbeddingOnHost: Bool
    /// Whether the VAE decodes in tiles.
    public var tiledDecode: Bool

    /// The settings of `mode` with `weights` on an engine with `capabilities`.
    public init(mode: MemoryMode, weights: WeightFormat, tiledDecode: Bool, capabilities: EngineCapabilities) {
        switch mode {
        case .resident: textEncoder = .resident
        case .sequential: textEncoder = .sequential
        case .textStreaming, .blockStreaming: textEncoder = .streamed
        }
        transformer = mode == .blockStreaming ? .streamed : .resident
        self.weights = weights
        quantisedTextEncoder = weights.isQuantised && capabilities.quantisedTextEncoder
        textEmbeddingOnHost = mode.streamsTextEncoder || capabilities.textEmbeddingOnHost
        self.tiledDecode = tiledDecode
    }

    /// Whether the text encoder leaves the device after encoding (`ZImagePipeline.releasesTextEncoder`).
    public var releasesTextEncoder: Bool { textEncoder == .sequential }
}
