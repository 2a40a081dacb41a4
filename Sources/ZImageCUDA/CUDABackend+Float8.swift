import Foundation
import ZImageTensor

// FP8 linear layers (`--precision fp8`): rows quantised to e4m3 by Kernels/quantize.cu, products
// by cuBLASLt's FP8 GEMM with the row scales applied as outer-vector scales, output in bf16.
// FP8 tensor cores need compute capability 8.9 (Ada) or 9.0 (Hopper); other GPUs widen FP8 weights
// for a dense GEMM instead (CUDABackend+WeightFormats.swift) and refuse the FP8 GEMM itself.
extension CUDABackend {
    /// Whether this GPU has FP8 tensor cores.
    public var supportsFloat8: Bool {
        let (major, minor) = info.computeCapability
        return major * 10 + minor >= 89
    }

    func requireFloat8() throws {
        guard supportsFloat8 else {
            throw CUDAError.unsupported("fp8 needs FP8 tensor cores (compute capability 8.9 or later: Ada, Hopper); "
                                        + "\(info.name) is \(info.computeCapability.major).\(info.computeCapability.minor). "
                                        + "Use --precision bf16")
        }
    }

    public func rmsNormScaledFloat8(_ x: Tensor, weight: Tensor?, scale: Tensor?, eps: Float) throws -> Float8Rows {
        try requireFloat8()
        let (rows, width) = try LastAxis.geometry(x.shape, op: "rmsNormScaledFloat8", parameters: [weight?.shape])
        let fits = { (t: Tensor?) in t.map { $0.dtype == .bfloat16 && $0.count == width } ?? true }
        guard useFusedKernels, x.dtype == .bfloat16, width % 8 == 0, width <= 4096, rows > 0, rows <= Int(Int32.max),
              fits(weight), fits(scale) else {
            return try quantizeRowsFloat8(rmsNormScaled(x, weight: weight, scale: scale, eps: eps))
        }
        return try profiled("norm+quantize (fp8)") {
            let values = try allocate(shape: x.shape, dtype: .float8E4M3)
            let scales = try allocate(shape: [rows], dtype: .float32)
            // 256 threads as rms_norm_scale_bf16, so the row sums (and every bit) agree with it.
            try launch(width <= 2048 ? "rms_norm_scale_e4m3_bf16_r1" : "rms_norm_scale_e4m3_bf16_r2", blocks: rows,
                       threads: 256,
                       [.address(x.address), .address(weight?.address ?? 0), .address(scale?.address ?? 0),
                        .address(values.address), .address(scales.address), .int64(Int64(width)), .float(eps)])
            return Float8Rows(values: values, scales: scales)
        }
    }

    /// Quantising needs no FP8 hardware (integer steps): GPUs without FP8 tensor cores store FP8
    /// weights too and widen them for a dense GEMM (`widensFloat8Weights`).
    public func quantizeRowsFloat8(_ x: Tensor) throws -> Float8Rows {
        let columns = x.shape.rank == 0 ? 0 : x.shape[-1]
        let rows = columns == 0 ? 0 : x.count / columns
        guard useFusedKernels, x.dtype == .bfloat16, columns % 8 == 0, rows > 0, rows <= Int(Int32.max) else {
            return try FusedReference.quantizeRowsFloat8(self, x)
        }
        return try profiled("quantize (fp8)") {
            let values = try allocate(shape: x.shape, dtype: .float8E4M3)
            let scales = try allocate(shape: [rows], dtype: .float32)
            // One read of each row where it fits in registers (≤ 4 groups of 8 a thread), else two.
            let groups = columns / 8
            let perThread = groups <= 1024 ? 1 : groups <= 2048 ? 2 : groups <= 4096 ? 4 : 0
            let (name, threads) = perThread == 0
                ? ("quantize_rows_e4m3_bf16", 256)
                : ("quantize_rows_e4m3_bf16_r\(perThread)", ((groups + perThread - 1) / perThread + 31) / 32 * 32)
            try launch(name, blocks: rows, threads: threads,
                       [.address(x.address), .address(values.address), .address(scales.address),
                        .int64(Int64(columns))])
            return Float8Rows(values: values, scales: scales)
        }
    }

    public func float8Linear(_ x: Float8Rows, _ weight: Float8Rows, bias: Tensor?, dtype: DType) throws -> Tensor {
        try requireFloat8()
        let (rows, k, n) = (x.rows, x.columns, weight.rows)
        // cuBLASLt's FP8 GEMM wants 16-byte aligned rows (k % 16) and output rows (n % 8 for bf16).
        guard useFusedKernels, dtype == .bfloat16, weight.values.shape.rank == 2, weight.columns == k, k % 16 == 0,
              n % 16 == 0, rows > 0 else {
            return try FusedReference.float8Linear(self, x, weight, bias: bias, dtype: dtype)
        }
        return try profiled("matmul (fp8)") {
            if let bias, bias.shape != Shape([n]) {
                throw TensorError.shapeMismatch(op: "float8Linear", detail: "bias \(bias.shape) for \(n) outputs")
            }
            let shift = try bias?.cast(to: .bfloat16)
            var shape = x.values.shape.dims
            shape[shape.count - 1] = n
            let out = try allocate(shape: Shape(shape), dtype: .bfloat16)
            // Row-major out[rows, n] = x · wᵀ is column-major outᵀ = w · xᵀ: the weight is cuBLASLt's A
            // (transposed: FP8 wants "TN"), the activation its B; A's rows are output channels.
            let a = CUBLASLt.Operand(address: UInt64(weight.values.address), rows: k, cols: n, leading: k, batchStride: 0)
            let b = CUBLASLt.Operand(address: UInt64(x.values.address), rows: k, cols: rows, leading: k, batchStride: 0)
            let d = CUBLASLt.Operand(address: UInt64(out.address), rows: n, cols: rows, leading: n, batchStride: 0)
            let workspace = try matmulWorkspace()
            try makeCurrent()
            if !outerVectorScalesRefused {
                do {
                    try cublas().matmul(dtype: .float8E4M3, outputDType: .bfloat16, a: a, transposeA: true, b: b,
                                        transposeB: false, d: d, batch: 1, bias: shift.map { UInt64($0.address) },
                                        rowScales: (UInt64(weight.scales.address), UInt64(x.scales.address)),
                                        workspace: UInt64(workspace.address), workspaceBytes: workspace.size,
                                        stream: stream)
                    withExtendedLifetime(shift) {}
                    return out
                } catch CUDAError.cublas {
                    outerVectorScalesRefused = true   // this cuBLASLt has no outer-vector scaling
                }
            }
            // Unscaled FP8 product in bf16, then both scales (and the bias) in one pass.
            try cublas().matmul(dtype: .float8E4M3, outputDType: .bfloat16, a: a, transposeA: true, b: b,
                                transposeB: false, d: d, batch: 1, bias: nil, workspace: UInt64(workspace.address),
                                workspaceBytes: workspace.size, stream: stream)
            try launch("scale_rows_columns_bf16", blocks: gridBlocks(rows * n / 8), threads: 256,
                       [.address(out.address), .address(x.scales.address), .address(weight.scales.address),
                        .address(shift?.address ?? 0), .int64(Int64(rows)), .int64(Int64(n))])
            withExtendedLifetime(shift) {}
            return out
        }
    }
}
