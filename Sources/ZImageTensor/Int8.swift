/// Symmetric int8 with one float32 scale per row, the weight format of `--precision int8`
/// (weight-only: the GEMM widens the weight to the activation dtype first, as ComfyUI's int8).
///
/// For a row of largest magnitude `amax`: `scale = amax / 127` (1 for an all-zero row) and
/// `q = round-half-even(w / scale)` clamped to ±127 (NaN → 0), both divisions in float32. The GPU
/// kernel (Kernels/weight_formats.cu) takes the same steps, so host and device agree bit for bit;
/// `tools/fixtures/make_weight_formats.py` does the same in torch (`torch.round` is half-even).
public enum Int8Symmetric {
    /// The largest magnitude a code takes (−128 is never used, so the format is symmetric).
    public static let maximum: Float = 127

    /// The row scale for a row of largest magnitude `amax`: `amax / 127`, or 1 for a zero row.
    public static func rowScale(amax: Float) -> Float { amax > 0 ? amax / maximum : 1 }

    /// `value` as a code of a row with scale `scale`.
    public static func encode(_ value: Float, scale: Float) -> Int8 {
        let scaled = (value / scale).rounded(.toNearestOrEven)
        guard !scaled.isNaN else { return 0 }
        return Int8(min(max(scaled, -maximum), maximum))
    }
}

/// A matrix quantised row by row to symmetric int8: `row[i] ≈ values[i] · scales[i]`
/// (see `Int8Symmetric`).
public struct Int8Rows {
    /// `int8`, the shape of the source (rows = all but the last axis).
    public let values: Tensor
    /// `float32` `[rows]`.
    public let scales: Tensor

    public init(values: Tensor, scales: Tensor) {
        self.values = values
        self.scales = scales
    }

    /// Rows × columns of the quantised matrix.
    public var rows: Int { values.shape.rank == 0 ? 0 : values.count / max(values.shape[-1], 1) }
    public var columns: Int { values.shape.rank == 0 ? 0 : values.shape[-1] }
}

extension FusedReference {
    /// Per-row int8 quantisation on the host (the steps of `Int8Symmetric`, which the kernel takes).
    public static func quantizeRowsInt8(_ backend: any Backend, _ x: Tensor) throws -> Int8Rows {
        let (values, scales) = try quantizeRowsOnHost(backend, x, dtype: .int8, op: "quantizeRowsInt8") { amax in
            let scale = Int8Symmetric.rowScale(amax: amax)
            return (scale, { Int8Symmetric.encode($0, scale: scale) })
        }
        return Int8Rows(values: values, scales: scales)
    }

    /// `values[i, j] · scales[i]` in float32, rounded once to `dtype`, on the host.
    public static func dequantizeRows(_ backend: any Backend, _ rows: Int8Rows, dtype: DType) throws -> Tensor {
        try dequantized(backend, rows.values, rows.scales, dtype: dtype, op: "dequantizeRows(int8)")
    }

    /// `e4m3(values[i, j]) · scales[i]` in float32, rounded once to `dtype`, on the host: FP8
    /// weights widened for a dense GEMM (GPUs without FP8 tensor cores).
    public static func dequantizeRows(_ backend: any Backend, _ rows: Float8Rows, dtype: DType) throws -> Tensor {
        try dequantized(backend, rows.values, rows.scales, dtype: dtype, op: "dequantizeRows(fp8)")
    }

    private static func dequantized(_ backend: any Backend, _ values: Tensor, _ scales: Tensor, dtype: DType,
                                    op: String) throws -> Tensor {
        guard dtype.isComputeType else { throw TensorError.unsupportedDType(op: op, dtype: dtype) }
        let columns = values.shape.rank == 0 ? 0 : values.shape[-1]
        let rows = columns == 0 ? 0 : values.count / columns
        guard values.shape.rank >= 1, scales.dtype == .float32, scales.count == rows else {
            throw TensorError.shapeMismatch(op: op,
                                            detail: "values \(values.shape), scales \(scales.shape) \(scales.dtype)")
        }
        var widened = try values.toFloats()
        let rowScales = try scales.toFloats()
        for row in 0..<rows {
            for i in (row * columns)..<((row + 1) * columns) { widened[i] *= rowScales[row] }
        }
        return try backend.tensor(widened, shape: values.shape, dtype: dtype)
    }
}
