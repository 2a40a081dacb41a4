import ZImageTensor
import ZImageWeights

/// The block's float16 path (docs/notes/fp16.md): the residual stream stays in float32 and only
/// values with a bound go to float16, so no op rounds a value past 65504 (→ inf, then NaN in the
/// next norm: the black images of other Z-Image tools in fp16).
///
/// - GEMM inputs are RMS-normalised rows (× the norm weight and modulation scale), rounded to
///   float16 once, so q, k, v, w1 and w3 read bounded values;
/// - the SwiGLU product `silu(w1 x) · w3 x` (the square of activations, where fp16 first
///   overflows) is formed in float32;
/// - the inputs of the two projections that end a branch (`to_out`, `w2`) are scaled to unit RMS
///   per token before they are rounded: each branch ends in an RMSNorm (`attention_norm2`,
///   `ffn_norm2`) and neither projection has a bias, so the per-token scale cancels
///   (`RMSNorm(W·(h/r)) = RMSNorm(W·h)` with eps read as eps·r²) while the products stay within
///   √K·‖W_j‖ of zero;
/// - the post-norms, gates and residual additions run in float32.
extension ZImageTransformerBlock where Source == LoadedParameters {
    /// RMS normalisation without a weight, for rows whose scale the next norm cancels. The eps
    /// only keeps an all-zero row at zero (float16 squares are ≥ 3.6e-15 when nonzero).
    static var unitRMSEps: Float { 1e-30 }

    /// x `[L, dim]` float32; the projections, attention and q/k norms in `compute` (float16).
    func float16Guarded(_ x: Tensor, cos: Tensor, sin: Tensor, modulation: Modulation?,
                        compute: DType) throws -> Tensor {
        let length = x.shape[0]
        let input = try toQ.prepare(x.rmsNorm(weight: attentionNorm1.weight, eps: attentionNorm1.eps,
                                              scale: modulation?.scaleAttention).cast(to: compute))
        let q = try toQ(input).reshaped([1, length, heads, headDim])
            .rmsNormRope(weight: normQ.weight, eps: normQ.eps, cos: cos, sin: sin, layout: .interleavedPairs)
        let k = try toK(input).reshaped([1, length, heads, headDim])
            .rmsNormRope(weight: normK.weight, eps: normK.eps, cos: cos, sin: sin, layout: .interleavedPairs)
        let v = try toV(input).reshaped([1, length, heads, headDim])
        let attention = try q.attention(key: k, value: v).reshaped([length, heads * headDim])
        let attended = try toOut(attention.rmsNorm(weight: nil, eps: Self.unitRMSEps))
        let h = try x.addingGatedRMSNorm(of: attended.cast(to: x.dtype), weight: attentionNorm2.weight,
                                         gate: modulation?.gateAttention, eps: attentionNorm2.eps)
        let shared = try w1.prepare(h.rmsNorm(weight: ffnNorm1.weight, eps: ffnNorm1.eps,
                                              scale: modulation?.scaleFeedForward).cast(to: compute))
        let product = try w1(shared).cast(to: x.dtype).siluMultiply(w3(shared))
        let fed = try w2(product.rmsNorm(weight: nil, eps: Self.unitRMSEps).cast(to: compute))
        return try h.addingGatedRMSNorm(of: fed.cast(to: x.dtype), weight: ffnNorm2.weight,
                                        gate: modulation?.gateFeedForward, eps: ffnNorm2.eps)
    }
}
