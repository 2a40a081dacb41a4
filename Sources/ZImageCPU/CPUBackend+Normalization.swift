import Foundation
import ZImageTensor

extension CPUBackend {
    /// See `Backend.rmsNorm`.
    public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor {
        try checkCompute("rmsNorm", x, weight)
        let (rows, width) = try LastAxis.geometry(x.shape, op: "rmsNorm", parameters: [weight?.shape])
        let source = try input(x, "rmsNorm")
        let gamma = try weight.map { try input($0, "rmsNorm") }
        let out = try output(x.shape, x.dtype)
        let s = source.pointer, d = out.pointer, g = gamma?.pointer
        let dtype = x.dtype
        parallelFor(rows, threads: threads, minimumChunk: max(1, 4096 / width)) { range in
            for row in range {
                let xs = s + row * width, ys = d + row * width
                var sum: Float = 0
                for j in 0..<width { sum += xs[j] * xs[j] }
                let inverse = 1 / (sum / Float(width) + eps).squareRoot()
                for j in 0..<width {
                    // The reference rounds the normalised value to the input dtype before the weight.
                    let normalised = roundedAs(xs[j] * inverse, dtype)
                    ys[j] = g.map { normalised * $0[j] } ?? normalised
                }
            }
        }
        return try out.finish()
    }

    /// See `Backend.layerNorm`.
    public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try checkCompute("layerNorm", x, weight, bias)
        let (rows, width) = try LastAxis.geometry(x.shape, op: "layerNorm", parameters: [weight?.shape, bias?.shape])
        let source = try input(x, "layerNorm")
        let gamma = try weight.map { try input($0, "layerNorm") }
        let beta = try bias.map { try input($0, "layerNorm") }
        let out = try output(x.shape, x.dtype)
        let s = source.pointer, d = out.pointer, g = gamma?.pointer, b = beta?.pointer
        parallelFor(rows, threads: threads, minimumChunk: max(1, 4096 / width)) { range in
            for row in range {
                let xs = s + row * width, ys = d + row * width
                let (mean, inverse) = Self.moments(xs, count: width, eps: eps)
                for j in 0..<width {
                    var y = (xs[j] - mean) * inverse
                    if let g { y *= g[j] }
                    if let b { y += b[j] }
                    ys[j] = y
                }
            }
        }
        return try out.finish()
    }

    /// See `Backend.groupNorm`.
    public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try checkCompute("groupNorm", x, weight, bias)
        let spatial = try LayoutChecks.groupNormSpatial(x.shape, groups: groups, weight: weight?.shape, bias: bias?.shape)
        let channels = x.shape[1]
        let perGroup = channels / groups
        let source = try input(x, "groupNorm")
        let gamma = try weight.map { try input($0, "groupNorm") }
        let beta = try bias.map { try input($0, "groupNorm") }
        let out = try output(x.shape, x.dtype)
        let s = source.pointer, d = out.pointer, g = gamma?.pointer, b = beta?.pointer
        parallelFor(x.shape[0] * groups, threads: threads) { range in
            for item in range {
                let n = item / groups, group = item % groups
                let base = (n * channels + group * perGroup) * spatial
                let (mean, inverse) = Self.moments(s + base, count: perGroup * spatial, eps: eps)
                for c in 0..<perGroup {
                    let channel = group * perGroup + c
                    let scale = inverse * (g?[channel] ?? 1), offset = b?[channel] ?? 0
                    let xs = s + base + c * spatial, ys = d + base + c * spatial
                    for j in 0..<spatial { ys[j] = (xs[j] - mean) * scale + offset }
                }
            }
        }
        return try out.finish()
    }

    /// See `Backend.softmax`.
    public func softmax(_ x: Tensor) throws -> Tensor {
        try checkCompute("softmax", x)
        let (rows, width) = try LastAxis.geometry(x.shape, op: "softmax")
        let source = try input(x, "softmax")
        let out = try output(x.shape, x.dtype)
        let s = source.pointer, d = out.pointer
        parallelFor(rows, threads: threads, minimumChunk: max(1, 4096 / width)) { range in
            for row in range { Self.softmaxRow(s + row * width, d + row * width, count: width) }
        }
        return try out.finish()
    }

    /// Mean and 1/sqrt(biased variance + eps), accumulated in float64.
    static func moments(_ values: UnsafePointer<Float>, count: Int, eps: Float) -> (Float, Float) {
        var sum = 0.0
        for j in 0..<count { sum += Double(values[j]) }
        let mean = sum / Double(count)
        var squares = 0.0
        for j in 0..<count {
            let centred = Double(values[j]) - mean
            squares += centred * centred
        }
        let variance = squares / Double(count)
        return (Float(mean), Float(1 / (variance + Double(eps)).squareRoot()))
    }

    /// Numerically stable softmax of one row; a row with no finite entry gives zeros.
    static func softmaxRow(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for j in 0..<count { maximum = max(maximum, source[j]) }
        guard maximum > -.infinity else {
            destination.update(repeating: 0, count: count)
            return
        }
        var sum: Float = 0
        for j in 0..<count {
            let e = Foundation.exp(source[j] - maximum)
            destination[j] = e
            sum += e
        }
        let inverse = 1 / sum
        for j in 0..<count { destination[j] *= inverse }
    }
}
