import ZImageTensor

// Norms, softmax, attention, RoPE, convolution and data movement on the GPU. Straightforward
// kernels (one block per row or group, grid-stride loops) and cuBLASLt products, checked against
// the CPU backend by `ZImageBench cuda-check`; the fused kernels are in CUDABackend+Fused.
extension CUDABackend {
    private func elementSuffix(_ dtype: DType) throws -> String {
        switch dtype.byteSize {
        case 1: "b1"
        case 2: "b2"
        case 4: "b4"
        case 8: "b8"
        default: throw TensorError.unsupportedDType(op: "copy", dtype: dtype)
        }
    }

    private func int64Bytes(_ values: [Int]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: Int64(value).littleEndian) { Array($0) } }
    }

    /// Copies `dims` elements from `source` (element strides `inStrides`) to `destination` (`outStrides`).
    func stridedCopy(_ source: UInt, _ destination: UInt, dtype: DType, dims: [Int], inStrides: [Int],
                     outStrides: [Int]) throws {
        let count = dims.reduce(1, *)
        guard count > 0 else { return }
        guard dims.count <= CUDAKernels.maximumRank else {
            throw TensorError.invalidArgument(op: "copy", detail: "rank \(dims.count) > \(CUDAKernels.maximumRank)")
        }
        let pad = CUDAKernels.maximumRank - dims.count
        let fields = [count, dims.count] + dims + Array(repeating: 1, count: pad) + inStrides
            + Array(repeating: 0, count: pad) + outStrides + Array(repeating: 0, count: pad)
        try launch("copy_\(try elementSuffix(dtype))", blocks: gridBlocks(count), threads: 256,
                   [.address(source), .address(destination), .bytes(int64Bytes(fields))])
    }

    public func permute(_ x: Tensor, _ dims: [Int]) throws -> Tensor {
        try profiled("copy") {
            try Movement.checkPermutation(dims, rank: x.shape.rank)
            let out = try allocate(shape: Shape(dims.map { x.shape[$0] }), dtype: x.dtype)
            let strides = x.shape.strides
            try stridedCopy(x.address, out.address, dtype: x.dtype, dims: out.shape.dims, inStrides: dims.map { strides[$0] },
                            outStrides: out.shape.strides)
            return out
        }
    }

    public func slice(_ x: Tensor, axis: Int, range: Range<Int>) throws -> Tensor {
        try profiled("copy") {
            let resolved = try Movement.checkSlice(x.shape, axis: axis, range: range)
            var dims = x.shape.dims
            dims[resolved] = range.count
            let out = try allocate(shape: Shape(dims), dtype: x.dtype)
            let strides = x.shape.strides
            try stridedCopy(x.address + UInt(range.lowerBound * strides[resolved] * x.dtype.byteSize), out.address,
                            dtype: x.dtype, dims: dims, inStrides: strides, outStrides: out.shape.strides)
            return out
        }
    }

    public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        try profiled("copy") {
            let (shape, resolved) = try Movement.concatShape(tensors.map(\.shape), axis: axis)
            guard let dtype = tensors.first?.dtype, tensors.allSatisfy({ $0.dtype == dtype }) else {
                throw TensorError.invalidArgument(op: "concat", detail: "inputs have different dtypes")
            }
            let out = try allocate(shape: shape, dtype: dtype)
            let outStrides = shape.strides
            var offset = 0
            for tensor in tensors {
                try stridedCopy(tensor.address, out.address + UInt(offset * outStrides[resolved] * dtype.byteSize),
                                dtype: dtype, dims: tensor.shape.dims, inStrides: tensor.shape.strides, outStrides: outStrides)
                offset += tensor.shape[resolved]
            }
            return out
        }
    }

    public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
        try profiled("copy") {
            let out = try allocate(shape: LayoutChecks.upsampledShape(x.shape), dtype: x.dtype)
            let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
            try launch("upsample_\(try elementSuffix(x.dtype))", blocks: gridBlocks(out.count), threads: 256,
                       [.address(x.address), .address(out.address), .int64(Int64(planes)), .int64(Int64(h)), .int64(Int64(w))])
            return out
        }
    }

    public func embedding(_ weight: Tensor, ids: Tensor) throws -> Tensor {
        try profiled("copy") {
            // Ids are few: check them on the host (same errors as the CPU) and send them as int32.
            let indices = try ids.toFloats().map { Int($0) }
            try LayoutChecks.checkEmbedding(table: weight.shape, ids: indices)
            let device = try tensor(ids: indices.map { Int32($0) }, shape: [indices.count])
            let out = try allocate(shape: Shape(ids.shape.dims + [weight.shape[1]]), dtype: weight.dtype)
            try launch("gather_\(try elementSuffix(weight.dtype))", blocks: gridBlocks(out.count), threads: 256,
                       [.address(weight.address), .address(device.address), .address(out.address),
                        .int64(Int64(indices.count)), .int64(Int64(weight.shape[1]))])
            withExtendedLifetime(device) {}
            return out
        }
    }

    public func softmax(_ x: Tensor) throws -> Tensor {
        try profiled("softmax") {
            let (rows, width) = try LastAxis.geometry(x.shape, op: "softmax")
            return try softmaxRows(x, rows: rows, width: width, scale: 1, mask: nil, rowsPerItem: rows, queries: rows,
                                   causal: false)
        }
    }

    func softmaxRows(_ x: Tensor, rows: Int, width: Int, scale: Float, mask: Tensor?, rowsPerItem: Int, queries: Int,
                     causal: Bool) throws -> Tensor {
        let out = try allocate(shape: x.shape, dtype: x.dtype)
        guard rows > 0 else { return out }
        try launch("softmax_\(try suffix(x.dtype, "softmax"))", blocks: rows, threads: 256,
                   [.address(x.address), .address(out.address), .int64(Int64(width)), .float(scale),
                    .address(mask?.address ?? 0), .int64(Int64(max(rowsPerItem, 1))), .int64(Int64(max(queries, 1))),
                    .int32(causal ? 1 : 0)])
        return out
    }

    public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try profiled("norm") {
            let (rows, width) = try LastAxis.geometry(x.shape, op: "layerNorm", parameters: [weight?.shape, bias?.shape])
            let gamma = try weight?.cast(to: x.dtype), beta = try bias?.cast(to: x.dtype)
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            guard rows > 0 else { return out }
            try launch("layer_norm_\(try suffix(x.dtype, "layerNorm"))", blocks: rows, threads: 256,
                       [.address(x.address), .address(gamma?.address ?? 0), .address(beta?.address ?? 0),
                        .address(out.address), .int64(Int64(width)), .float(eps)])
            withExtendedLifetime((gamma, beta)) {}
            return out
        }
    }

    public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try profiled("norm") {
            if let out = try parallelGroupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: false) {
                return out
            }
            let spatial = try LayoutChecks.groupNormSpatial(x.shape, groups: groups, weight: weight?.shape, bias: bias?.shape)
            let gamma = try weight?.cast(to: x.dtype), beta = try bias?.cast(to: x.dtype)
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            try launch("group_norm_\(try suffix(x.dtype, "groupNorm"))", blocks: x.shape[0] * groups, threads: 256,
                       [.address(x.address), .address(gamma?.address ?? 0), .address(beta?.address ?? 0),
                        .address(out.address), .int64(Int64(groups)), .int64(Int64(x.shape[1] / groups)),
                        .int64(Int64(spatial)), .float(eps)])
            withExtendedLifetime((gamma, beta)) {}
            return out
        }
    }

    public func rope(_ x: Tensor, cos: Tensor, sin: Tensor, layout: RoPELayout) throws -> Tensor {
        try profiled("rope") {
            let perItem = try LayoutChecks.ropeTablesPerItem(x: x.shape, cos: cos.shape, sin: sin.shape)
            let (batch, length, heads, dim) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let c = try cos.cast(to: .float32), s = try sin.cast(to: .float32)
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            try launch("rope_\(try suffix(x.dtype, "rope"))", blocks: gridBlocks(x.count / 2), threads: 256,
                       [.address(x.address), .address(c.address), .address(s.address), .address(out.address),
                        .int64(Int64(batch)), .int64(Int64(length)), .int64(Int64(heads)), .int64(Int64(dim)),
                        .int32(perItem ? 1 : 0), .int32(layout == .interleavedPairs ? 1 : 0)])
            withExtendedLifetime((c, s)) {}
            return out
        }
    }

    /// Flash attention where it applies (bf16, head dim 128: CUDABackend+Fused); elsewhere, per
    /// (item, key head): scores = scale·Q·Kᵀ in float32 by cuBLASLt over the query
    /// heads that share the key head, masked softmax, then P·V written into the output in place.
    public func attention(query: Tensor, key: Tensor, value: Tensor, keyMask: Tensor?, causal: Bool,
                          scale: Float) throws -> Tensor {
        try profiled("attention") {
            let g = try AttentionGeometry(query: query.shape, key: key.shape, value: value.shape, keyMask: keyMask?.shape)
            if let out = try cudnnAttention(query: query, key: key, value: value, keyMask: keyMask, causal: causal,
                                            scale: scale, geometry: g) { return out }
            if let out = try flashAttention(query: query, key: key, value: value, keyMask: keyMask, causal: causal,
                                            scale: scale, geometry: g) { return out }
            let dtype = query.dtype
            guard CUBLASLt.dataType(dtype) != nil else { throw TensorError.unsupportedDType(op: "attention", dtype: dtype) }
            let k = try key.cast(to: dtype), v = try value.cast(to: dtype)
            let mask: Tensor? = try keyMask.map { mask in
                let values = try mask.toFloats().map { $0 != 0 ? UInt8(1) : UInt8(0) }
                return try values.withUnsafeBytes { try upload($0, shape: mask.shape, dtype: .uint8) }
            }
            let out = try allocate(shape: g.outputShape, dtype: dtype)
            let (lq, lk, hq, hk, d, dv) = (g.queryLength, g.keyLength, g.queryHeads, g.keyHeads, g.headDim, g.valueDim)
            let group = hq / hk
            let size = dtype.byteSize
            let workspace = try matmulWorkspace()
            for b in 0..<g.batch {
                for kh in 0..<hk {
                    // Scores [group, lq, lk] (float32): column-major Sᵀ = K · Qᵀ per query head.
                    let scores = try allocate(shape: [group, lq, lk], dtype: .float32)
                    let qBase = query.address + UInt(((b * lq * hq) + kh * group) * d * size)
                    let kBase = k.address + UInt(((b * lk * hk) + kh) * d * size)
                    try makeCurrent()
                    try cublas().matmul(
                        dtype: dtype, outputDType: .float32,
                        a: .init(address: UInt64(kBase), rows: d, cols: lk, leading: hk * d, batchStride: 0), transposeA: true,
                        b: .init(address: UInt64(qBase), rows: d, cols: lq, leading: hq * d, batchStride: d), transposeB: false,
                        d: .init(address: UInt64(scores.address), rows: lk, cols: lq, leading: lk, batchStride: lq * lk),
                        batch: group, bias: nil, alpha: scale, workspace: UInt64(workspace.address),
                        workspaceBytes: workspace.size, stream: stream)
                    let maskRow = try mask?.rows(b..<(b + 1))
                    let probabilities = try softmaxRows(scores, rows: group * lq, width: lk, scale: 1, mask: maskRow,
                                                        rowsPerItem: group * lq, queries: lq, causal: causal)
                        .cast(to: dtype)
                    // Output rows of these heads: column-major Oᵀ = Vᵀ · Pᵀ.
                    let vBase = v.address + UInt(((b * lk * hk) + kh) * dv * size)
                    let oBase = out.address + UInt(((b * lq * hq) + kh * group) * dv * size)
                    try makeCurrent()
                    try cublas().matmul(
                        dtype: dtype,
                        a: .init(address: UInt64(vBase), rows: dv, cols: lk, leading: hk * dv, batchStride: 0), transposeA: false,
                        b: .init(address: UInt64(probabilities.address), rows: lk, cols: lq, leading: lk, batchStride: lq * lk),
                        transposeB: false,
                        d: .init(address: UInt64(oBase), rows: dv, cols: lq, leading: hq * dv, batchStride: dv),
                        batch: group, bias: nil, workspace: UInt64(workspace.address), workspaceBytes: workspace.size,
                        stream: stream)
                    withExtendedLifetime((scores, probabilities)) {}
                }
            }
            withExtendedLifetime((k, v, mask)) {}
            return out
        }
    }

    /// Convolution by cuDNN in half types where cuDNN is present (CUDABackend+Convolution);
    /// elsewhere as im2col + a cuBLASLt product per image.
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) throws -> Tensor {
        let g = try Conv2DGeometry(input: x.shape, weight: weight.shape, bias: bias?.shape, stride: stride, padding: padding)
        if let out = try cudnnConvolution(x, weight: weight, bias: bias, stride: stride, padding: padding, geometry: g) {
            return out
        }
        return try profiled("conv2d (im2col)") {
            let dtype = x.dtype
            let kernel = try weight.cast(to: dtype).reshaped([g.outChannels, g.inChannels * g.kernelHeight * g.kernelWidth])
            let shift = try bias?.cast(to: dtype).reshaped([g.outChannels, 1])
            let patch = g.inChannels * g.kernelHeight * g.kernelWidth, plane = g.outHeight * g.outWidth
            var images: [Tensor] = []
            for n in 0..<g.batch {
                let image = x.address + UInt(n * g.inChannels * g.height * g.width * dtype.byteSize)
                let columns = try allocate(shape: [patch, plane], dtype: dtype)
                try launch("im2col_\(try suffix(dtype, "conv2d"))", blocks: gridBlocks(patch * plane), threads: 256,
                           [.address(image), .address(columns.address), .int64(Int64(g.inChannels)), .int64(Int64(g.height)),
                            .int64(Int64(g.width)), .int64(Int64(g.kernelHeight)), .int64(Int64(g.kernelWidth)),
                            .int64(Int64(stride)), .int64(Int64(padding)), .int64(Int64(g.outHeight)),
                            .int64(Int64(g.outWidth))])
                var product = try kernel.matmul(columns)
                if let shift { product = try product + shift }
                images.append(try product.reshaped([1, g.outChannels, g.outHeight, g.outWidth]))
            }
            return images.count == 1 ? images[0] : try concat(images, axis: 0)
        }
    }
}
