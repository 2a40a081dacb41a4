import Foundation
import ZImageTensor
import ZImageWeights

/// The Qwen3 decoder stack used as Z-Image's text encoder (transformers `Qwen3Model`).
///
/// Pre-norm layers: `h += o_proj(attention(rope(q_norm(q)), rope(k_norm(k)), v))` with a causal
/// mask and grouped-query heads, then `h += down(silu(gate(x)) · up(x))`. Z-Image uses
/// `hidden_states[-2]`, the raw output of the second-to-last layer, so the last layer and the
/// final norm are never loaded or run. Checkpoint keys are used in transformers' `model.` form,
/// with or without that prefix on disk (`canonicalKeys`).
public final class Qwen3TextEncoder {
    public let configuration: Qwen3Configuration
    /// Number of layers run (and loaded): all but the last.
    public let layerCount: Int
    /// How the attention and MLP projections (q, k, v, o, gate, up, down) hold their weights; the
    /// embedding and the norms stay dense.
    public let linearFormat: LinearWeightFormat
    /// Whether float16 activations keep the residual stream in float32, with the two
    /// projections that write it (`o_proj`, `down_proj`) and the SwiGLU product in float32
    /// (docs/notes/fp16.md). On by default; off only to show what it prevents (tests).
    public var guardsFloat16Overflow = true
    private let modules: Modules<LoadedParameters>
    /// The token embeddings: on the device, or gathered per prompt from the mapped file.
    private let embedding: TokenEmbedding
    /// The layers when they stream from host memory (`streamsLayers`); nil when resident in `modules`.
    private let streamedLayers: StreamedLayers<Layer<LoadedParameters>>?
    /// The backend the encoder runs on.
    private let backend: any Backend

    /// The layers loaded, built from `Source`: each declares its keys (transformers' `model.`
    /// names) as it is built.
    struct Modules<Source: ParameterSource> {
        let embedTokens: Source.Value?
        let layers: [Layer<Source>]

        /// The embeddings and layers `0 ..< num_hidden_layers − 1`, projections held as `linearFormat`
        /// (without the embeddings when they stay on the host, without the layers when they stream).
        init(_ source: Source, _ c: Qwen3Configuration, linearFormat: LinearWeightFormat, embedding: Bool = true,
             layers hasLayers: Bool = true) throws(Source.Failure) {
            embedTokens = embedding ? try source.tensor(Qwen3TextEncoder.embeddingKey, shape: [c.vocabSize, c.hiddenSize]) : nil
            var layers: [Layer<Source>] = []
            for i in 0..<(hasLayers ? max(c.numHiddenLayers - 1, 0) : 0) {
                layers.append(try Layer(source, i, c, linearFormat: linearFormat))
            }
            self.layers = layers
        }
    }

    static let embeddingKey = "model.embed_tokens.weight"


    struct Layer<Source: ParameterSource> {
        let inputNorm: RMSNorm<Source>, postAttentionNorm: RMSNorm<Source>
        let q: Linear<Source>, k: Linear<Source>, v: Linear<Source>, o: Linear<Source>
        let qNorm: RMSNorm<Source>, kNorm: RMSNorm<Source>
        let gate: Linear<Source>, up: Linear<Source>, down: Linear<Source>

        /// Layer `index` (keys `model.layers.<index>.`), projections held as `f`.
        init(_ source: Source, _ index: Int, _ c: Qwen3Configuration, linearFormat f: LinearWeightFormat)
            throws(Source.Failure) {
            let prefix = "model.layers.\(index)."
            let d = c.hiddenSize, hd = c.resolvedHeadDim, eps = Float(c.rmsNormEps)
            let queries = c.numAttentionHeads * hd, keys = c.numKeyValueHeads * hd, ffn = c.intermediateSize
            inputNorm = try RMSNorm(source, prefix + "input_layernorm", dimension: d, eps: eps)
            postAttentionNorm = try RMSNorm(source, prefix + "post_attention_layernorm", dimension: d, eps: eps)
            q = try Linear(source, prefix + "self_attn.q_proj", input: d, output: queries, format: f)
            k = try Linear(source, prefix + "self_attn.k_proj", input: d, output: keys, format: f)
            v = try Linear(source, prefix + "self_attn.v_proj", input: d, output: keys, format: f)
            o = try Linear(source, prefix + "self_attn.o_proj", input: queries, output: d, format: f)
            qNorm = try RMSNorm(source, prefix + "self_attn.q_norm", dimension: hd, eps: eps)
            kNorm = try RMSNorm(source, prefix + "self_attn.k_norm", dimension: hd, eps: eps)
            gate = try Linear(source, prefix + "mlp.gate_proj", input: d, output: ffn, format: f)
            up = try Linear(source, prefix + "mlp.up_proj", input: d, output: ffn, format: f)
            down = try Linear(source, prefix + "mlp.down_proj", input: ffn, output: d, format: f)
        }
    }

    /// The parameters loaded, as the layers declare them: embeddings and layers
    /// `0 ..< num_hidden_layers − 1`; the last layer, the final norm and the head are ignored.
    /// `linearFormat` marks the projections held quantised (`ParameterSpec.formats`).
    public static func parameterSpec(_ c: Qwen3Configuration,
                                     linearFormat: LinearWeightFormat = .dense) -> ParameterSpec {
        let declarations = ParameterDeclarations()
        _ = Modules(declarations, c, linearFormat: linearFormat)
        return declarations.spec(ignoring: ["model.layers.\(c.numHiddenLayers - 1).", "model.norm.", "lm_head."])
    }

    /// Loads the encoder from a checkpoint, verified against `parameterSpec`. `dtype` converts the
    /// weights at load (nil keeps the stored dtype; the CPU backend computes on bf16 weights directly).
    /// With a quantised `linearFormat` (`.float8`, `.int8`) each projection is uploaded dense,
    /// quantised and let go before the next is read, so the device never holds the dense encoder;
    /// the embedding and the norms stay dense.
    ///
    /// `embeddingOnHost` leaves the token-embedding table in the file (a prompt's rows are read and
    /// uploaded; not for fp8/GGUF-encoded tables, which load as usual); `streamsLayers` keeps the
    /// layers in host memory, two on the device at a time (`StreamedLayers`).
    public init(configuration: Qwen3Configuration, weights: WeightSet, backend: any Backend, dtype: DType? = nil,
                linearFormat: LinearWeightFormat = .dense, embeddingOnHost: Bool = false,
                streamsLayers: Bool = false) throws {
        guard configuration.numHiddenLayers >= 2 else {
            throw WeightLoadingError.malformedJSON(path: "text_encoder/config.json", detail: "needs at least 2 layers")
        }
        self.configuration = configuration
        self.layerCount = configuration.numHiddenLayers - 1
        self.backend = backend
        self.linearFormat = linearFormat
        let spec = Self.parameterSpec(configuration, linearFormat: linearFormat)
        let canonical = try Self.canonicalKeys(weights, spec: spec)
        try spec.verify(canonical, component: "text_encoder")
        // Each tensor read as its layer asks for it; a quantised projection's dense upload is
        // released once `LinearWeight` holds its rows.
        let fetch = { (key: String) in try canonical.tensor(key, on: backend, as: dtype) }
        let source = LoadedParameters(component: "text_encoder", fetch: fetch)
        let hostTable = try embeddingOnHost ? canonical.plainBytes(Self.embeddingKey) : nil
        modules = try Modules(source, configuration, linearFormat: linearFormat, embedding: hostTable == nil,
                              layers: !streamsLayers)
        if let hostTable {
            embedding = .host(bytes: hostTable.bytes, info: hostTable.info, file: hostTable.file, dtype: dtype)
        } else if let table = modules.embedTokens {
            embedding = .device(table)
        } else {
            throw WeightLoadingError.shapeMismatch(component: "text_encoder", key: Self.embeddingKey,
                                                   expected: [configuration.vocabSize, configuration.hiddenSize], found: [])
        }
        streamedLayers = try streamsLayers
            ? StreamedLayers(count: configuration.numHiddenLayers - 1, backend: backend, component: "text_encoder",
                             fetch: fetch) { index, source in
                try Layer(source, index, configuration, linearFormat: linearFormat)
            }
            : nil
    }

    /// Whether the token embeddings stay on the host.
    public var embeddingOnHost: Bool { if case .host = embedding { true } else { false } }

    /// Whether the layers stream from host memory.
    public var streamsLayers: Bool { streamedLayers != nil }

    /// The checkpoint's keys in `Qwen3ForCausalLM` form (`model.` prefix), as transformers 5 matches
    /// them (`core_model_loading.rename_source_key`): a key the model knows only with the prefix
    /// gains it, so `Qwen3Model` checkpoints (`layers.0.…`, `embed_tokens.weight`) load too;
    /// `lm_head.*` (the tied or untied output head, never used here) is left out.
    public static func canonicalKeys(_ weights: WeightSet, spec: ParameterSpec) throws -> WeightSet {
        func known(_ key: String) -> Bool {
            spec.shapes[key] != nil || spec.ignoredPrefixes.contains { key.hasPrefix($0) }
        }
        return try weights.renamingKeys { key in
            if key.hasPrefix("lm_head.") { return nil }
            return !known(key) && known("model." + key) ? "model." + key : key
        }
    }

    /// `hidden_states[-2]` for one sequence of token ids: `[L, hidden]` in `activationDType`
    /// (float32 for guarded float16: the stream may hold values past float16's range).
    public func encode(ids: [Int32], activationDType: DType = .float32) throws -> Tensor {
        guard !ids.isEmpty else { throw TensorError.invalidArgument(op: "text encoder", detail: "no tokens") }
        let c = configuration, length = ids.count, hd = c.resolvedHeadDim
        let (cos, sin) = try ropeTables(length: length, backend: backend)
        // Guarded float16: the stream (and what writes it) in float32, the norms' outputs rounded to float16.
        let stream = activationDType == .float16 && guardsFloat16Overflow ? DType.float32 : activationDType
        var h = try embedding.rows(ids, backend: backend).cast(to: stream)
        for index in 0..<layerCount {
            let layer = try streamedLayers?.layer(index) ?? modules.layers[index]
            // One activation (quantised once for FP8) serves q, k and v, another gate and up.
            let x = try layer.q.prepare(layer.inputNorm(h).cast(to: activationDType))
            let q = try layer.qNorm(layer.q(x).reshaped([1, length, c.numAttentionHeads, hd]))
                .rope(cos: cos, sin: sin, layout: .splitHalves)
            let k = try layer.kNorm(layer.k(x).reshaped([1, length, c.numKeyValueHeads, hd]))
                .rope(cos: cos, sin: sin, layout: .splitHalves)
            let v = try layer.v(x).reshaped([1, length, c.numKeyValueHeads, hd])
            let attention = try q.attention(key: k, value: v, causal: true).reshaped([length, c.numAttentionHeads * hd])
            h = try h + layer.o(attention.cast(to: stream))
            let y = try layer.gate.prepare(layer.postAttentionNorm(h).cast(to: activationDType))
            h = try h + layer.down(layer.gate(y).cast(to: stream).silu() * layer.up(y))
        }
        // Streamed layers' slots go back until the next prompt (the encoder runs once per prompt).
        try streamedLayers?.releaseSlots()
        return h
    }

    /// Rotary tables for positions `0 ..< length`: inv_freq_j = 1 / θ^(2j/hd), computed in float32
    /// as transformers' default rope does.
    private func ropeTables(length: Int, backend: any Backend) throws -> (Tensor, Tensor) {
        let hd = configuration.resolvedHeadDim, half = hd / 2
        let theta = Float(configuration.ropeTheta)
        let inverse = (0..<half).map { j in 1 / Foundation.pow(theta, Float(2 * j) / Float(hd)) }
        var cos = [Float](repeating: 0, count: length * half), sin = cos
        for position in 0..<length {
            for j in 0..<half {
                let angle = Float(position) * inverse[j]
                cos[position * half + j] = Foundation.cos(angle)
                sin[position * half + j] = Foundation.sin(angle)
            }
        }
        return (try backend.tensor(cos, shape: [length, half]), try backend.tensor(sin, shape: [length, half]))
    }
}
