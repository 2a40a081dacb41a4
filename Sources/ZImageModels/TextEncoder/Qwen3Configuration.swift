/// The Qwen3 text encoder's `config.json` (Z-Image-Turbo: Qwen3-4B).
///
/// Decoded as transformers 5.23's `Qwen3Config` reads it: every field it reads, with its default
/// when absent (or null), both the 4.x and 5.x spellings (`rope_theta` or `rope_parameters` /
/// `rope_scaling`, `torch_dtype` or `dtype`), unknown fields ignored. A field of the wrong type,
/// or a value this engine cannot run (another `model_type`, scaled RoPE, attention biases,
/// sliding-window layers, another activation), is a `DecodingError` naming the field, which
/// `ComponentConfiguration.decode` reports with the file's path.
public struct Qwen3Configuration: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    /// `head_dim`; nil (only from the memberwise initialiser or an explicit null) means hidden / heads.
    public var headDim: Int?
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var vocabSize: Int
    /// The stored weights' dtype as the file names it (`dtype`, else `torch_dtype`), if given.
    public var dtype: String?
    /// `architectures` (`Qwen3ForCausalLM`, `Qwen3Model`, …), if given; informational.
    public var architectures: [String]?

    /// A configuration given field by field (the demo model, tests).
    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                numKeyValueHeads: Int, headDim: Int?, rmsNormEps: Double, ropeTheta: Double, vocabSize: Int,
                dtype: String? = nil, architectures: [String]? = nil) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.vocabSize = vocabSize
        self.dtype = dtype
        self.architectures = architectures
    }

    /// Written in the transformers 4.x spelling (top-level `rope_theta`, `torch_dtype`).
    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", vocabSize = "vocab_size", dtype = "torch_dtype", architectures
    }

    /// Width of one attention head (`head_dim`, else hidden / heads).
    public var resolvedHeadDim: Int { headDim ?? hiddenSize / max(numAttentionHeads, 1) }

    /// transformers' `Qwen3Config` defaults (and `RotaryEmbeddingConfigMixin.default_theta`).
    public enum Defaults {
        public static let vocabSize = 151_936, hiddenSize = 4096, intermediateSize = 22016
        public static let numHiddenLayers = 32, numAttentionHeads = 32, headDim = 128
        public static let rmsNormEps = 1e-6, ropeTheta = 10_000.0
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        func value<T: Decodable>(_ key: String, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: AnyKey(key)) ?? fallback
        }
        if let modelType = try c.decodeIfPresent(String.self, forKey: AnyKey("model_type")), modelType != "qwen3" {
            throw Self.unsupported(c, "model_type", "is '\(modelType)'; the text encoder must be a Qwen3 model ('qwen3')")
        }
        architectures = try c.decodeIfPresent([String].self, forKey: AnyKey("architectures"))
        // transformers 5 keeps `dtype` when both are present.
        dtype = try c.decodeIfPresent(String.self, forKey: AnyKey("dtype"))
            ?? c.decodeIfPresent(String.self, forKey: AnyKey("torch_dtype"))
        vocabSize = try value("vocab_size", Defaults.vocabSize)
        hiddenSize = try value("hidden_size", Defaults.hiddenSize)
        intermediateSize = try value("intermediate_size", Defaults.intermediateSize)
        numHiddenLayers = try value("num_hidden_layers", Defaults.numHiddenLayers)
        numAttentionHeads = try value("num_attention_heads", Defaults.numAttentionHeads)
        // Qwen3Config's default is 32; null means "as many as the query heads".
        if c.contains(AnyKey("num_key_value_heads")) {
            numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: AnyKey("num_key_value_heads")) ?? numAttentionHeads
        } else {
            numKeyValueHeads = 32
        }
        headDim = c.contains(AnyKey("head_dim"))
            ? try c.decodeIfPresent(Int.self, forKey: AnyKey("head_dim")) : Defaults.headDim
        rmsNormEps = try value("rms_norm_eps", Defaults.rmsNormEps)
        ropeTheta = try Self.decodeRope(c)
        try Self.refuseUnsupported(c)
        try validate(c)
    }

    /// RoPE as transformers 5 standardises it: `rope_scaling` (4.x) or `rope_parameters` (5.x),
    /// whose `rope_theta` wins over a top-level one, else 10000; only `rope_type` "default" runs here.
    private static func decodeRope(_ c: KeyedDecodingContainer<AnyKey>) throws -> Double {
        let topLevel = try c.decodeIfPresent(Double.self, forKey: AnyKey("rope_theta"))
        var nested: KeyedDecodingContainer<AnyKey>?
        for key in ["rope_scaling", "rope_parameters"] where nested == nil {
            if c.contains(AnyKey(key)), try !c.decodeNil(forKey: AnyKey(key)) {
                nested = try c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(key))
            }
        }
        guard let nested else { return topLevel ?? Defaults.ropeTheta }
        let type = try nested.decodeIfPresent(String.self, forKey: AnyKey("rope_type"))
            ?? nested.decodeIfPresent(String.self, forKey: AnyKey("type")) ?? "default"
        guard type == "default" else {
            throw unsupported(nested, "rope_type", "is '\(type)'; only the default (unscaled) RoPE is supported")
        }
        return try nested.decodeIfPresent(Double.self, forKey: AnyKey("rope_theta")) ?? topLevel ?? Defaults.ropeTheta
    }

    /// Fields the reference reads whose non-default values change the model in ways not implemented here.
    private static func refuseUnsupported(_ c: KeyedDecodingContainer<AnyKey>) throws {
        if let act = try c.decodeIfPresent(String.self, forKey: AnyKey("hidden_act")), act != "silu" {
            throw unsupported(c, "hidden_act", "is '\(act)'; only 'silu' is supported")
        }
        if try c.decodeIfPresent(Bool.self, forKey: AnyKey("attention_bias")) == true {
            throw unsupported(c, "attention_bias", "is true; Qwen3 projections without biases are supported only")
        }
        let sliding = try c.decodeIfPresent(Bool.self, forKey: AnyKey("use_sliding_window")) ?? false
        let layerTypes = try c.decodeIfPresent([String].self, forKey: AnyKey("layer_types")) ?? []
        if let other = layerTypes.first(where: { $0 != "full_attention" }) {
            throw unsupported(c, "layer_types", "contains '\(other)'; only full attention is supported")
        }
        if sliding && layerTypes.isEmpty {
            throw unsupported(c, "use_sliding_window", "is true; only full attention is supported")
        }
        _ = try c.decodeIfPresent(Bool.self, forKey: AnyKey("tie_word_embeddings"))
        _ = try c.decodeIfPresent(Int.self, forKey: AnyKey("max_position_embeddings"))
    }

    /// Sizes are positive and small enough that every shape product fits in an `Int`.
    private func validate(_ c: KeyedDecodingContainer<AnyKey>) throws {
        let limit = 1 << 20
        let sizes: [(String, Int)] = [
            ("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
            ("num_key_value_heads", numKeyValueHeads), ("head_dim", resolvedHeadDim),
        ]
        for (key, size) in sizes where !(1...limit).contains(size) {
            throw Self.unsupported(c, key, "is \(size); expected 1 to \(limit)")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw Self.unsupported(c, "num_key_value_heads", "(\(numKeyValueHeads)) does not divide num_attention_heads (\(numAttentionHeads))")
        }
        guard resolvedHeadDim % 2 == 0 else { throw Self.unsupported(c, "head_dim", "is \(resolvedHeadDim); RoPE needs an even width") }
        guard rmsNormEps > 0, rmsNormEps.isFinite else { throw Self.unsupported(c, "rms_norm_eps", "is \(rmsNormEps); expected > 0") }
        guard ropeTheta > 0, ropeTheta.isFinite else { throw Self.unsupported(c, "rope_theta", "is \(ropeTheta); expected > 0") }
    }

    private static func unsupported(_ c: KeyedDecodingContainer<AnyKey>, _ key: String, _ detail: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: c.codingPath + [AnyKey(key)], debugDescription: detail))
    }
}

/// A coding key for any field name.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
