// Method-style wrappers over the backend ops. Each checks that operands share a device, then
// hands the work to the tensor's backend.

extension Tensor {
    func sameDevice(_ op: String, _ others: Tensor?...) throws {
        for case let other? in others where other.device != device {
            throw TensorError.deviceMismatch(op: op, device, other.device)
        }
    }

    /// Matrix product with optional transposes and a fused bias (see `Backend.matmul`).
    public func matmul(_ other: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                       bias: Tensor? = nil) throws -> Tensor {
        try sameDevice("matmul", other, bias)
        return try backend.matmul(self, other, transposeA: transposeA, transposeB: transposeB, bias: bias)
    }

    /// `x · weightᵀ + bias` with a PyTorch `Linear` weight `[out, in]`.
    public func linear(_ weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
        try matmul(weight, transposeB: true, bias: bias)
    }

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.add, b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.subtract, b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.multiply, b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(.divide, b) }

    /// Elementwise op with broadcasting.
    public func binary(_ op: BinaryOp, _ other: Tensor) throws -> Tensor {
        try sameDevice(op.rawValue, other)
        return try backend.binary(op, self, other)
    }

    /// `self * scale + shift`.
    public func affine(scale: Float, shift: Float = 0) throws -> Tensor {
        try backend.affine(self, scale: scale, shift: shift)
    }

    public func unary(_ op: UnaryOp) throws -> Tensor { try backend.unary(op, self) }
    public func silu() throws -> Tensor { try unary(.silu) }
    public func tanh() throws -> Tensor { try unary(.tanh) }

    public func rmsNorm(weight: Tensor?, eps: Float) throws -> Tensor {
        try sameDevice("rmsNorm", weight)
        return try backend.rmsNorm(self, weight: weight, eps: eps)
    }

    public func layerNorm(weight: Tensor? = nil, bias: Tensor? = nil, eps: Float) throws -> Tensor {
        try sameDevice("layerNorm", weight, bias)
        return try backend.layerNorm(self, weight: weight, bias: bias, eps: eps)
    }

    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try sameDevice("groupNorm", weight, bias)
        return try backend.groupNorm(self, groups: groups, weight: weight, bias: bias, eps: eps)
    }

    public func softmax() throws -> Tensor { try backend.softmax(self) }

    /// Scaled-dot-product attention with `self` as the `[B, L, H, D]` query.
    public func attention(key: Tensor, value: Tensor, keyMask: Tensor? = nil, causal: Bool = false,
                          scale: Float? = nil) throws -> Tensor {
        try sameDevice("attention", key, value, keyMask)
        let scale = scale ?? 1 / Float(shape[-1]).squareRoot()
        return try backend.attention(query: self, key: key, value: value, keyMask: keyMask, causal: causal,
                                     scale: scale)
    }

    public func rope(cos: Tensor, sin: Tensor, layout: RoPELayout) throws -> Tensor {
        try sameDevice("rope", cos, sin)
        return try backend.rope(self, cos: cos, sin: sin, layout: layout)
    }

    public func conv2d(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) throws -> Tensor {
        try sameDevice("conv2d", weight, bias)
        return try backend.conv2d(self, weight: weight, bias: bias, stride: stride, padding: padding)
    }

    public func upsampleNearest2x() throws -> Tensor { try backend.upsampleNearest2x(self) }

    public static func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        guard let first = tensors.first else {
            throw TensorError.invalidArgument(op: "concat", detail: "no inputs")
        }
        for other in tensors where other.device != first.device {
            throw TensorError.deviceMismatch(op: "concat", first.device, other.device)
        }
        return try first.backend.concat(tensors, axis: axis)
    }

    public func slice(axis: Int, _ range: Range<Int>) throws -> Tensor {
        try backend.slice(self, axis: axis, range: range)
    }

    public func permuted(_ dims: [Int]) throws -> Tensor { try backend.permute(self, dims) }

    /// Rows of this `[V, E]` table picked by `ids`.
    public func embedding(_ ids: Tensor) throws -> Tensor {
        try sameDevice("embedding", ids)
        return try backend.embedding(self, ids: ids)
    }

    /// This tensor converted to `dtype` (itself when already of that type).
    public func cast(to dtype: DType) throws -> Tensor {
        dtype == self.dtype ? self : try backend.cast(self, to: dtype)
    }
}

// MARK: - Host transfers

extension Backend {
    /// A tensor holding `values` converted to `dtype`.
    public func tensor(_ values: [Float], shape: Shape, dtype: DType = .float32) throws -> Tensor {
        guard values.count == shape.count else {
            throw TensorError.shapeMismatch(op: "tensor", detail: "\(values.count) values for \(shape)")
        }
        let bytes = try HostConversion.encode(values, as: dtype)
        return try bytes.withUnsafeBytes { try upload($0, shape: shape, dtype: dtype) }
    }

    /// A tensor of integer ids.
    public func tensor(ids: [Int32], shape: Shape) throws -> Tensor {
        guard ids.count == shape.count else {
            throw TensorError.shapeMismatch(op: "tensor", detail: "\(ids.count) ids for \(shape)")
        }
        return try ids.withUnsafeBytes { try upload($0, shape: shape, dtype: .int32) }
    }
}

extension Tensor {
    /// The raw bytes, copied to the host (waits for pending work).
    public func toBytes() throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: byteCount)
        try bytes.withUnsafeMutableBytes { try backend.download(self, into: $0) }
        return bytes
    }

    /// The elements as float32 on the host (waits for pending work).
    public func toFloats() throws -> [Float] {
        try HostConversion.decode(toBytes(), dtype: dtype)
    }

    /// A copy of this tensor on `backend` (through host memory).
    public func to(_ backend: any Backend) throws -> Tensor {
        if backend === self.backend { return self }
        let bytes = try toBytes()
        return try bytes.withUnsafeBytes { try backend.upload($0, shape: shape, dtype: dtype) }
    }
}

/// Host-side conversions between float32 arrays and tensor bytes.
public enum HostConversion {
    /// Encodes `values` as `dtype` bytes.
    public static func encode(_ values: [Float], as dtype: DType) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * dtype.byteSize)
        try out.withUnsafeMutableBytes { raw in
            switch dtype {
            case .float32:
                for (i, v) in values.enumerated() { raw.storeBytes(of: v, toByteOffset: 4 * i, as: Float.self) }
            case .bfloat16:
                for (i, v) in values.enumerated() {
                    raw.storeBytes(of: HalfPrecision.bfloat16Bits(v), toByteOffset: 2 * i, as: UInt16.self)
                }
            case .float16:
                for (i, v) in values.enumerated() {
                    raw.storeBytes(of: HalfPrecision.float16Bits(v), toByteOffset: 2 * i, as: UInt16.self)
                }
            case .int32:
                for (i, v) in values.enumerated() { raw.storeBytes(of: Int32(v), toByteOffset: 4 * i, as: Int32.self) }
            case .float8E4M3:
                for (i, v) in values.enumerated() { raw[i] = Float8E4M3.encode(v) }
            default:
                throw TensorError.unsupportedDType(op: "encode", dtype: dtype)
            }
        }
        return out
    }

    /// Decodes tensor bytes of `dtype` to float32.
    public static func decode(_ bytes: [UInt8], dtype: DType) throws -> [Float] {
        let count = bytes.count / dtype.byteSize
        return try bytes.withUnsafeBytes { raw -> [Float] in
            switch dtype {
            case .float32: return (0..<count).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            case .float64: return (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
            case .bfloat16:
                return (0..<count).map {
                    HalfPrecision.float(bfloat16Bits: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))
                }
            case .float16:
                return (0..<count).map {
                    HalfPrecision.float(float16Bits: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))
                }
            case .int64: return (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case .int32: return (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            case .uint8, .bool: return (0..<count).map { Float(raw[$0]) }
            case .int8: return (0..<count).map { Float(Int8(bitPattern: raw[$0])) }
            case .float8E4M3: return (0..<count).map { Float8E4M3.decode(raw[$0]) }
            default: throw TensorError.unsupportedDType(op: "decode", dtype: dtype)
            }
        }
    }
}
