import Foundation
import ZImageCPU
import ZImageTensor
import ZImageTestSupport

/// Times CPU ops at model-like shapes (scaled to a few seconds on a small machine). The same
/// cases run in bench/cpu_ops_torch.py with the same threads; bench/run_cpu_ops.sh joins them.
enum CPUOpsBenchmark {
    struct Case {
        var name: String
        var flops: Double
        var run: () throws -> Tensor
    }

    static func run(threads: Int, repeats: Int) throws -> [[String: Any]] {
        let backend = CPUBackend(threads: threads)
        var random = SplitMix64(seed: 7)
        func tensor(_ shape: Shape, _ dtype: DType = .float32, scale: Float = 1) throws -> Tensor {
            try backend.tensor(random.normals(shape.count, scale: scale), shape: shape, dtype: dtype)
        }
        // DiT linear (tokens 1024 × 3840 → 3840) in f32 and with a bf16 weight; attention over 1024 image
        // tokens with 4 of the 30 heads; VAE conv 3x3 128→128 on a 128² map.
        let x = try tensor([1024, 3840]), w = try tensor([3840, 3840], scale: 0.02)
        let wb = try tensor([3840, 3840], .bfloat16, scale: 0.02)
        let q = try tensor([1, 1024, 4, 128]), k = try tensor([1, 1024, 4, 128]), v = try tensor([1, 1024, 4, 128])
        let image = try tensor([1, 128, 128, 128]), kernel = try tensor([128, 128, 3, 3], scale: 0.03)
        let bias = try tensor([128])
        let cases = [
            Case(name: "linear_f32_1024x3840x3840", flops: 2 * 1024 * 3840 * 3840) { try x.linear(w) },
            Case(name: "linear_bf16w_1024x3840x3840", flops: 2 * 1024 * 3840 * 3840) { try x.linear(wb) },
            Case(name: "attention_1024x4x128", flops: 4 * 1024 * 1024 * 128 * 4) { try q.attention(key: k, value: v) },
            Case(name: "conv3x3_128to128_128x128", flops: 2 * 128 * 128 * 9 * 128 * 128) {
                try image.conv2d(weight: kernel, bias: bias, padding: 1)
            },
        ]
        var rows: [[String: Any]] = []
        for item in cases {
            _ = try item.run()   // warm-up
            var times: [Double] = []
            for _ in 0..<repeats {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try item.run()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            times.sort()
            let median = times[times.count / 2]
            rows.append(["case": item.name, "ms": median, "gflops": item.flops / median / 1e6])
        }
        return rows
    }
}
