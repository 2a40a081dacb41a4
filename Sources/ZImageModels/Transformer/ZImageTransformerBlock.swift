import ZImageTensor
import ZImageWeights

/// One S3-DiT block (spec §3.4): sandwich RMSNorms around attention and the SwiGLU feed-forward,
/// with scale-only modulation and tanh gates from `c` (no shift, no SiLU before the projection).
/// The context refiner's blocks are unmodulated (scale 1, gate 1).
struct ZImageTransformerBlock {
    let attentionNorm1: RMSNorm, attentionNorm2: RMSNorm, ffnNorm1: RMSNorm, ffnNorm2: RMSNorm
    let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    let normQ: RMSNorm, normK: RMSNorm
    let w1: Linear, w2: Linear, w3: Linear
    let modulation: Linear?
    let heads: Int, headDim: Int

    static func parameterShapes(_ prefix: String, _ c: ZImageTransformerConfiguration, modulated: Bool) -> [String: Shape] {
        let d = c.dim, f = c.feedForwardDim
        var shapes: [String: Shape] = [
            "attention.to_q.weight": [d, d], "attention.to_k.weight": [d, d], "attention.to_v.weight": [d, d],
            "attention.to_out.0.weight": [d, d],
            "attention.norm_q.weight": [c.headDim], "attention.norm_k.weight": [c.headDim],
            "feed_forward.w1.weight": [f, d], "feed_forward.w3.weight": [f, d], "feed_forward.w2.weight": [d, f],
            "attention_norm1.weight": [d], "attention_norm2.weight": [d], "ffn_norm1.weight": [d], "ffn_norm2.weight": [d],
        ]
        if modulated {
            shapes["adaLN_modulation.0.weight"] = [4 * d, c.adaLNDim]
            shapes["adaLN_modulation.0.bias"] = [4 * d]
        }
        return Dictionary(uniqueKeysWithValues: shapes.map { (prefix + $0.key, $0.value) })
    }

    /// `linearFormat` is how the attention and feed-forward projections hold their weights (FP8
    /// for `--precision fp8`); the modulation stays dense.
    init(_ store: ParameterStore, _ prefix: String, _ c: ZImageTransformerConfiguration, modulated: Bool,
         linearFormat: LinearWeightFormat = .dense) throws {
        let eps = Float(c.normEps)
        attentionNorm1 = try RMSNorm(store, prefix + "attention_norm1.weight", eps: eps)
        attentionNorm2 = try RMSNorm(store, prefix + "attention_norm2.weight", eps: eps)
        ffnNorm1 = try RMSNorm(store, prefix + "ffn_norm1.weight", eps: eps)
        ffnNorm2 = try RMSNorm(store, prefix + "ffn_norm2.weight", eps: eps)
        toQ = try Linear(store, prefix + "attention.to_q", format: linearFormat)
        toK = try Linear(store, prefix + "attention.to_k", format: linearFormat)
        toV = try Linear(store, prefix + "attention.to_v", format: linearFormat)
        toOut = try Linear(store, prefix + "attention.to_out.0", format: linearFormat)
        // diffusers builds the q/k norms with eps 1e-5 whatever norm_eps says.
        normQ = try RMSNorm(store, prefix + "attention.norm_q.weight", eps: 1e-5)
        normK = try RMSNorm(store, prefix + "attention.norm_k.weight", eps: 1e-5)
        w1 = try Linear(store, prefix + "feed_forward.w1", format: linearFormat)
        w2 = try Linear(store, prefix + "feed_forward.w2", format: linearFormat)
        w3 = try Linear(store, prefix + "feed_forward.w3", format: linearFormat)
        modulation = modulated ? try Linear(store, prefix + "adaLN_modulation.0", bias: true) : nil
        heads = c.nHeads
        headDim = c.headDim
    }

    /// The modulation of this block for conditioning `c` `[1, adaLN]`: (scale_msa, gate_msa,
    /// scale_mlp, gate_mlp), each `[1, dim]`, scales as 1 + x and gates through tanh.
    func modulation(for c: Tensor) throws -> Modulation? {
        guard let modulation else { return nil }
        let m = try modulation(c)
        let d = m.shape[-1] / 4
        let chunk = { (i: Int) in try m.slice(axis: 1, (i * d)..<((i + 1) * d)) }
        return Modulation(scaleAttention: try chunk(0).affine(scale: 1, shift: 1), gateAttention: try chunk(1).tanh(),
                          scaleFeedForward: try chunk(2).affine(scale: 1, shift: 1), gateFeedForward: try chunk(3).tanh())
    }

    struct Modulation {
        let scaleAttention: Tensor, gateAttention: Tensor, scaleFeedForward: Tensor, gateFeedForward: Tensor
    }

    /// x `[L, dim]` (one sequence), RoPE tables `[L, head_dim/2]`. Each line is one fused Backend op
    /// whose reference default is the composition diffusers computes (FusedReference).
    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, modulation: Modulation?) throws -> Tensor {
        let length = x.shape[0]
        // q, k and v read the same normed input (for FP8 quantised once, by the norm's kernel).
        let input = try toQ.prepare(rmsNormOf: x, attentionNorm1, scale: modulation?.scaleAttention)
        let q = try toQ(input).reshaped([1, length, heads, headDim])
            .rmsNormRope(weight: normQ.weight, eps: normQ.eps, cos: cos, sin: sin, layout: .interleavedPairs)
        let k = try toK(input).reshaped([1, length, heads, headDim])
            .rmsNormRope(weight: normK.weight, eps: normK.eps, cos: cos, sin: sin, layout: .interleavedPairs)
        let v = try toV(input).reshaped([1, length, heads, headDim])
        let attended = try toOut(q.attention(key: k, value: v).reshaped([length, heads * headDim]))
        let h = try x.addingGatedRMSNorm(of: attended, weight: attentionNorm2.weight, gate: modulation?.gateAttention,
                                         eps: attentionNorm2.eps)
        let shared = try w1.prepare(rmsNormOf: h, ffnNorm1, scale: modulation?.scaleFeedForward)
        let fed = try w2(w1(shared).siluMultiply(w3(shared)))
        return try h.addingGatedRMSNorm(of: fed, weight: ffnNorm2.weight, gate: modulation?.gateFeedForward,
                                        eps: ffnNorm2.eps)
    }
}
