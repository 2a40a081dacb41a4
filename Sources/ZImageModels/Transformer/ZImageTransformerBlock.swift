import ZImageTensor
import ZImageWeights

/// One S3-DiT block (diffusers 0.42.1 `ZImageTransformerBlock`): sandwich RMSNorms around
/// attention and the SwiGLU feed-forward, with scale-only modulation and tanh gates from `c` (no
/// shift, no SiLU before the projection). The context refiner's blocks are unmodulated (scale 1,
/// gate 1).
struct ZImageTransformerBlock<Source: ParameterSource> {
    let attentionNorm1: RMSNorm<Source>, attentionNorm2: RMSNorm<Source>
    let ffnNorm1: RMSNorm<Source>, ffnNorm2: RMSNorm<Source>
    let toQ: Linear<Source>, toK: Linear<Source>, toV: Linear<Source>, toOut: Linear<Source>
    let normQ: RMSNorm<Source>, normK: RMSNorm<Source>
    let w1: Linear<Source>, w2: Linear<Source>, w3: Linear<Source>
    let modulation: Linear<Source>?
    let heads: Int, headDim: Int

    /// The block whose keys start with `prefix` (`layers.3.`). `linearFormat` is how the attention
    /// and feed-forward projections hold their weights (FP8 for `--precision fp8`); the
    /// modulation stays dense.
    init(_ source: Source, _ prefix: String, _ c: ZImageTransformerConfiguration, modulated: Bool,
         linearFormat: LinearWeightFormat = .dense) throws(Source.Failure) {
        let d = c.dim, f = c.feedForwardDim, eps = Float(c.normEps)
        func projection(_ name: String, input: Int, output: Int) throws(Source.Failure) -> Linear<Source> {
            try Linear(source, prefix + name, input: input, output: output, format: linearFormat)
        }
        attentionNorm1 = try RMSNorm(source, prefix + "attention_norm1", dimension: d, eps: eps)
        attentionNorm2 = try RMSNorm(source, prefix + "attention_norm2", dimension: d, eps: eps)
        ffnNorm1 = try RMSNorm(source, prefix + "ffn_norm1", dimension: d, eps: eps)
        ffnNorm2 = try RMSNorm(source, prefix + "ffn_norm2", dimension: d, eps: eps)
        toQ = try projection("attention.to_q", input: d, output: d)
        toK = try projection("attention.to_k", input: d, output: d)
        toV = try projection("attention.to_v", input: d, output: d)
        toOut = try projection("attention.to_out.0", input: d, output: d)
        // diffusers builds the q/k norms with eps 1e-5 whatever norm_eps says.
        normQ = try RMSNorm(source, prefix + "attention.norm_q", dimension: c.headDim, eps: 1e-5)
        normK = try RMSNorm(source, prefix + "attention.norm_k", dimension: c.headDim, eps: 1e-5)
        w1 = try projection("feed_forward.w1", input: d, output: f)
        w2 = try projection("feed_forward.w2", input: f, output: d)
        w3 = try projection("feed_forward.w3", input: d, output: f)
        if modulated {
            modulation = try Linear(source, prefix + "adaLN_modulation.0", input: c.adaLNDim, output: 4 * d, bias: true)
        } else {
            modulation = nil
        }
        heads = c.nHeads
        headDim = c.headDim
    }
}

extension ZImageTransformerBlock where Source == LoadedParameters {
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
    /// whose reference default is the composition diffusers computes (FusedReference). `compute`
    /// other than x's dtype (a float32 stream for float16) takes the float16 path (`float16Guarded`).
    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, modulation: Modulation?,
                        compute: DType? = nil) throws -> Tensor {
        if let compute, compute != x.dtype {
            return try float16Guarded(x, cos: cos, sin: sin, modulation: modulation, compute: compute)
        }
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
