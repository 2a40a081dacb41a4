import Testing
import ZImageCPU
import ZImageTensor
import ZImageTestSupport

/// CPU ops against goldens computed by PyTorch in float64 (tools/fixtures/make_fixtures.py).
/// Bound: relative L2 error under 1e-5 in float32 (issue #2).
@Suite struct OpGoldenTests {
    let golden: OpGoldens
    let tolerance = 1e-5

    init() throws { golden = try OpGoldens() }

    func expectClose(_ result: Tensor, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = try golden.tensor("\(name).out")
        #expect(result.shape == expected.shape, "\(name): shape", sourceLocation: sourceLocation)
        let error = try relativeError(result, expected)
        #expect(error < tolerance, "\(name): relative error \(error)", sourceLocation: sourceLocation)
    }

    @Test func everyGoldenCaseIsCovered() {
        let covered: Set<String> = [
            "matmul_nn", "matmul_nt_bias", "matmul_batched_tn", "add_broadcast", "mul_broadcast", "scale", "rms_norm",
            "layer_norm_noaffine", "layer_norm", "group_norm", "silu", "gelu_erf", "gelu_tanh", "tanh", "softmax",
            "sdpa", "sdpa_mask", "sdpa_causal", "sdpa_gqa", "rope_interleaved", "rope_half", "conv2d_3x3",
            "conv2d_1x1", "upsample_nearest2x", "permute", "concat", "slice", "embedding", "cast_bf16", "cast_f16",
            "matmul_nt_bias_bf16", "rms_norm_bf16",
        ]
        #expect(Set(golden.cases) == covered)
    }

    @Test func matmul() throws {
        try expectClose(golden.tensor("matmul_nn.a").matmul(golden.tensor("matmul_nn.b")), "matmul_nn")
        try expectClose(golden.tensor("matmul_nt_bias.x").linear(golden.tensor("matmul_nt_bias.weight"),
                                                                  bias: golden.tensor("matmul_nt_bias.bias")),
                        "matmul_nt_bias")
        try expectClose(golden.tensor("matmul_batched_tn.a").matmul(golden.tensor("matmul_batched_tn.b"),
                                                                     transposeA: true), "matmul_batched_tn")
    }

    @Test func elementwise() throws {
        try expectClose(golden.tensor("add_broadcast.a") + golden.tensor("add_broadcast.b"), "add_broadcast")
        try expectClose(golden.tensor("mul_broadcast.a") * golden.tensor("mul_broadcast.b"), "mul_broadcast")
        let scale = try golden.parameters("scale")["scale"] as? Double ?? .nan
        try expectClose(golden.tensor("scale.x").affine(scale: Float(scale)), "scale")
        try expectClose(golden.tensor("silu.x").unary(.silu), "silu")
        try expectClose(golden.tensor("gelu_erf.x").unary(.gelu), "gelu_erf")
        try expectClose(golden.tensor("gelu_tanh.x").unary(.geluTanh), "gelu_tanh")
        try expectClose(golden.tensor("tanh.x").unary(.tanh), "tanh")
        try expectClose(golden.tensor("softmax.x").softmax(), "softmax")
    }

    @Test func normalization() throws {
        try expectClose(golden.tensor("rms_norm.x").rmsNorm(weight: golden.tensor("rms_norm.weight"), eps: 1e-5),
                        "rms_norm")
        try expectClose(golden.tensor("layer_norm_noaffine.x").layerNorm(eps: 1e-6), "layer_norm_noaffine")
        try expectClose(golden.tensor("layer_norm.x").layerNorm(weight: golden.tensor("layer_norm.weight"),
                                                                 bias: golden.tensor("layer_norm.bias"), eps: 1e-5),
                        "layer_norm")
        try expectClose(golden.tensor("group_norm.x").groupNorm(groups: 8, weight: golden.tensor("group_norm.weight"),
                                                                 bias: golden.tensor("group_norm.bias"), eps: 1e-6),
                        "group_norm")
    }

    /// Goldens are `[B, H, L, D]` (PyTorch SDPA); our attention is tokens-major `[B, L, H, D]`.
    func attention(_ name: String, mask: Bool = false, causal: Bool = false) throws -> Tensor {
        let toTokens = [0, 2, 1, 3]
        let q = try golden.tensor("\(name).q").permuted(toTokens)
        let k = try golden.tensor("\(name).k").permuted(toTokens)
        let v = try golden.tensor("\(name).v").permuted(toTokens)
        let keyMask = mask ? try golden.tensor("\(name).mask") : nil
        return try q.attention(key: k, value: v, keyMask: keyMask, causal: causal).permuted(toTokens)
    }

    @Test func attention() throws {
        try expectClose(attention("sdpa"), "sdpa")
        try expectClose(attention("sdpa_mask", mask: true), "sdpa_mask")
        try expectClose(attention("sdpa_causal", causal: true), "sdpa_causal")
        try expectClose(attention("sdpa_gqa"), "sdpa_gqa")
    }

    @Test func attentionInQueryBlocksMatchesOneBlock() throws {
        // A scratch budget of 4 × 23 × 4 elements forces 4-query blocks over the 17 queries.
        let banded = try OpGoldens(backend: CPUBackend(scratchElements: 4 * 23 * 4))
        let toTokens = [0, 2, 1, 3]
        let q = try banded.tensor("sdpa_mask.q").permuted(toTokens)
        let k = try banded.tensor("sdpa_mask.k").permuted(toTokens)
        let v = try banded.tensor("sdpa_mask.v").permuted(toTokens)
        let out = try q.attention(key: k, value: v, keyMask: banded.tensor("sdpa_mask.mask")).permuted(toTokens)
        try expectClose(out, "sdpa_mask")
    }

    @Test func rotaryEmbeddings() throws {
        let interleaved = try golden.tensor("rope_interleaved.x").rope(
            cos: golden.tensor("rope_interleaved.cos"), sin: golden.tensor("rope_interleaved.sin"),
            layout: .interleavedPairs)
        try expectClose(interleaved, "rope_interleaved")
        // HF layout: x [B, H, L, D] and cos/sin [L, D] whose halves repeat; ours takes [B, L, H, D] and [L, D/2].
        let x = try golden.tensor("rope_half.x").permuted([0, 2, 1, 3])
        let cos = try golden.tensor("rope_half.cos").slice(axis: 1, 0..<8)
        let sin = try golden.tensor("rope_half.sin").slice(axis: 1, 0..<8)
        let half = try x.rope(cos: cos, sin: sin, layout: .splitHalves).permuted([0, 2, 1, 3])
        try expectClose(half, "rope_half")
    }

    @Test func convolution() throws {
        try expectClose(golden.tensor("conv2d_3x3.x").conv2d(weight: golden.tensor("conv2d_3x3.weight"),
                                                              bias: golden.tensor("conv2d_3x3.bias"), padding: 1),
                        "conv2d_3x3")
        try expectClose(golden.tensor("conv2d_1x1.x").conv2d(weight: golden.tensor("conv2d_1x1.weight"),
                                                              bias: golden.tensor("conv2d_1x1.bias")), "conv2d_1x1")
        try expectClose(golden.tensor("upsample_nearest2x.x").upsampleNearest2x(), "upsample_nearest2x")
    }

    @Test func convolutionInRowBandsMatchesGolden() throws {
        // 36 × 9 × 2 scratch elements: bands of 2 output rows over 7.
        let banded = try OpGoldens(backend: CPUBackend(scratchElements: 36 * 9 * 2))
        let out = try banded.tensor("conv2d_3x3.x").conv2d(weight: banded.tensor("conv2d_3x3.weight"),
                                                            bias: banded.tensor("conv2d_3x3.bias"), padding: 1)
        try expectClose(out, "conv2d_3x3")
    }

    @Test func movement() throws {
        let dims = try #require(golden.parameters("permute")["dims"] as? [Int])
        try expectClose(golden.tensor("permute.x").permuted(dims), "permute")
        try expectClose(Tensor.concat([golden.tensor("concat.a"), golden.tensor("concat.b")], axis: 1), "concat")
        let p = try golden.parameters("slice")
        let dim = try #require(p["dim"] as? Int), start = try #require(p["start"] as? Int)
        let end = try #require(p["end"] as? Int)
        try expectClose(golden.tensor("slice.x").slice(axis: dim, start..<end), "slice")
        try expectClose(golden.tensor("embedding.weight").embedding(golden.tensor("embedding.ids")), "embedding")
    }

    /// Casts are bit-exact with PyTorch, special values included; NaN only has to stay NaN
    /// (PyTorch's vectorised CPU cast writes 0xFFFF, its scalar path 0x7FC0).
    @Test func castsAreBitExact() throws {
        for (name, dtype) in [("cast_bf16", DType.bfloat16), ("cast_f16", .float16)] {
            let ours = try golden.tensor("\(name).x").cast(to: dtype)
            let theirs = try golden.tensor("\(name).out")
            let (a, b) = (try ours.toFloats(), try theirs.toFloats())
            let (abits, bbits) = (try ours.toBytes(), try theirs.toBytes())
            var mismatches = 0
            for i in 0..<a.count {
                if a[i].isNaN || b[i].isNaN {
                    if a[i].isNaN != b[i].isNaN { mismatches += 1 }
                } else if abits[2 * i] != bbits[2 * i] || abits[2 * i + 1] != bbits[2 * i + 1] {
                    mismatches += 1
                }
            }
            #expect(a.count == 72 || a.count == 69)
            #expect(mismatches == 0, "\(name): \(mismatches) elements differ")
        }
    }

    /// bf16 inputs: within bf16 rounding of the float64 reference, and at most one bf16 step
    /// from PyTorch's own bf16 result.
    @Test func bfloat16Ops() throws {
        let linear = try golden.tensor("matmul_nt_bias_bf16.x").linear(
            golden.tensor("matmul_nt_bias_bf16.weight"), bias: golden.tensor("matmul_nt_bias_bf16.bias"))
        #expect(linear.dtype == .bfloat16)
        #expect(try relativeError(linear, golden.tensor("matmul_nt_bias_bf16.out_f32ref")) < 1.0 / 256)
        #expect(try maximumULPDistance(linear, golden.tensor("matmul_nt_bias_bf16.out")) <= 1)

        let eps = try #require(golden.parameters("rms_norm_bf16")["eps"] as? Double)
        let norm = try golden.tensor("rms_norm_bf16.x").rmsNorm(weight: golden.tensor("rms_norm_bf16.weight"),
                                                                 eps: Float(eps))
        #expect(try relativeError(norm, golden.tensor("rms_norm_bf16.out_f32ref")) < 1.0 / 256)
        #expect(try maximumULPDistance(norm, golden.tensor("rms_norm_bf16.out")) <= 1)
    }
}
