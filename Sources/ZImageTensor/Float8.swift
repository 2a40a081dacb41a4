/// FP8 e4m3 ("e4m3fn": 4 exponent bits, bias 7, 3 mantissa bits, no infinities, ±448 at most,
/// NaN = 0x7F/0xFF), the weight and activation format of the FP8 linear layers.
///
/// Encoding rounds to nearest even and saturates finite values at ±448 (PTX's `cvt.rn.satfinite`);
/// the GPU kernels (Kernels/quantize.cu) encode with the same integer steps, so host and device
/// agree bit for bit.
public enum Float8E4M3 {
    /// The largest finite magnitude.
    public static let maximum: Float = 448

    /// `value` as e4m3 bits.
    public static func encode(_ value: Float) -> UInt8 {
        let bits = value.bitPattern
        let sign = UInt8((bits >> 24) & 0x80)
        let magnitude = bits & 0x7fff_ffff
        if magnitude > 0x7f80_0000 { return 0x7f }                    // NaN
        if magnitude > 0x43e0_0000 { return sign | 0x7e }             // beyond 448 (and ∞): saturate
        if magnitude < 0x3c80_0000 {                                  // below 2⁻⁶: subnormal steps of 2⁻⁹
            return sign | UInt8((Float(bitPattern: magnitude) * 512).rounded(.toNearestOrEven))
        }
        var exponent = (magnitude >> 23) &- 120                       // (e − 127) + 7, in 1...15
        let mantissa = magnitude & 0x7f_ffff
        var kept = mantissa >> 20
        let rest = mantissa & 0xf_ffff
        if rest > 0x8_0000 || (rest == 0x8_0000 && kept & 1 == 1) { kept += 1 }
        if kept == 8 { kept = 0; exponent += 1 }
        return sign | UInt8(exponent << 3) | UInt8(kept)
    }

    /// The value of e4m3 bits.
    public static func decode(_ byte: UInt8) -> Float {
        let sign: Float = byte & 0x80 == 0 ? 1 : -1
        let exponent = Int((byte >> 3) & 0xf), mantissa = Float(byte & 7)
        if exponent == 15 && byte & 7 == 7 { return .nan }
        if exponent == 0 { return sign * mantissa / 512 }
        return sign * (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }

    /// The multiplier that maps a row of largest magnitude `amax` onto ±448, and the scale that
    /// maps it back: `(448 / amax, amax / 448)`, or `(1, 1)` for an all-zero row.
    public static func rowScale(amax: Float) -> (inverse: Float, scale: Float) {
        amax > 0 ? (maximum / amax, amax / maximum) : (1, 1)
    }
}

/// A matrix quantised row by row to FP8 e4m3: `row[i] ≈ values[i] · scales[i]`, where
/// `values[i] = e4m3(row[i] · 448 / amax(row[i]))` (see `Float8E4M3`).
public struct Float8Rows {
    /// `float8E4M3`, the shape of the source (rows = all but the last axis).
    public let values: Tensor
    /// `float32` `[rows]`.
    public let scales: Tensor

    public init(values: Tensor, scales: Tensor) {
        self.values = values
        self.scales = scales
    }

    /// Rows × columns of the quantised matrix.
    public var rows: Int { values.shape.rank == 0 ? 0 : values.count / max(values.shape[-1], 1) }
    public var columns: Int { values.shape[-1] }
}

/// How a model's linear layers hold their weights.
public enum LinearWeightFormat: String, Sendable, Codable {
    /// As loaded, in the compute dtype.
    case dense
    /// FP8 e4m3 with one scale per output channel; activations are quantised per token each call
    /// (on a backend that `widensFloat8Weights`, the weight is widened for a dense GEMM instead).
    case float8
    /// Symmetric int8 with one scale per output channel, weight-only: widened to the activation
    /// dtype for a dense GEMM each call (`Int8Rows`).
    case int8
}

/// A linear layer's weight `[out, in]` in the form its GEMM reads.
public enum LinearWeight {
    case dense(Tensor)
    case float8(Float8Rows)
    case int8(Int8Rows)

    /// Stores `weight` as `format` (quantising on its backend for `.float8` and `.int8`).
    public init(_ weight: Tensor, format: LinearWeightFormat) throws {
        switch format {
        case .dense: self = .dense(weight)
        case .float8: self = .float8(try weight.backend.quantizeRowsFloat8(weight))
        case .int8: self = .int8(try weight.backend.quantizeRowsInt8(weight))
        }
    }

    /// The format this weight is held in.
    public var format: LinearWeightFormat {
        switch self {
        case .dense: .dense
        case .float8: .float8
        case .int8: .int8
        }
    }

    /// A weight of `format` over tensors laid out as `storageTensors` lists them (a streamed
    /// layer's slot made again); throws when their number or types do not fit the format.
    public init(format: LinearWeightFormat, storageTensors tensors: [Tensor]) throws {
        switch (format, tensors.count) {
        case (.dense, 1): self = .dense(tensors[0])
        case (.float8, 2) where tensors[0].dtype == .float8E4M3 && tensors[1].dtype == .float32:
            self = .float8(Float8Rows(values: tensors[0], scales: tensors[1]))
        case (.int8, 2) where tensors[0].dtype == .int8 && tensors[1].dtype == .float32:
            self = .int8(Int8Rows(values: tensors[0], scales: tensors[1]))
        default:
            throw TensorError.invalidArgument(op: "linear weight", detail: "\(tensors.count) tensors "
                + "(\(tensors.map(\.dtype))) do not hold a \(format.rawValue) weight")
        }
    }

    /// How many tensors `storageTensors` lists for `format`.
    public static func storageCount(_ format: LinearWeightFormat) -> Int {
        switch format {
        case .dense: 1
        case .float8, .int8: 2
        }
    }

    /// The device tensors this weight is held in, in a fixed order (what a streamed block copies
    /// into its slot; every format lists each of its tensors here).
    public var storageTensors: [Tensor] {
        switch self {
        case .dense(let weight): [weight]
        case .float8(let rows): [rows.values, rows.scales]
        case .int8(let rows): [rows.values, rows.scales]
        }
    }

    /// Whether this weight's GEMM reads quantised FP8 activations (an FP8 weight on a backend
    /// with an FP8 GEMM); every other weight reads `x` as it is.
    private func readsFloat8Activations(on backend: any Backend) -> Bool {
        if case .float8 = self { return !backend.widensFloat8Weights }
        return false
    }

    /// The activation form this weight's GEMM takes: `x` itself, or `x` quantised per row.
    public func prepare(_ x: Tensor) throws -> LinearActivation {
        guard readsFloat8Activations(on: x.backend) else { return .dense(x) }
        return .float8(try x.backend.quantizeRowsFloat8(x), dtype: x.dtype)
    }

    /// `rmsNorm(x, weight) · scale` in the form this weight's GEMM reads; for FP8 the norm writes
    /// the quantised rows directly (`Backend.rmsNormScaledFloat8`).
    public func prepareRMSNormalized(_ x: Tensor, weight: Tensor?, scale: Tensor?, eps: Float) throws -> LinearActivation {
        guard readsFloat8Activations(on: x.backend) else {
            return .dense(try x.rmsNorm(weight: weight, eps: eps, scale: scale))
        }
        return .float8(try x.backend.rmsNormScaledFloat8(x, weight: weight, scale: scale, eps: eps), dtype: x.dtype)
    }

    /// `x · weightᵀ (+ bias)` for an activation from `prepare` (one activation may serve several
    /// weights of the same format, as q, k and v share their input). A quantised weight read with
    /// a dense activation is widened into a scratch tensor of `x`'s dtype for a dense GEMM (int8
    /// always, FP8 where the backend `widensFloat8Weights`).
    public func apply(_ x: LinearActivation, bias: Tensor? = nil) throws -> Tensor {
        switch (self, x) {
        case (.dense(let weight), .dense(let input)):
            return try input.linear(weight, bias: bias)
        case (.float8(let weight), .float8(let input, let dtype)):
            return try input.values.backend.float8Linear(input, weight, bias: bias, dtype: dtype)
        case (.int8(let weight), .dense(let input)):
            return try input.linear(input.backend.dequantizeRows(weight, dtype: input.dtype), bias: bias)
        case (.float8(let weight), .dense(let input)):
            guard input.backend.widensFloat8Weights else { return try apply(prepare(input), bias: bias) }
            return try input.linear(input.backend.dequantizeRows(weight, dtype: input.dtype), bias: bias)
        case (.dense, .float8(let input, let dtype)), (.int8, .float8(let input, let dtype)):
            throw TensorError.invalidArgument(op: "linear", detail: "an fp8 activation \(input.values.shape) \(dtype) "
                                              + "for a \(format) weight")
        }
    }
}

/// A linear layer's input in the form its weight's GEMM reads (see `LinearWeight.prepare`).
public enum LinearActivation {
    case dense(Tensor)
    /// Quantised rows, and the dtype the product is returned in.
    case float8(Float8Rows, dtype: DType)
}
