/// The Qwen3 text encoder's `config.json` (Z-Image-Turbo: Qwen3-4B, spec §1.3).
public struct Qwen3Configuration: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int?
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var vocabSize: Int

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int, headDim: Int?, rmsNormEps: Double, ropeTheta: Double, vocabSize: Int) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.vocabSize = vocabSize
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", vocabSize = "vocab_size"
    }

    /// Width of one attention head (`head_dim`, else hidden / heads).
    public var resolvedHeadDim: Int { headDim ?? hiddenSize / numAttentionHeads }
}
