import ZImageTensor

// Convolutions through cuDNN (no im2col buffer: the VAE's 3×3 convolutions at 1024² would need
// gigabytes of it), for bf16 and f16 where libcudnn is present.
extension CUDABackend {
    static let convolutionWorkspaceLimit = 512 << 20

    /// The cuDNN convolution, or nil where it does not apply (then the caller uses im2col).
    func cudnnConvolution(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int,
                          geometry g: Conv2DGeometry) throws -> Tensor? {
        let type: CUDNN.DataType
        switch x.dtype {
        case .bfloat16: type = .bfloat16
        case .float16: type = .half
        default: return nil
        }
        let dims = [g.batch, g.inChannels, g.height, g.width, g.outChannels, g.kernelHeight, g.kernelWidth, padding,
                    stride, g.outHeight, g.outWidth]
        guard useFusedKernels, dims.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }), let dnn = cudnn() else { return nil }
        let key = CUDNN.Key(n: Int32(g.batch), c: Int32(g.inChannels), h: Int32(g.height), w: Int32(g.width),
                            k: Int32(g.outChannels), r: Int32(g.kernelHeight), s: Int32(g.kernelWidth),
                            padding: Int32(padding), stride: Int32(stride), outH: Int32(g.outHeight),
                            outW: Int32(g.outWidth), type: type.rawValue)
        let kernel = try weight.cast(to: x.dtype), shift = try bias?.cast(to: x.dtype)
        let out = try allocate(shape: [g.batch, g.outChannels, g.outHeight, g.outWidth], dtype: x.dtype)
        guard out.count > 0 else { return out }
        // The first time a shape is seen, time the algorithms on these operands (with the whole
        // workspace limit); a shape cuDNN has no algorithm for goes to im2col.
        if !dnn.hasPlan(key) {
            let trial = try allocate(shape: [Self.convolutionWorkspaceLimit], dtype: .uint8)
            try makeCurrent()
            do {
                try dnn.choose(key, x: UInt64(x.address), w: UInt64(kernel.address), y: UInt64(out.address),
                               workspace: UInt64(trial.address), workspaceLimit: Self.convolutionWorkspaceLimit)
            } catch { return nil }
            withExtendedLifetime(trial) {}
        }
        let bytes = dnn.workspaceBytes(key) ?? 0
        let workspace = try allocate(shape: [max(bytes, 1)], dtype: .uint8)
        try makeCurrent()
        try dnn.forward(key, x: UInt64(x.address), w: UInt64(kernel.address), bias: shift.map { UInt64($0.address) },
                        y: UInt64(out.address), workspace: UInt64(workspace.address),
                        workspaceLimit: Self.convolutionWorkspaceLimit)
        withExtendedLifetime((kernel, shift, workspace)) {}
        return out
    }

    /// `y[n, c, ...] += bias[c]` in place (bf16, planes a multiple of 8), rounded as PyTorch's add.
    func addChannelBias(_ y: Tensor, _ bias: Tensor) throws {
        let plane = y.count / (y.shape[0] * y.shape[1])
        let shift = try bias.cast(to: .bfloat16)
        try launch("bias_add_nchw_bf16", blocks: gridBlocks(y.count / 8), threads: 256,
                   [.address(y.address), .address(shift.address), .int64(Int64(y.count)), .int64(Int64(y.shape[1])),
                    .int64(Int64(plane))])
        withExtendedLifetime(shift) {}
    }
}
