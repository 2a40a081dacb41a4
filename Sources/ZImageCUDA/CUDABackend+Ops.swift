import ZImageTensor

extension CUDABackend {
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, bias: Tensor?) throws -> Tensor {
        try profiled("matmul") {
            let g = try MatmulGeometry(a: a.shape, b: b.shape, transposeA: transposeA, transposeB: transposeB,
                                       bias: bias?.shape)
            guard a.dtype.isComputeType else { throw TensorError.unsupportedDType(op: "matmul", dtype: a.dtype) }
            let rhs = try b.cast(to: a.dtype)
            let shift = try bias?.cast(to: a.dtype)
            let out = try allocate(shape: g.outputShape, dtype: a.dtype)
            guard g.batch * g.m * g.n > 0, g.k > 0 else { return out }
            // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: B's buffer is cuBLASLt's
            // first operand and A's the second; the bias runs along the rows of Cᵀ (output features).
            let folded = !g.batchedB && !transposeA
            let rows = folded ? g.batch * g.m : g.m
            let (m, n, k) = (g.m, g.n, g.k)
            let first = CUBLASLt.Operand(address: UInt64(rhs.address), rows: transposeB ? k : n, cols: transposeB ? n : k,
                                         leading: transposeB ? k : n, batchStride: g.batchedB ? k * n : 0)
            let second = CUBLASLt.Operand(address: UInt64(a.address), rows: transposeA ? rows : k,
                                          cols: transposeA ? k : rows, leading: transposeA ? rows : k, batchStride: m * k)
            let result = CUBLASLt.Operand(address: UInt64(out.address), rows: n, cols: rows, leading: n,
                                          batchStride: m * n)
            let workspace = try matmulWorkspace()
            try makeCurrent()
            try cublas().matmul(dtype: a.dtype, a: first, transposeA: transposeB, b: second, transposeB: transposeA,
                                d: result, batch: folded ? 1 : g.batch, bias: shift.map { UInt64($0.address) },
                                workspace: UInt64(workspace.address), workspaceBytes: workspace.size, stream: stream)
            // Keep the operands alive until the stream has read them.
            withExtendedLifetime((rhs, shift)) {}
            return out
        }
    }

    public func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try profiled("elementwise") {
            let geometry = try BroadcastGeometry(a.shape, b.shape, op: op.rawValue)
            let suffix = try suffix(a.dtype, op.rawValue)
            let rhs = try b.cast(to: a.dtype)
            let out = try allocate(shape: geometry.outputShape, dtype: a.dtype)
            let count = out.count
            guard count > 0 else { return out }
            var dims = geometry.outputShape.dims, aStrides = geometry.aStrides, bStrides = geometry.bStrides
            if a.shape == b.shape { (dims, aStrides, bStrides) = ([count], [1], [1]) }
            guard dims.count <= CUDAKernels.maximumRank else {
                throw TensorError.invalidArgument(op: op.rawValue, detail: "rank \(dims.count) > \(CUDAKernels.maximumRank)")
            }
            let pad = CUDAKernels.maximumRank - dims.count
            let fields: [Int] = [count, dims.count] + dims + Array(repeating: 1, count: pad)
                + aStrides + Array(repeating: 0, count: pad) + bStrides + Array(repeating: 0, count: pad)
            let bytes = fields.flatMap { value in withUnsafeBytes(of: Int64(value).littleEndian) { Array($0) } }
            try launch("binary_\(suffix)", blocks: gridBlocks(count), threads: 256,
                       [.int32(Int32(CUDAKernels.code(op))), .address(a.address), .address(rhs.address),
                        .address(out.address), .bytes(bytes)])
            return out
        }
    }

    public func affine(_ x: Tensor, scale: Float, shift: Float) throws -> Tensor {
        try profiled("elementwise") {
            let suffix = try suffix(x.dtype, "affine")
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            guard x.count > 0 else { return out }
            try launch("affine_\(suffix)", blocks: gridBlocks(x.count), threads: 256,
                       [.address(x.address), .address(out.address), .int64(Int64(x.count)), .float(scale), .float(shift)])
            return out
        }
    }

    public func unary(_ op: UnaryOp, _ x: Tensor) throws -> Tensor {
        try profiled("elementwise") {
            let suffix = try suffix(x.dtype, op.rawValue)
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            guard x.count > 0 else { return out }
            try launch("unary_\(suffix)", blocks: gridBlocks(x.count), threads: 256,
                       [.int32(Int32(CUDAKernels.code(op))), .address(x.address), .address(out.address),
                        .int64(Int64(x.count))])
            return out
        }
    }

    public func cast(_ x: Tensor, to dtype: DType) throws -> Tensor {
        try profiled("cast") {
            let from = try suffix(x.dtype, "cast"), to = try suffix(dtype, "cast")
            if from == to { return x }
            let out = try allocate(shape: x.shape, dtype: dtype)
            guard x.count > 0 else { return out }
            try launch("cast_\(from)_to_\(to)", blocks: gridBlocks(x.count), threads: 256,
                       [.address(x.address), .address(out.address), .int64(Int64(x.count))])
            return out
        }
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) throws -> Tensor {
        try profiled("norm") {
            let (rows, width) = try LastAxis.geometry(x.shape, op: "rmsNorm", parameters: [weight?.shape])
            let suffix = try suffix(x.dtype, "rmsNorm")
            let gamma = try weight?.cast(to: x.dtype)
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            guard rows > 0 else { return out }
            try launch("rms_norm_\(suffix)", blocks: rows, threads: 256,
                       [.address(x.address), .address(gamma?.address ?? 0), .address(out.address), .int64(Int64(width)),
                        .float(eps)])
            withExtendedLifetime(gamma) {}
            return out
        }
    }
}
