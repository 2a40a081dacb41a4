import Foundation
import ZImageCPU
import ZImageCUDA
import ZImagePipeline
import ZImageTensor
import ZImageTestSupport

/// The CUDA backend's ops and fused kernels against the CPU backend on fresh random inputs
/// (outputs poisoned first), each within its row's relative-error bound, and the cuBLASLt bf16
/// rate for a 4096×3840×10240 product.
enum CUDACheck {
    struct Row {
        var name: String
        var error: Double
        var bound: Double
        var passed: Bool { error < bound }
    }

    static func run(nvrtcPath: String?, tinyModelPath: String? = nil) throws -> [String: Any] {
        _ = try CUDADriver.shared()   // "no CUDA driver found" comes first
        let nvrtc = try NVRTC(extraCandidates: nvrtcPath.map { [$0] } ?? [])
        let gpu = try CUDABackend(ordinal: 0, nvrtc: nvrtc)
        let cpu = CPUBackend()
        var random = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))   // fresh inputs each run
        var rows: [Row] = []

        func pair(_ shape: Shape, _ dtype: DType, scale: Float = 1) throws -> (Tensor, Tensor) {
            let values = random.normals(shape.count, scale: scale)
            let host = try cpu.tensor(values, shape: shape, dtype: dtype)
            return (host, try host.to(gpu))
        }
        func check(_ name: String, bound: Double, _ cpuResult: Tensor, _ gpuResult: Tensor) throws {
            rows.append(Row(name: name, error: relativeError(try gpuResult.toFloats(), try cpuResult.toFloats()),
                            bound: bound))
        }
        // Every output starts as NaN bytes, so an element no kernel wrote fails the check.
        gpu.poisonAllocations = true

        for dtype in [DType.float32, .bfloat16, .float16] {
            let tag = dtype.safetensorsName
            // float32 arithmetic lands far under 1e-5; half types are compared after one rounding each side.
            let bound = dtype == .float32 ? 1e-5 : 1e-2
            let (a, ga) = try pair([3, 257, 129], dtype), (b, gb) = try pair([257, 1], dtype)
            for op in BinaryOp.allCases where op != .divide {
                try check("\(op.rawValue) broadcast \(tag)", bound: bound, a.binary(op, b), ga.binary(op, gb))
            }
            let (d, gd) = try pair([257, 1], dtype)
            let divisor = try d.affine(scale: 0.25, shift: 2), gDivisor = try gd.affine(scale: 0.25, shift: 2)
            try check("divide broadcast \(tag)", bound: bound, a.binary(.divide, divisor), ga.binary(.divide, gDivisor))
            for op in UnaryOp.allCases {
                try check("\(op.rawValue) \(tag)", bound: bound, a.unary(op), ga.unary(op))
            }
            try check("affine \(tag)", bound: bound, a.affine(scale: 0.7, shift: -0.2), ga.affine(scale: 0.7, shift: -0.2))
            let (x, gx) = try pair([77, 3840], dtype), (w, gw) = try pair([3840], dtype)
            try check("rmsNorm 3840 \(tag)", bound: bound, x.rmsNorm(weight: w, eps: 1e-5), gx.rmsNorm(weight: gw, eps: 1e-5))
            try check("rmsNorm 128 no weight \(tag)", bound: bound, a.reshaped([-1, 129]).rmsNorm(weight: nil, eps: 1e-6),
                      ga.reshaped([-1, 129]).rmsNorm(weight: nil, eps: 1e-6))
            for target in [DType.float32, .bfloat16, .float16] where target != dtype {
                try check("cast \(tag)->\(target.safetensorsName)", bound: 1e-7, a.cast(to: target), ga.cast(to: target))
            }
            // Linear layout with bias, a batched product with transposed A, and a plain product.
            let (h, gh) = try pair([2, 100, 384], dtype), (wt, gwt) = try pair([520, 384], dtype, scale: 0.05)
            let (bias, gbias) = try pair([520], dtype)
            let matmulBound = dtype == .float32 ? 1e-5 : 1e-2
            try check("linear+bias [2,100,384]x[520,384]^T \(tag)", bound: matmulBound,
                      h.linear(wt, bias: bias), gh.linear(gwt, bias: gbias))
            let (ta, gta) = try pair([3, 64, 33], dtype), (tb, gtb) = try pair([3, 64, 47], dtype)
            try check("batched A^T B [3,64,33]x[3,64,47] \(tag)", bound: matmulBound,
                      ta.matmul(tb, transposeA: true), gta.matmul(gtb, transposeA: true))
            let (na, gna) = try pair([130, 70], dtype), (nb, gnb) = try pair([70, 90], dtype)
            try check("matmul [130,70]x[70,90] \(tag)", bound: matmulBound, na.matmul(nb), gna.matmul(gnb))
        }

        // The rest of the op set, float32 and bf16.
        for dtype in [DType.float32, .bfloat16] {
            let tag = dtype.safetensorsName, bound = dtype == .float32 ? 1e-5 : 1e-2
            let (x, gx) = try pair([6, 37, 200], dtype)
            try check("softmax \(tag)", bound: bound, x.softmax(), gx.softmax())
            let (w, gw) = try pair([200], dtype), (bb, gbb) = try pair([200], dtype)
            try check("layerNorm affine \(tag)", bound: bound, x.layerNorm(weight: w, bias: bb, eps: 1e-5),
                      gx.layerNorm(weight: gw, bias: gbb, eps: 1e-5))
            try check("layerNorm plain \(tag)", bound: bound, x.layerNorm(eps: 1e-6), gx.layerNorm(eps: 1e-6))
            let (image, gimage) = try pair([2, 32, 9, 11], dtype), (gw2, ggw2) = try pair([32], dtype)
            try check("groupNorm \(tag)", bound: bound, image.groupNorm(groups: 8, weight: gw2, bias: gw2, eps: 1e-6),
                      gimage.groupNorm(groups: 8, weight: ggw2, bias: ggw2, eps: 1e-6))
            let (r, gr) = try pair([2, 7, 3, 32], dtype)
            let (cs, gcs) = try pair([7, 16], .float32), (sn, gsn) = try pair([7, 16], .float32)
            for layout in [RoPELayout.interleavedPairs, .splitHalves] {
                try check("rope \(layout.rawValue) \(tag)", bound: bound, r.rope(cos: cs, sin: sn, layout: layout),
                          gr.rope(cos: gcs, sin: gsn, layout: layout))
            }
            let (q, gq) = try pair([2, 19, 4, 32], dtype), (k, gk) = try pair([2, 23, 2, 32], dtype)
            let (v, gv) = try pair([2, 23, 2, 32], dtype)
            try check("attention GQA \(tag)", bound: bound, q.attention(key: k, value: v), gq.attention(key: gk, value: gv))
            let maskValues: [Float] = (0..<46).map { $0 % 5 == 3 ? 0 : 1 }
            let mask = try cpu.tensor(maskValues, shape: [2, 23]), gmask = try mask.to(gpu)
            try check("attention masked \(tag)", bound: bound, q.attention(key: k, value: v, keyMask: mask),
                      gq.attention(key: gk, value: gv, keyMask: gmask))
            let (cq, gcq) = try pair([1, 23, 2, 32], dtype)
            try check("attention causal \(tag)", bound: bound, cq.attention(key: k.rows(0..<1), value: v.rows(0..<1), causal: true),
                      gcq.attention(key: gk.rows(0..<1), value: gv.rows(0..<1), causal: true))
            let (kernel, gkernel) = try pair([16, 32, 3, 3], dtype, scale: 0.1), (cb, gcb) = try pair([16], dtype)
            try check("conv2d 3x3 pad 1 \(tag)", bound: bound, image.conv2d(weight: kernel, bias: cb, padding: 1),
                      gimage.conv2d(weight: gkernel, bias: gcb, padding: 1))
            try check("conv2d 3x3 stride 2 \(tag)", bound: bound, image.conv2d(weight: kernel, bias: nil, stride: 2),
                      gimage.conv2d(weight: gkernel, bias: nil, stride: 2))
            let (pointwise, gpointwise) = try pair([5, 32, 1, 1], dtype)
            try check("conv2d 1x1 \(tag)", bound: bound, image.conv2d(weight: pointwise, bias: nil),
                      gimage.conv2d(weight: gpointwise, bias: nil))
            try check("upsample2x \(tag)", bound: 1e-7, image.upsampleNearest2x(), gimage.upsampleNearest2x())
            try check("permute \(tag)", bound: 1e-7, image.permuted([0, 2, 3, 1]), gimage.permuted([0, 2, 3, 1]))
            try check("slice \(tag)", bound: 1e-7, image.slice(axis: 2, 2..<7), gimage.slice(axis: 2, 2..<7))
            try check("concat \(tag)", bound: 1e-7, Tensor.concat([image, image.slice(axis: 1, 0..<5)], axis: 1),
                      Tensor.concat([gimage, gimage.slice(axis: 1, 0..<5)], axis: 1))
            let (table, gtable) = try pair([50, 12], dtype)
            let ids = try cpu.tensor(ids: [3, 0, 49, 7], shape: [2, 2])
            try check("embedding \(tag)", bound: 1e-7, table.embedding(ids), gtable.embedding(ids.to(gpu)))
        }

        // The fused kernels (bf16) against their composed reference on the CPU (FusedReference),
        // and flash attention against the CPU's attention, at DiT-like shapes.
        do {
            let (x, gx) = try pair([77, 3840], .bfloat16), (y, gy) = try pair([77, 3840], .bfloat16)
            let (w, gw) = try pair([3840], .bfloat16), (s, gs) = try pair([1, 3840], .bfloat16, scale: 0.3)
            try check("fused rmsNorm·scale bf16", bound: 1e-2, x.rmsNorm(weight: w, eps: 1e-5, scale: s),
                      gx.rmsNorm(weight: gw, eps: 1e-5, scale: gs))
            try check("fused rmsNorm no scale bf16", bound: 1e-2, x.rmsNorm(weight: w, eps: 1e-5, scale: nil),
                      gx.rmsNorm(weight: gw, eps: 1e-5, scale: nil))
            try check("fused gated residual bf16", bound: 1e-2, x.addingGatedRMSNorm(of: y, weight: w, gate: s, eps: 1e-5),
                      gx.addingGatedRMSNorm(of: gy, weight: gw, gate: gs, eps: 1e-5))
            try check("fused residual no gate bf16", bound: 1e-2, x.addingGatedRMSNorm(of: y, weight: w, gate: nil, eps: 1e-5),
                      gx.addingGatedRMSNorm(of: gy, weight: gw, gate: nil, eps: 1e-5))
            let (h, gh) = try pair([1, 77, 30, 128], .bfloat16), (hw, ghw) = try pair([128], .bfloat16)
            let (cs, gcs) = try pair([77, 64], .float32), (sn, gsn) = try pair([77, 64], .float32)
            try check("fused rmsNorm+rope bf16", bound: 1e-2,
                      h.rmsNormRope(weight: hw, eps: 1e-5, cos: cs, sin: sn, layout: .interleavedPairs),
                      gh.rmsNormRope(weight: ghw, eps: 1e-5, cos: gcs, sin: gsn, layout: .interleavedPairs))
            let (a, ga) = try pair([77, 1024], .bfloat16), (b, gb) = try pair([77, 1024], .bfloat16)
            try check("fused silu·mul bf16", bound: 1e-2, a.siluMultiply(b), ga.siluMultiply(gb))
            for (lq, lk, hq, hk) in [(1100, 1100, 2, 2), (77, 300, 8, 2), (600, 700, 6, 2)] {
                let (q, gq) = try pair([2, lq, hq, 128], .bfloat16), (k, gk) = try pair([2, lk, hk, 128], .bfloat16)
                let (v, gv) = try pair([2, lk, hk, 128], .bfloat16)
                try check("flash attention \(lq)x\(lk) heads \(hq)/\(hk) bf16", bound: 1e-2,
                          q.attention(key: k, value: v), gq.attention(key: gk, value: gv))
                let maskValues: [Float] = (0..<(2 * lk)).map { $0 % 7 == 3 ? 0 : 1 }
                let mask = try cpu.tensor(maskValues, shape: [2, lk]), gmask = try mask.to(gpu)
                try check("flash attention masked \(lq)x\(lk) bf16", bound: 1e-2,
                          q.attention(key: k, value: v, keyMask: mask), gq.attention(key: gk, value: gv, keyMask: gmask))
            }
            for (shape, groups) in [([1, 64, 64, 64], 32), ([1, 32, 256, 256], 8), ([2, 16, 9, 11], 4)] as [([Int], Int)] {
                let (image, gimage) = try pair(Shape(shape), .bfloat16), (gw, ggw) = try pair([shape[1]], .bfloat16)
                let (gb, ggb) = try pair([shape[1]], .bfloat16)
                try check("groupNorm \(shape) bf16", bound: 1e-2, image.groupNorm(groups: groups, weight: gw, bias: gb, eps: 1e-6),
                          gimage.groupNorm(groups: groups, weight: ggw, bias: ggb, eps: 1e-6))
                try check("fused groupNorm+SiLU \(shape) bf16", bound: 1e-2,
                          image.groupNormSiLU(groups: groups, weight: gw, bias: gb, eps: 1e-6),
                          gimage.groupNormSiLU(groups: groups, weight: ggw, bias: ggb, eps: 1e-6))
            }
            for (channels, out, size) in [(128, 128, 96), (64, 3, 40), (16, 32, 33)] {
                let (image, gimage) = try pair([1, channels, size, size], .bfloat16)
                let (kernel, gkernel) = try pair([out, channels, 3, 3], .bfloat16, scale: 0.05)
                let (cb, gcb) = try pair([out], .bfloat16)
                try check("conv2d 3x3 \(channels)->\(out) at \(size)² bf16", bound: 1e-2,
                          image.conv2d(weight: kernel, bias: cb, padding: 1), gimage.conv2d(weight: gkernel, bias: gcb, padding: 1))
            }
            let (cq, gcq) = try pair([1, 130, 4, 128], .bfloat16), (ck, gck) = try pair([1, 130, 2, 128], .bfloat16)
            try check("flash attention causal GQA bf16", bound: 1e-2, cq.attention(key: ck, value: ck, causal: true),
                      gcq.attention(key: gck, value: gck, causal: true))
        }

        // 8-bit RGB of a decoded image: the kernel equals the host's conversion byte for byte.
        for dtype in [DType.bfloat16, .float32] {
            let (image, gimage) = try pair([1, 3, 37, 53], dtype, scale: 0.8)
            let differing = zip(try cpu.rgb8(image).toBytes(), try gpu.rgb8(gimage).toBytes()).filter { $0 != $1 }.count
            rows.append(Row(name: "rgb8 \(dtype.safetensorsName): differing bytes", error: Double(differing), bound: 0.5))
        }

        // FP8: the row quantisation equals the host's bit for bit (values and scales), the FP8 GEMM
        // equals the float32 product of the dequantised operands up to bf16 rounding, and (for
        // information) how far FP8 lands from the bf16 product.
        if gpu.supportsFloat8 { do {
            var values = random.normals(300 * 3840)
            for i in 0..<3840 { values[7 * 3840 + i] = 0; values[11 * 3840 + i] *= 1e4 }   // a zero row, a large one
            let host = try cpu.tensor(values, shape: [300, 3840], dtype: .bfloat16), device = try host.to(gpu)
            let (qc, qg) = (try cpu.quantizeRowsFloat8(host), try gpu.quantizeRowsFloat8(device))
            let codes = zip(try qc.values.toBytes(), try qg.values.toBytes()).filter { $0 != $1 }.count
            rows.append(Row(name: "fp8 row quantisation [300,3840]: differing codes", error: Double(codes), bound: 0.5))
            try check("fp8 row scales [300]", bound: 1e-7, qc.scales, qg.scales)
            let (_, gnw) = try pair([3840], .bfloat16), (_, gns) = try pair([1, 3840], .bfloat16, scale: 0.3)
            let fused = try gpu.rmsNormScaledFloat8(device, weight: gnw, scale: gns, eps: 1e-5)
            let separate = try gpu.quantizeRowsFloat8(device.rmsNorm(weight: gnw, eps: 1e-5, scale: gns))
            let normCodes = zip(try fused.values.toBytes(), try separate.values.toBytes()).filter { $0 != $1 }.count
            rows.append(Row(name: "fp8 fused norm+quantisation vs the two kernels: differing codes",
                            error: Double(normCodes), bound: 0.5))
            let (w, gw) = try pair([1024, 3840], .bfloat16, scale: 0.02), (b, gb) = try pair([1024], .bfloat16)
            let (wc, wg) = (try cpu.quantizeRowsFloat8(w), try gpu.quantizeRowsFloat8(gw))
            try check("fp8 linear+bias [300,3840]x[1024,3840]^T vs dequantised f32", bound: 1e-2,
                      cpu.float8Linear(qc, wc, bias: b, dtype: .bfloat16), gpu.float8Linear(qg, wg, bias: gb, dtype: .bfloat16))
            let dense = try host.cast(to: .float32).linear(w.cast(to: .float32), bias: b.cast(to: .float32))
            try check("fp8 linear vs bf16-input f32 product (quantisation error)", bound: 0.1, dense,
                      gpu.float8Linear(qg, wg, bias: gb, dtype: .bfloat16))
        } catch {
            rows.append(Row(name: "fp8 checks: \(error)", error: .infinity, bound: 0))
        } }

        // The whole tiny pipeline on both devices, float32: same seed, same latents and pixels.
        if let fixture = tinyModelPath, FileManager.default.fileExists(atPath: fixture + "/model_index.json") {
            gpu.poisonAllocations = false
            let onCPU = try ZImagePipeline(modelDirectory: fixture, backend: cpu, precision: .float32)
            let onGPU = try ZImagePipeline(modelDirectory: fixture, backend: gpu, precision: .float32)
            var parameters = GenerationParameters(prompt: "a red fox in the snow")
            (parameters.width, parameters.height, parameters.seed) = (64, 64, 42)
            let a = try onCPU.generate(parameters)[0].image.pixels, b = try onGPU.generate(parameters)[0].image.pixels
            let worst = zip(a, b).map { abs(Int($0) - Int($1)) }.max() ?? 255
            rows.append(Row(name: "tiny pipeline fp32 64x64, worst pixel difference", error: Double(worst), bound: 3))
            let onGPUbf16 = try ZImagePipeline(modelDirectory: fixture, backend: gpu, precision: .bfloat16)
            let c = try onGPUbf16.generate(parameters)[0].image.pixels
            let mean = Double(zip(a, c).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(a.count)
            rows.append(Row(name: "tiny pipeline bf16 vs CPU fp32, mean pixel difference", error: mean, bound: 8))
            if gpu.supportsFloat8 { do {
                let onCPUfp8 = try ZImagePipeline(modelDirectory: fixture, backend: cpu, precision: .float8)
                let onGPUfp8 = try ZImagePipeline(modelDirectory: fixture, backend: gpu, precision: .float8)
                let d = try onCPUfp8.generate(parameters)[0].image.pixels, e = try onGPUfp8.generate(parameters)[0].image.pixels
                let fp8Mean = Double(zip(d, e).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(d.count)
                rows.append(Row(name: "tiny pipeline fp8 GPU vs CPU fp8, mean pixel difference", error: fp8Mean, bound: 8))
            } catch {
                rows.append(Row(name: "tiny pipeline fp8: \(error)", error: .infinity, bound: 0))
            } }
        }

        // The rate: bf16 [4096, 3840] · [10240, 3840]^T (the DiT FFN up-projection at 1024²).
        gpu.poisonAllocations = false
        let (m, k, n) = (4096, 3840, 10240)
        let input = try gpu.tensor(random.normals(m * k), shape: [m, k], dtype: .bfloat16)
        let weight = try gpu.tensor(random.normals(n * k, scale: 0.02), shape: [n, k], dtype: .bfloat16)
        var product: Tensor?
        let milliseconds = try gpu.measure(iterations: 50, warmup: 5) { product = try input.linear(weight) }
        // Spot-check the timed product against the CPU on 64 rows.
        let rowsChecked = try product.map { try cpu.tensor(Array(try $0.toFloats().prefix(64 * n)), shape: [64, n]) }
        let cpuRows = try input.to(cpu).rows(0..<64).cast(to: .float32).linear(weight.to(cpu).cast(to: .float32))
        if let rowsChecked {
            rows.append(Row(name: "bf16 4096x3840x10240 (64 rows vs f32 CPU)", error:
                                relativeError(try rowsChecked.toFloats(), try cpuRows.toFloats()), bound: 1e-2))
        }
        let teraflops = 2.0 * Double(m) * Double(k) * Double(n) / (milliseconds / 1e3) / 1e12
        let (free, total) = try gpu.deviceMemory()
        return [
            "device": gpu.info.name,
            "compute_capability": "\(gpu.info.computeCapability.major).\(gpu.info.computeCapability.minor)",
            "driver_version": try CUDADriver.shared().version(),
            "nvrtc": "\(nvrtc.version().major).\(nvrtc.version().minor) (\(nvrtc.path))",
            "memory_free_bytes": free, "memory_total_bytes": total,
            "checks": rows.map { ["name": $0.name, "relative_error": $0.error, "bound": $0.bound, "passed": $0.passed] },
            "all_passed": rows.allSatisfy(\.passed),
            "matmul_bf16_4096x3840x10240": ["median_ms": milliseconds, "tflops": teraflops],
        ]
    }
}
