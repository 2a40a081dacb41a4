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
    /// Whether float16 activations keep the residual stream in float32, with the two
    /// projections that write it (`o_proj`, `down_proj`) and the SwiGLU product in float32
    /// (docs/notes/fp16.md). On by default; off only to show what it prevents (tests).
    public var guardsFloat16Overflow = true
    private let modules: Modules<LoadedParameters>

    /// The layers loaded, built from `Source`: each declares its keys (transformers' `model.`
    /// names) as it is built.
    struct Modules<Source: ParameterSource> {
        let embedTokens: Source.Value
        let layers: [Layer<Source>]

        /// The embeddings and layers `0 ..< num_hidden_layers − 1`.
        init(_ source: Source, _ c: Qwen3Configuration) throws(Source.Failure) {
            embedTokens = try source.tensor("model.embed_tokens.weight", shape: [c.vocabSize, c.hiddenSize])
            var layers: [Layer<Source>] = []
            for i in 0..<max(c.numHiddenLayers - 1, 0) { layers.append(try Layer(source, "model.layers.\(i).", c)) }
            self.layers = layers
        }
    }

    struct Layer<Source: ParameterSource> {
        let inputNorm: RMSNorm<Source>, postAttentionNorm: RMSNorm<Source>
        let q: Linear<Source>, k: Linear<Source>, v: Linear<Source>, o: Linear<Source>
        let qNorm: RMSNorm<Source>, kNorm: RMSNorm<Source>
        let gate: Linear<Source>, up: Linear<Source>, down: Linear<Source>

        init(_ source: Source, _ prefix: String, _ c: Qwen3Configuration) throws(Source.Failure) {
            let d = c.hiddenSize, hd = c.resolvedHeadDim, eps = Float(c.rmsNormEps)
            let queries = c.numAttentionHeads * hd, keys = c.numKeyValueHeads * hd, f = c.intermediateSize
            inputNorm = try RMSNorm(source, prefix + "input_layernorm", dimension: d, eps: eps)
            postAttentionNorm = try RMSNorm(source, prefix + "post_attention_layernorm", dimension: d, eps: eps)
            q = try Linear(source, prefix + "self_attn.q_proj", input: d, output: queries)
            k = try Linear(source, prefix + "self_attn.k_proj", input: d, output: keys)
            v = try Linear(source, prefix + "self_attn.v_proj", input: d, output: keys)
            o = try Linear(source, prefix + "self_attn.o_proj", input: queries, output: d)
            qNorm = try RMSNorm(source, prefix + "self_attn.q_norm", dimension: hd, eps: eps)
            kNorm = try RMSNorm(source, prefix + "self_attn.k_norm", dimension: hd, eps: eps)
            gate = try Linear(source, prefix + "mlp.gate_proj", input: d, output: f)
            up = try Linear(source, prefix + "mlp.up_proj", input: d, output: f)
            down = try Linear(source, prefix + "mlp.down_proj", input: f, output: d)
        }
    }

    /// The parameters loaded, as the layers declare them: embeddings and layers
    /// `0 ..< num_hidden_layers − 1`; the last layer, the final norm and the head are ignored.
    public static func parameterSpec(_ c: Qwen3Configuration) -> ParameterSpec {
        let declarations = ParameterDeclarations()
        _ = Modules(declarations, c)
        return declarations.spec(ignoring: ["model.layers.\(c.numHiddenLayers - 1).", "model.norm.", "lm_head."])
    }

    /// Loads the encoder from a checkpoint, verified against `parameterSpec`. `dtype` converts the
    /// weights at load (nil keeps the stored dtype; the CPU backend computes on bf16 weights directly).
    public init(configuration: Qwen3Configuration, weights: WeightSet, backend: any Backend, dtype: DType? = nil) throws {
        guard configuration.numHiddenLayers >= 2 else {
            throw WeightLoadingError.malformedJSON(path: "text_encoder/config.json", detail: "needs at least 2 layers")
        }
        self.configuration = configuration
        self.layerCount = configuration.numHiddenLayers - 1
        let spec = Self.parameterSpec(configuration)
        let store = try spec.load(from: Self.canonicalKeys(weights, spec: spec), component: "text_encoder",
                                  on: backend, dtype: dtype)
        modules = try Modules(LoadedParameters(store), configuration)
    }

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
        let backend = modules.embedTokens.backend
        let c = configuration, length = ids.count, hd = c.resolvedHeadDim
        let (cos, sin) = try ropeTables(length: length, backend: backend)
        // Guarded float16: the stream (and what writes it) in float32, the norms' outputs rounded to float16.
        let stream = activationDType == .float16 && guardsFloat16Overflow ? DType.float32 : activationDType
        var h = try modules.embedTokens.embedding(backend.tensor(ids: ids, shape: [length])).cast(to: stream)
        for layer in modules.layers {
            let x = try layer.inputNorm(h).cast(to: activationDType)
            let q = try layer.qNorm(layer.q(x).reshaped([1, length, c.numAttentionHeads, hd]))
                .rope(cos: cos, sin: sin, layout: .splitHalves)
            let k = try layer.kNorm(layer.k(x).reshaped([1, length, c.numKeyValueHeads, hd]))
                .rope(cos: cos, sin: sin, layout: .splitHalves)
            let v = try layer.v(x).reshaped([1, length, c.numKeyValueHeads, hd])
            let attention = try q.attention(key: k, value: v, causal: true).reshaped([length, c.numAttentionHeads * hd])
            h = try h + layer.o(attention.cast(to: stream))
            let y = try layer.postAttentionNorm(h).cast(to: activationDType)
            h = try h + layer.down(layer.gate(y).cast(to: stream).silu() * layer.up(y))
        }
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
