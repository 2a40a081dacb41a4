import ZImageTensor

// Data-movement ops copy bytes, so they work for every dtype.
extension CPUBackend {
    /// See `Backend.concat`.
    public func concat(_ tensors: [Tensor], axis: Int) throws -> Tensor {
        let (shape, resolved) = try Movement.concatShape(tensors.map(\.shape), axis: axis)
        guard let dtype = tensors.first?.dtype, tensors.allSatisfy({ $0.dtype == dtype }) else {
            throw TensorError.invalidArgument(op: "concat", detail: "inputs have different dtypes")
        }
        let out = try allocate(shape: shape, dtype: dtype)
        let outer = shape.dims[..<resolved].reduce(1, *)
        let inner = shape.dims[(resolved + 1)...].reduce(1, *) * dtype.byteSize
        let outRow = shape[resolved] * inner
        var offset = 0
        for tensor in tensors {
            let span = tensor.shape[resolved] * inner
            let src = UnsafeRawPointer(tensor.hostPointer), dst = out.hostPointer + offset
            for o in 0..<outer { (dst + o * outRow).copyMemory(from: src + o * span, byteCount: span) }
            offset += span
        }
        return out
    }

    /// See `Backend.slice`.
    public func slice(_ x: Tensor, axis: Int, range: Range<Int>) throws -> Tensor {
        let resolved = try Movement.checkSlice(x.shape, axis: axis, range: range)
        var dims = x.shape.dims
        dims[resolved] = range.count
        let out = try allocate(shape: Shape(dims), dtype: x.dtype)
        let outer = dims[..<resolved].reduce(1, *)
        let inner = dims[(resolved + 1)...].reduce(1, *) * x.dtype.byteSize
        let src = UnsafeRawPointer(x.hostPointer), dst = out.hostPointer
        let span = range.count * inner, stride = x.shape[resolved] * inner
        for o in 0..<outer {
            (dst + o * span).copyMemory(from: src + o * stride + range.lowerBound * inner, byteCount: span)
        }
        return out
    }

    /// See `Backend.permute`.
    public func permute(_ x: Tensor, _ dims: [Int]) throws -> Tensor {
        try Movement.checkPermutation(dims, rank: x.shape.rank)
        let outShape = Shape(dims.map { x.shape[$0] })
        let out = try allocate(shape: outShape, dtype: x.dtype)
        guard x.count > 0, outShape.rank > 0 else {
            if x.count > 0 { out.hostPointer.copyMemory(from: x.hostPointer, byteCount: x.byteCount) }
            return out
        }
        let inStrides = x.shape.strides
        let strides = dims.map { inStrides[$0] }       // input stride of each output axis
        let width = outShape[-1], lastStride = strides[outShape.rank - 1]
        let rows = outShape.count / width
        let outer = Array(outShape.dims.dropLast())
        let size = x.dtype.byteSize
        let src = UnsafeRawPointer(x.hostPointer), dst = out.hostPointer
        parallelFor(rows, threads: threads, minimumChunk: max(1, 8192 / width)) { range in
            for row in range {
                var rest = row, offset = 0
                for axis in stride(from: outer.count - 1, through: 0, by: -1) {
                    offset += (rest % outer[axis]) * strides[axis]
                    rest /= outer[axis]
                }
                let target = dst + row * width * size
                for j in 0..<width {
                    (target + j * size).copyMemory(from: src + (offset + j * lastStride) * size, byteCount: size)
                }
            }
        }
        return out
    }

    /// See `Backend.upsampleNearest2x`.
    public func upsampleNearest2x(_ x: Tensor) throws -> Tensor {
        let out = try allocate(shape: LayoutChecks.upsampledShape(x.shape), dtype: x.dtype)
        let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let size = x.dtype.byteSize
        let src = UnsafeRawPointer(x.hostPointer), dst = out.hostPointer
        parallelFor(planes * h, threads: threads) { range in
            for row in range {
                let from = src + row * w * size
                let to = dst + 2 * row * 2 * w * size
                for j in 0..<w {
                    (to + 2 * j * size).copyMemory(from: from + j * size, byteCount: size)
                    (to + (2 * j + 1) * size).copyMemory(from: from + j * size, byteCount: size)
                }
                (to + 2 * w * size).copyMemory(from: to, byteCount: 2 * w * size)
            }
        }
        return out
    }

    /// See `Backend.embedding`.
    public func embedding(_ weight: Tensor, ids: Tensor) throws -> Tensor {
        let indices: [Int]
        switch ids.dtype {
        case .int32: indices = (0..<ids.count).map { Int(ids.hostPointer.load(fromByteOffset: 4 * $0, as: Int32.self)) }
        case .int64: indices = (0..<ids.count).map { Int(ids.hostPointer.load(fromByteOffset: 8 * $0, as: Int64.self)) }
        default: throw TensorError.unsupportedDType(op: "embedding ids", dtype: ids.dtype)
        }
        try LayoutChecks.checkEmbedding(table: weight.shape, ids: indices)
        let width = weight.shape[1]
        let out = try allocate(shape: Shape(ids.shape.dims + [width]), dtype: weight.dtype)
        let rowBytes = width * weight.dtype.byteSize
        let src = UnsafeRawPointer(weight.hostPointer), dst = out.hostPointer
        for (i, index) in indices.enumerated() {
            (dst + i * rowBytes).copyMemory(from: src + index * rowBytes, byteCount: rowBytes)
        }
        return out
    }
}
