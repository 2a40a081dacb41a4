/// The reference meaning of each fused Backend op, composed from the plain ops, with the same
/// rounding points as diffusers in low precision (each plain op rounds to the input dtype).
/// Backends without a fused kernel use these (the protocol defaults below); GPU kernels are
/// tested against them.
public enum FusedReference {
    public static func rmsNormScaled(_ backend: any Backend, _ x: Tensor, weight: Tensor?, scale: Tensor?,
                                     eps: Float) throws -> Tensor {
        let normed = try backend.rmsNorm(x, weight: weight, eps: eps)
        guard let scale else { return normed }
        return try backend.binary(.multiply, normed, scale)
    }

    public static func gatedRMSNormResidual(_ backend: any Backend, _ x: Tensor, _ y: Tensor, weight: Tensor?,
                                            gate: Tensor?, eps: Float) throws -> Tensor {
        var normed = try backend.rmsNorm(y, weight: weight, eps: eps)
        if let gate { normed = try backend.binary(.multiply, gate, normed) }
        return try backend.binary(.add, x, normed)
    }

    public static func rmsNormRope(_ backend: any Backend, _ x: Tensor, weight: Tensor?, eps: Float, cos: Tensor,
                                   sin: Tensor, layout: RoPELayout) throws -> Tensor {
        try backend.rope(backend.rmsNorm(x, weight: weight, eps: eps), cos: cos, sin: sin, layout: layout)
    }

    public static func siluMultiply(_ backend: any Backend, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try backend.binary(.multiply, backend.unary(.silu, a), b)
    }

    public static func groupNormSiLU(_ backend: any Backend, _ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?,
                                     eps: Float) throws -> Tensor {
        try backend.unary(.silu, backend.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps))
    }
}

extension FusedReference {
    /// 8-bit RGB on the host (the backend's GPU kernel is checked against this).
    public static func rgb8(_ backend: any Backend, _ pixels: Tensor) throws -> Tensor {
        guard pixels.shape.rank == 4, pixels.shape[0] == 1, pixels.shape[1] == 3 else {
            throw TensorError.shapeMismatch(op: "rgb8", detail: "\(pixels.shape), expected [1, 3, H, W]")
        }
        let (height, width) = (pixels.shape[2], pixels.shape[3])
        let plane = width * height
        guard pixels.dtype.isComputeType else { throw TensorError.unsupportedDType(op: "rgb8", dtype: pixels.dtype) }
        let values = try pixels.toFloats()
        var bytes = [UInt8](repeating: 0, count: plane * 3)
        for channel in 0..<3 {
            for index in 0..<plane {
                // Float.maximum, as the kernel's fmaxf: a NaN pixel (an overflowed run) is 0, not a trap.
                let scaled = min(Float.maximum(values[channel * plane + index] / 2 + 0.5, 0), 1)
                bytes[index * 3 + channel] = UInt8((scaled * 255).rounded(.toNearestOrEven))
            }
        }
        return try bytes.withUnsafeBytes { try backend.upload($0, shape: [height, width, 3], dtype: .uint8) }
    }

    /// Per-row FP8 quantisation on the host (exactly the steps of Kernels/quantize.cu).
    public static func quantizeRowsFloat8(_ backend: any Backend, _ x: Tensor) throws -> Float8Rows {
        let (values, scales) = try quantizeRowsOnHost(backend, x, dtype: .float8E4M3, op: "quantizeRowsFloat8") { amax in
            let (inverse, scale) = Float8E4M3.rowScale(amax: amax)
            return (scale, { Float8E4M3.encode($0 * inverse) })
        }
        return Float8Rows(values: values, scales: scales)
    }

    /// The row loop the host quantisers share: each row of `x` (rows = all but the last axis) gets
    /// its scale and encoder from its largest magnitude (`row(amax)`), its codes are uploaded as
    /// `dtype` in `x`'s shape, the float32 scales as `[rows]`.
    static func quantizeRowsOnHost<Code>(_ backend: any Backend, _ x: Tensor, dtype: DType, op: String,
                                         row: (Float) -> (scale: Float, encode: (Float) -> Code)) throws
        -> (values: Tensor, scales: Tensor) {
        guard x.shape.rank >= 1, x.dtype.isComputeType else {
            throw TensorError.invalidArgument(op: op, detail: "\(x.shape) \(x.dtype)")
        }
        let columns = x.shape[-1], rows = columns == 0 ? 0 : x.count / columns
        let values = try x.toFloats()
        var codes: [Code] = [], scales = [Float](repeating: 1, count: rows)
        codes.reserveCapacity(values.count)
        for index in 0..<rows {
            let span = (index * columns)..<((index + 1) * columns)
            let (scale, encode) = row(values[span].reduce(Float(0)) { max($0, abs($1)) })
            scales[index] = scale
            for i in span { codes.append(encode(values[i])) }
        }
        let quantized = try codes.withUnsafeBytes { try backend.upload($0, shape: x.shape, dtype: dtype) }
        return (quantized, try backend.tensor(scales, shape: [rows]))
    }

    /// The FP8 product through float32: both operands dequantised on the host, multiplied by the
    /// backend's float32 matmul, then rounded to `dtype`.
    public static func float8Linear(_ backend: any Backend, _ x: Float8Rows, _ weight: Float8Rows, bias: Tensor?,
                                    dtype: DType) throws -> Tensor {
        guard x.columns == weight.columns, weight.values.shape.rank == 2 else {
            throw TensorError.shapeMismatch(op: "float8Linear",
                                            detail: "x \(x.values.shape), weight \(weight.values.shape)")
        }
        func dequantized(_ q: Float8Rows) throws -> Tensor {
            let codes = try q.values.toFloats(), scales = try q.scales.toFloats()
            let columns = q.columns
            let values = codes.indices.map { codes[$0] * scales[$0 / max(columns, 1)] }
            return try backend.tensor(values, shape: [q.rows, columns])
        }
        let product = try backend.matmul(dequantized(x), dequantized(weight), transposeA: false, transposeB: true,
                                         bias: bias.map { try backend.cast($0, to: .float32) })
        var shape = x.values.shape.dims
        shape[shape.count - 1] = weight.rows
        return try backend.cast(product, to: dtype).reshaped(shape)
    }
}

extension Backend {
    public func rgb8(_ pixels: Tensor) throws -> Tensor { try FusedReference.rgb8(self, pixels) }

    public func rmsNormScaledFloat8(_ x: Tensor, weight: Tensor?, scale: Tensor?, eps: Float) throws -> Float8Rows {
        try quantizeRowsFloat8(rmsNormScaled(x, weight: weight, scale: scale, eps: eps))
    }

    public func quantizeRowsFloat8(_ x: Tensor) throws -> Float8Rows {
        try FusedReference.quantizeRowsFloat8(self, x)
    }

    public func float8Linear(_ x: Float8Rows, _ weight: Float8Rows, bias: Tensor?, dtype: DType) throws -> Tensor {
        try FusedReference.float8Linear(self, x, weight, bias: bias, dtype: dtype)
    }

    public var widensFloat8Weights: Bool { false }

    public func quantizeRowsInt8(_ x: Tensor) throws -> Int8Rows {
        try FusedReference.quantizeRowsInt8(self, x)
    }

    public func dequantizeRows(_ rows: Int8Rows, dtype: DType) throws -> Tensor {
        try FusedReference.dequantizeRows(self, rows, dtype: dtype)
    }

    public func dequantizeRows(_ rows: Float8Rows, dtype: DType) throws -> Tensor {
        try FusedReference.dequantizeRows(self, rows, dtype: dtype)
    }

    public func rmsNormScaled(_ x: Tensor, weight: Tensor?, scale: Tensor?, eps: Float) throws -> Tensor {
        try FusedReference.rmsNormScaled(self, x, weight: weight, scale: scale, eps: eps)
    }

    public func gatedRMSNormResidual(_ x: Tensor, _ y: Tensor, weight: Tensor?, gate: Tensor?,
                                     eps: Float) throws -> Tensor {
        try FusedReference.gatedRMSNormResidual(self, x, y, weight: weight, gate: gate, eps: eps)
    }

    public func rmsNormRope(_ x: Tensor, weight: Tensor?, eps: Float, cos: Tensor, sin: Tensor,
                            layout: RoPELayout) throws -> Tensor {
        try FusedReference.rmsNormRope(self, x, weight: weight, eps: eps, cos: cos, sin: sin, layout: layout)
    }

    public func siluMultiply(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try FusedReference.siluMultiply(self, a, b)
    }

    public func groupNormSiLU(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try FusedReference.groupNormSiLU(self, x, groups: groups, weight: weight, bias: bias, eps: eps)
    }

    public func beginStage(_ name: String) {}

    public func profileReport() -> String? { nil }
}

extension Tensor {
    /// `rmsNorm(weight) · scale` (scale one row shared by every row; nil for none).
    public func rmsNorm(weight: Tensor?, eps: Float, scale: Tensor?) throws -> Tensor {
        try sameDevice("rmsNormScaled", weight, scale)
        return try backend.rmsNormScaled(self, weight: weight, scale: scale, eps: eps)
    }

    /// `self + gate · rmsNorm(y, weight)` (gate nil for 1).
    public func addingGatedRMSNorm(of y: Tensor, weight: Tensor?, gate: Tensor?, eps: Float) throws -> Tensor {
        try sameDevice("gatedRMSNormResidual", y, weight, gate)
        return try backend.gatedRMSNormResidual(self, y, weight: weight, gate: gate, eps: eps)
    }

    /// `rope(rmsNorm(weight))` over the head vectors of `[B, L, H, D]`.
    public func rmsNormRope(weight: Tensor?, eps: Float, cos: Tensor, sin: Tensor, layout: RoPELayout) throws -> Tensor {
        try sameDevice("rmsNormRope", weight, cos, sin)
        return try backend.rmsNormRope(self, weight: weight, eps: eps, cos: cos, sin: sin, layout: layout)
    }

    /// `silu(groupNorm(self))`.
    public func groupNormSiLU(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try sameDevice("groupNormSiLU", weight, bias)
        return try backend.groupNormSiLU(self, groups: groups, weight: weight, bias: bias, eps: eps)
    }

    /// `silu(self) · other`.
    public func siluMultiply(_ other: Tensor) throws -> Tensor {
        try sameDevice("siluMultiply", other)
        return try backend.siluMultiply(self, other)
    }
}
