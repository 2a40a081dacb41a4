import Foundation
import ZImageTensor

// Weight-only storage formats (Kernels/weight_formats.cu): int8 rows quantised at load, and int8
// or FP8 rows widened to the activation dtype into a scratch weight before cuBLASLt's dense GEMM
// (what ComfyUI does for int8, and for FP8 on GPUs without FP8 tensor cores).
extension CUDABackend {
    /// FP8 weights are widened for a dense GEMM on GPUs without FP8 tensor cores (compute
    /// capability below 8.9), and everywhere with `forcesFloat8Widening` (`ZIMAGE_FP8_WIDEN=1`).
    public var widensFloat8Weights: Bool { forcesFloat8Widening || !supportsFloat8 }

    public func quantizeRowsInt8(_ x: Tensor) throws -> Int8Rows {
        let columns = x.shape.rank == 0 ? 0 : x.shape[-1]
        let rows = columns == 0 ? 0 : x.count / columns
        guard useFusedKernels, x.dtype == .bfloat16, columns % 8 == 0, rows > 0, rows <= Int(Int32.max) else {
            return try FusedReference.quantizeRowsInt8(self, x)
        }
        return try profiled("quantize (int8)") {
            let values = try allocate(shape: x.shape, dtype: .int8)
            let scales = try allocate(shape: [rows], dtype: .float32)
            try launch("quantize_rows_i8_bf16", blocks: rows, threads: 256,
                       [.address(x.address), .address(values.address), .address(scales.address),
                        .int64(Int64(columns))])
            return Int8Rows(values: values, scales: scales)
        }
    }

    public func dequantizeRows(_ rows: Int8Rows, dtype: DType) throws -> Tensor {
        guard let kernel = try widening("i8", rows.values, rows.scales, dtype: dtype) else {
            return try FusedReference.dequantizeRows(self, rows, dtype: dtype)
        }
        return try widen(kernel, rows.values, rows.scales, dtype: dtype, op: "widen (int8)")
    }

    public func dequantizeRows(_ rows: Float8Rows, dtype: DType) throws -> Tensor {
        guard let kernel = try widening("e4m3", rows.values, rows.scales, dtype: dtype) else {
            return try FusedReference.dequantizeRows(self, rows, dtype: dtype)
        }
        return try widen(kernel, rows.values, rows.scales, dtype: dtype, op: "widen (fp8)")
    }

    /// The widening kernel for these rows, or nil where the reference runs (kernels off, a width
    /// not a multiple of 4, scales that do not fit).
    private func widening(_ code: String, _ values: Tensor, _ scales: Tensor, dtype: DType) throws -> String? {
        let output = try suffix(dtype, "dequantizeRows")
        let columns = values.shape.rank == 0 ? 0 : values.shape[-1]
        let rows = columns == 0 ? 0 : values.count / columns
        guard useFusedKernels, columns % 4 == 0, rows > 0, scales.dtype == .float32, scales.count == rows else {
            return nil
        }
        return "dequantize_rows_\(code)_\(output)"
    }

    private func widen(_ kernel: String, _ values: Tensor, _ scales: Tensor, dtype: DType, op: String) throws -> Tensor {
        let columns = values.shape[-1], rows = values.count / columns
        return try profiled(op) {
            let out = try allocate(shape: values.shape, dtype: dtype)
            try launch(kernel, blocks: gridBlocks(values.count / 4), threads: 256,
                       [.address(values.address), .address(scales.address), .address(out.address),
                        .int64(Int64(rows)), .int64(Int64(columns))])
            return out
        }
    }
}
