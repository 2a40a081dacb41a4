import Foundation
import ZImageTensor

extension CPUBackend {
    /// See `Backend.binary`.
    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try checkCompute(op.rawValue, a, b)
        let geometry = try BroadcastGeometry(a.shape, b.shape, op: op.rawValue)
        let lhs = try input(a, op.rawValue), rhs = try input(b, op.rawValue)
        let out = try output(geometry.outputShape, a.dtype)
        let x = lhs.pointer, y = rhs.pointer, z = out.pointer
        let shape = geometry.outputShape
        let kernel: (Float, Float) -> Float
        switch op {
        case .add: kernel = { $0 + $1 }
        case .subtract: kernel = { $0 - $1 }
        case .multiply: kernel = { $0 * $1 }
        case .divide: kernel = { $0 / $1 }
        }
        if a.shape == b.shape {
            parallelFor(shape.count, threads: threads, minimumChunk: 1 << 15) { range in
                for i in range { z[i] = kernel(x[i], y[i]) }
            }
            return try out.finish()
        }
        // Rows over the last axis; each operand advances by its own (possibly zero) stride.
        let rank = shape.rank
        let width = rank == 0 ? 1 : shape[-1]
        let rows = shape.count / max(width, 1)
        let aStrides = geometry.aStrides, bStrides = geometry.bStrides
        let sa = rank == 0 ? 0 : aStrides[rank - 1], sb = rank == 0 ? 0 : bStrides[rank - 1]
        let outer = Array(shape.dims.dropLast())
        parallelFor(rows, threads: threads, minimumChunk: max(1, (1 << 15) / max(width, 1))) { range in
            for row in range {
                var rest = row, oa = 0, ob = 0
                for axis in stride(from: outer.count - 1, through: 0, by: -1) {
                    let index = rest % outer[axis]
                    rest /= outer[axis]
                    oa += index * aStrides[axis]
                    ob += index * bStrides[axis]
                }
                let zRow = z + row * width
                for j in 0..<width { zRow[j] = kernel(x[oa + j * sa], y[ob + j * sb]) }
            }
        }
        return try out.finish()
    }

    /// See `Backend.affine`.
    public func affine(_ x: Tensor, scale: Float, shift: Float) throws -> Tensor {
        try checkCompute("affine", x)
        let source = try input(x, "affine")
        let out = try output(x.shape, x.dtype)
        let s = source.pointer, d = out.pointer
        parallelFor(x.count, threads: threads, minimumChunk: 1 << 15) { range in
            for i in range { d[i] = s[i] * scale + shift }
        }
        return try out.finish()
    }

    /// See `Backend.unary`.
    public func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor {
        try checkCompute(op.rawValue, x)
        let source = try input(x, op.rawValue)
        let out = try output(x.shape, x.dtype)
        let s = source.pointer, d = out.pointer
        let kernel: (Float) -> Float
        switch op {
        case .silu: kernel = { $0 / (1 + Foundation.exp(-$0)) }
        case .gelu: kernel = { 0.5 * $0 * (1 + Foundation.erf($0 * 0.70710678118654752)) }
        case .geluTanh:
            kernel = { 0.5 * $0 * (1 + Foundation.tanh(0.79788456080286536 * ($0 + 0.044715 * $0 * $0 * $0))) }
        case .tanh: kernel = { Foundation.tanh($0) }
        case .sigmoid: kernel = { 1 / (1 + Foundation.exp(-$0)) }
        case .exp: kernel = { Foundation.exp($0) }
        case .negate: kernel = { -$0 }
        }
        parallelFor(x.count, threads: threads, minimumChunk: 1 << 13) { range in
            for i in range { d[i] = kernel(s[i]) }
        }
        return try out.finish()
    }

    /// See `Backend.cast`.
    public func cast(_ x: Tensor, to dtype: DType) throws -> Tensor {
        try checkCompute("cast", x)
        guard dtype.isComputeType else { throw TensorError.unsupportedDType(op: "cast", dtype: dtype) }
        let source = try input(x, "cast")
        let out = try allocate(shape: x.shape, dtype: dtype)
        if x.count > 0 {
            try convertFromFloat(source.pointer, out.hostPointer, dtype: dtype, count: x.count, threads: threads)
        }
        return out
    }
}
