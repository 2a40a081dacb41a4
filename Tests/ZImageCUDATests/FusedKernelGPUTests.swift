import Foundation
import Testing
import ZImageCPU
import ZImageCUDA
import ZImageTensor
import ZImageTestSupport

/// Where a CUDA GPU is present, each fused kernel and flash attention against its composed
/// reference on the CPU (`FusedReference` through the CPU backend's defaults), with fixed seeds
/// and NaN-poisoned outputs. Without a GPU (CI) the suite is skipped, and says so.
enum GPUForTests {
    nonisolated(unsafe) static let backend: CUDABackend? = {
        guard let backend = try? CUDABackend(ordinal: 0) else { return nil }
        backend.poisonAllocations = true
        return backend
    }()
    static var available: Bool { backend != nil }
}

/// Serialized: the tests share one backend, which one thread at a time may drive (run in parallel,
/// two first launches of a kernel raced on its shared-memory limit: CUDA_ERROR_INVALID_VALUE).
@Suite(.serialized, .enabled(if: GPUForTests.available, "no CUDA GPU here: the fused-kernel GPU tests are skipped"))
struct FusedKernelGPUTests {
    let cpu = CPUBackend()

    /// Deterministic normals (Box–Muller over a 64-bit LCG), `scale` standard deviation.
    func normals(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(state >> 40) + 0.5) / Float(1 << 24)
        }
        return (0..<count).map { _ in (-2 * Foundation.log(uniform())).squareRoot() * Foundation.cos(2 * .pi * uniform()) * scale }
    }

    func pair(_ shape: Shape, _ dtype: DType, seed: UInt64, scale: Float = 1) throws -> (Tensor, Tensor) {
        let host = try cpu.tensor(normals(shape.count, seed: seed, scale: scale), shape: shape, dtype: dtype)
        return (host, try host.to(try #require(GPUForTests.backend)))
    }

    @Test func normsAndGates() throws {
        let (x, gx) = try pair([77, 3840], .bfloat16, seed: 1), (y, gy) = try pair([77, 3840], .bfloat16, seed: 2)
        let (w, gw) = try pair([3840], .bfloat16, seed: 3), (s, gs) = try pair([1, 3840], .bfloat16, seed: 4, scale: 0.3)
        #expect(try relativeError(gx.rmsNorm(weight: gw, eps: 1e-5, scale: gs), x.rmsNorm(weight: w, eps: 1e-5, scale: s)) < 1e-2)
        #expect(try relativeError(gx.addingGatedRMSNorm(of: gy, weight: gw, gate: gs, eps: 1e-5),
                                  x.addingGatedRMSNorm(of: y, weight: w, gate: s, eps: 1e-5)) < 1e-2)
        #expect(try relativeError(gx.addingGatedRMSNorm(of: gy, weight: gw, gate: nil, eps: 1e-5),
                                  x.addingGatedRMSNorm(of: y, weight: w, gate: nil, eps: 1e-5)) < 1e-2)
        let (a, ga) = try pair([77, 1024], .bfloat16, seed: 5), (b, gb) = try pair([77, 1024], .bfloat16, seed: 6)
        #expect(try relativeError(ga.siluMultiply(gb), a.siluMultiply(b)) < 1e-2)
    }

    @Test func headNormAndRoPE() throws {
        let (h, gh) = try pair([1, 77, 30, 128], .bfloat16, seed: 7), (w, gw) = try pair([128], .bfloat16, seed: 8)
        let (c, gc) = try pair([77, 64], .float32, seed: 9), (s, gs) = try pair([77, 64], .float32, seed: 10)
        #expect(try relativeError(gh.rmsNormRope(weight: gw, eps: 1e-5, cos: gc, sin: gs, layout: .interleavedPairs),
                                  h.rmsNormRope(weight: w, eps: 1e-5, cos: c, sin: s, layout: .interleavedPairs)) < 1e-2)
    }

    @Test(arguments: [(1100, 1100, 2, 2, false), (77, 300, 8, 2, false), (130, 130, 4, 2, true)])
    func flashAttention(_ lq: Int, _ lk: Int, _ hq: Int, _ hk: Int, _ causal: Bool) throws {
        let (q, gq) = try pair([2, lq, hq, 128], .bfloat16, seed: 11)
        let (k, gk) = try pair([2, lk, hk, 128], .bfloat16, seed: 12), (v, gv) = try pair([2, lk, hk, 128], .bfloat16, seed: 13)
        let mask = try cpu.tensor((0..<(2 * lk)).map { $0 % 7 == 3 ? 0 : 1 }, shape: [2, lk])
        let gmask = try mask.to(try #require(GPUForTests.backend))
        #expect(try relativeError(gq.attention(key: gk, value: gv, keyMask: gmask, causal: causal),
                                  q.attention(key: k, value: v, keyMask: mask, causal: causal)) < 1e-2)
    }

    /// Long and unmasked: cuDNN's fused attention where cuDNN ≥ 9.13 is present, else our kernel.
    @Test(arguments: [(1, 1100, 1100, 4, 4), (2, 600, 700, 6, 2)])
    func longUnmaskedAttention(_ batch: Int, _ lq: Int, _ lk: Int, _ hq: Int, _ hk: Int) throws {
        let (q, gq) = try pair([batch, lq, hq, 128], .bfloat16, seed: 27)
        let (k, gk) = try pair([batch, lk, hk, 128], .bfloat16, seed: 28), (v, gv) = try pair([batch, lk, hk, 128], .bfloat16, seed: 29)
        #expect(try relativeError(gq.attention(key: gk, value: gv), q.attention(key: k, value: v)) < 1e-2)
    }

    @Test(arguments: [([1, 32, 256, 256], 8), ([2, 16, 9, 11], 4)] as [([Int], Int)])
    func groupNormAndSiLU(_ shape: [Int], _ groups: Int) throws {
        let (x, gx) = try pair(Shape(shape), .bfloat16, seed: 14)
        let (w, gw) = try pair([shape[1]], .bfloat16, seed: 15), (b, gb) = try pair([shape[1]], .bfloat16, seed: 16)
        #expect(try relativeError(gx.groupNormSiLU(groups: groups, weight: gw, bias: gb, eps: 1e-6),
                                  x.groupNormSiLU(groups: groups, weight: w, bias: b, eps: 1e-6)) < 1e-2)
        #expect(try relativeError(gx.groupNorm(groups: groups, weight: gw, bias: gb, eps: 1e-6),
                                  x.groupNorm(groups: groups, weight: w, bias: b, eps: 1e-6)) < 1e-2)
    }

    @Test func convolutionWithBias() throws {
        let (x, gx) = try pair([1, 64, 40, 40], .bfloat16, seed: 17)
        let (w, gw) = try pair([32, 64, 3, 3], .bfloat16, seed: 18, scale: 0.05), (b, gb) = try pair([32], .bfloat16, seed: 19)
        #expect(try relativeError(gx.conv2d(weight: gw, bias: gb, padding: 1), x.conv2d(weight: w, bias: b, padding: 1)) < 1e-2)
    }

    @Test func convolutionBatchedFloat16AndOddPlanes() throws {
        // Two images, f16, a 1×1 filter and a 5×7 plane (tiles partly outside the 64×64 blocks).
        let (x, gx) = try pair([2, 70, 5, 7], .float16, seed: 20)
        let (w, gw) = try pair([3, 70, 1, 1], .float16, seed: 21, scale: 0.1), (b, gb) = try pair([3], .float16, seed: 22)
        #expect(try relativeError(gx.conv2d(weight: gw, bias: gb), x.conv2d(weight: w, bias: b)) < 1e-2)
        #expect(try relativeError(gx.conv2d(weight: gw, bias: nil, stride: 2), x.conv2d(weight: w, bias: nil, stride: 2)) < 1e-2)
    }

    @Test(arguments: [DType.bfloat16, .float16, .float32])
    func rgb8MatchesTheHost(_ dtype: DType) throws {
        let (image, gimage) = try pair([1, 3, 37, 53], dtype, seed: 33, scale: 0.8)
        #expect(try cpu.rgb8(image).toBytes() == gimage.backend.rgb8(gimage).toBytes())
    }

    @Test func float8QuantisationMatchesTheHostBitForBit() throws {
        let gpu = try #require(GPUForTests.backend)
        try #require(gpu.supportsFloat8, "this GPU has no FP8 tensor cores")
        var values = normals(64 * 3840, seed: 23)
        for i in 0..<3840 { values[5 * 3840 + i] = 0; values[9 * 3840 + i] *= 3e4 }
        let host = try cpu.tensor(values, shape: [64, 3840], dtype: .bfloat16), device = try host.to(gpu)
        let (qc, qg) = (try cpu.quantizeRowsFloat8(host), try gpu.quantizeRowsFloat8(device))
        #expect(try qc.values.toBytes() == qg.values.toBytes())
        #expect(try qc.scales.toFloats() == qg.scales.toFloats())
    }

    @Test(arguments: [1536, 3840])
    func float8NormQuantisationMatchesTheTwoKernels(_ width: Int) throws {
        let gpu = try #require(GPUForTests.backend)
        try #require(gpu.supportsFloat8, "this GPU has no FP8 tensor cores")
        let (x, gx) = try pair([70, width], .bfloat16, seed: 30), (w, gw) = try pair([width], .bfloat16, seed: 31)
        let (s, gs) = try pair([1, width], .bfloat16, seed: 32, scale: 0.3)
        let fused = try gpu.rmsNormScaledFloat8(gx, weight: gw, scale: gs, eps: 1e-5)
        let separate = try gpu.quantizeRowsFloat8(gx.rmsNorm(weight: gw, eps: 1e-5, scale: gs))
        #expect(try fused.values.toBytes() == separate.values.toBytes())
        #expect(try fused.scales.toFloats() == separate.scales.toFloats())
        let host = try cpu.quantizeRowsFloat8(x.rmsNorm(weight: w, eps: 1e-5, scale: s))
        let differing = zip(try host.values.toBytes(), try fused.values.toBytes()).filter { $0 != $1 }.count
        #expect(differing <= width * 70 / 100, "\(differing) codes differ from the CPU's")   // float sum order only
    }

    @Test func float8LinearMatchesTheDequantisedProduct() throws {
        let gpu = try #require(GPUForTests.backend)
        try #require(gpu.supportsFloat8, "this GPU has no FP8 tensor cores")
        let (x, gx) = try pair([100, 1024], .bfloat16, seed: 24), (w, gw) = try pair([768, 1024], .bfloat16, seed: 25, scale: 0.03)
        let (b, gb) = try pair([768], .bfloat16, seed: 26)
        let reference = try cpu.float8Linear(cpu.quantizeRowsFloat8(x), cpu.quantizeRowsFloat8(w), bias: b, dtype: .bfloat16)
        let result = try gpu.float8Linear(gpu.quantizeRowsFloat8(gx), gpu.quantizeRowsFloat8(gw), bias: gb, dtype: .bfloat16)
        #expect(result.shape == [100, 768])
        #expect(try relativeError(result, reference) < 1e-2)
    }

    @Test func int8QuantisationAndWideningMatchTheHostBitForBit() throws {
        let gpu = try #require(GPUForTests.backend)
        var values = normals(64 * 3840, seed: 34)
        for i in 0..<3840 { values[5 * 3840 + i] = 0; values[9 * 3840 + i] *= 3e4 }
        let host = try cpu.tensor(values, shape: [64, 3840], dtype: .bfloat16), device = try host.to(gpu)
        let (qc, qg) = (try cpu.quantizeRowsInt8(host), try gpu.quantizeRowsInt8(device))
        #expect(try qc.values.toBytes() == qg.values.toBytes())
        #expect(try qc.scales.toFloats() == qg.scales.toFloats())
        for dtype in [DType.bfloat16, .float16, .float32] {
            #expect(try cpu.dequantizeRows(qc, dtype: dtype).toBytes() == gpu.dequantizeRows(qg, dtype: dtype).toBytes(),
                    "int8 widened to \(dtype)")
        }
    }

    /// FP8 storage without the FP8 GEMM (GPUs before compute capability 8.9): quantising needs no
    /// FP8 tensor cores, and the widened rows equal the host's.
    @Test func float8WideningMatchesTheHostBitForBit() throws {
        let gpu = try #require(GPUForTests.backend)
        let (host, device) = try pair([48, 1024], .bfloat16, seed: 35, scale: 0.05)
        let (qc, qg) = (try cpu.quantizeRowsFloat8(host), try gpu.quantizeRowsFloat8(device))
        #expect(try qc.values.toBytes() == qg.values.toBytes())
        for dtype in [DType.bfloat16, .float16, .float32] {
            #expect(try cpu.dequantizeRows(qc, dtype: dtype).toBytes() == gpu.dequantizeRows(qg, dtype: dtype).toBytes(),
                    "fp8 widened to \(dtype)")
        }
    }

    /// The int8 layer, and the FP8 layer with widening forced (`ZIMAGE_FP8_WIDEN=1`'s path), on the
    /// GPU against the CPU's: the dense product of the widened weight (bf16 GEMMs: within 1e-2).
    @Test(arguments: [LinearWeightFormat.int8, .float8])
    func widenedLinearLayersMatchTheReference(_ format: LinearWeightFormat) throws {
        let gpu = try #require(GPUForTests.backend)
        gpu.forcesFloat8Widening = true
        defer { gpu.forcesFloat8Widening = false }
        let (x, gx) = try pair([100, 1024], .bfloat16, seed: 36), (w, gw) = try pair([768, 1024], .bfloat16, seed: 37, scale: 0.03)
        let (b, gb) = try pair([768], .bfloat16, seed: 38)
        let (weight, deviceWeight) = (try LinearWeight(w, format: format), try LinearWeight(gw, format: format))
        let activation = try deviceWeight.prepare(gx)
        guard case .dense = activation else { Issue.record("a widened \(format) layer quantised its input"); return }
        let widened: Tensor
        switch weight {
        case .int8(let rows): widened = try cpu.dequantizeRows(rows, dtype: .bfloat16)
        case .float8(let rows): widened = try cpu.dequantizeRows(rows, dtype: .bfloat16)
        case .dense: Issue.record("not quantised"); return
        }
        let reference = try x.linear(widened, bias: b)
        let result = try deviceWeight.apply(activation, bias: gb)
        #expect(result.shape == [100, 768])
        #expect(try relativeError(result, reference) < 1e-2)
    }
}
