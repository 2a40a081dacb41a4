import ZImageTensor

// GroupNorm (and GroupNorm + SiLU) in bf16 with the parallel three-pass kernels of
// Kernels/group_norm.cu; other dtypes and odd sizes take the one-block-per-group kernel.
extension CUDABackend {
    static let groupNormChunk = 16384

    /// The three-pass GroupNorm, or nil where it does not apply.
    func parallelGroupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                           silu: Bool) throws -> Tensor? {
        let spatial = try LayoutChecks.groupNormSpatial(x.shape, groups: groups, weight: weight?.shape, bias: bias?.shape)
        let channels = x.shape[1], perGroup = channels / groups
        let groupSize = perGroup * spatial, groupCount = x.shape[0] * groups
        guard useFusedKernels, x.dtype == .bfloat16, spatial % 8 == 0, groupSize > 0, groupCount <= 65535 else {
            return nil
        }
        let gamma = try weight?.cast(to: .bfloat16), beta = try bias?.cast(to: .bfloat16)
        let chunks = (groupSize + Self.groupNormChunk - 1) / Self.groupNormChunk
        let partial = try allocate(shape: [groupCount * chunks * 2], dtype: .float32)
        let stats = try allocate(shape: [groupCount * 2], dtype: .float32)
        let out = try allocate(shape: x.shape, dtype: .bfloat16)
        try launch("gn_partial_bf16", grid: (chunks, groupCount, 1), threads: 256,
                   [.address(x.address), .address(partial.address), .int64(Int64(groupSize)),
                    .int64(Int64(Self.groupNormChunk))])
        try launch("gn_finalize", blocks: (groupCount + 127) / 128, threads: 128,
                   [.address(partial.address), .address(stats.address), .int64(Int64(groupCount)),
                    .int64(Int64(groupSize)), .int64(Int64(Self.groupNormChunk)), .int32(Int32(chunks)), .float(eps)])
        try launch("gn_apply_bf16", blocks: gridBlocks(x.count / 8), threads: 256,
                   [.address(x.address), .address(stats.address), .address(gamma?.address ?? 0),
                    .address(beta?.address ?? 0), .address(out.address), .int64(Int64(x.count)),
                    .int64(Int64(channels)), .int64(Int64(perGroup)), .int64(Int64(spatial)), .int32(silu ? 1 : 0)])
        withExtendedLifetime((gamma, beta, partial, stats)) {}
        return out
    }

    public func groupNormSiLU(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) throws -> Tensor {
        try profiled("norm (fused)") {
            if let out = try parallelGroupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: true) {
                return out
            }
            return try FusedReference.groupNormSiLU(self, x, groups: groups, weight: weight, bias: bias, eps: eps)
        }
    }
}
