import Foundation
import ZImageTensor

// The fused ops and flash attention (Kernels/*.cu) where their kernels apply (bf16, aligned
// widths, head dim 128); the composed reference (FusedReference, or the per-head attention path)
// everywhere else, so every dtype and shape still works.
extension CUDABackend {
    /// Whether `t` is absent, or bf16 holding exactly `count` elements.
    private func bf16Row(_ t: Tensor?, _ count: Int) -> Bool {
        guard let t else { return true }
        return t.dtype == .bfloat16 && t.count == count
    }

    public func rmsNormScaled(_ x: Tensor, weight: Tensor?, scale: Tensor?, eps: Float) throws -> Tensor {
        let (rows, width) = try LastAxis.geometry(x.shape, op: "rmsNormScaled", parameters: [weight?.shape])
        guard useFusedKernels, x.dtype == .bfloat16, width % 8 == 0, bf16Row(weight, width), bf16Row(scale, width) else {
            return try FusedReference.rmsNormScaled(self, x, weight: weight, scale: scale, eps: eps)
        }
        return try profiled("norm (fused)") {
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            try launch("rms_norm_scale_bf16", blocks: rows, threads: 256,
                       [.address(x.address), .address(weight?.address ?? 0), .address(scale?.address ?? 0),
                        .address(out.address), .int64(Int64(width)), .float(eps)])
            return out
        }
    }

    public func gatedRMSNormResidual(_ x: Tensor, _ y: Tensor, weight: Tensor?, gate: Tensor?,
                                     eps: Float) throws -> Tensor {
        let (rows, width) = try LastAxis.geometry(y.shape, op: "gatedRMSNormResidual", parameters: [weight?.shape])
        guard useFusedKernels, x.shape == y.shape, x.dtype == .bfloat16, y.dtype == .bfloat16, width % 8 == 0,
              bf16Row(weight, width), bf16Row(gate, width) else {
            return try FusedReference.gatedRMSNormResidual(self, x, y, weight: weight, gate: gate, eps: eps)
        }
        return try profiled("norm (fused)") {
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            try launch("gated_rms_norm_residual_bf16", blocks: rows, threads: 256,
                       [.address(x.address), .address(y.address), .address(weight?.address ?? 0),
                        .address(gate?.address ?? 0), .address(out.address), .int64(Int64(width)), .float(eps)])
            return out
        }
    }

    public func rmsNormRope(_ x: Tensor, weight: Tensor?, eps: Float, cos: Tensor, sin: Tensor,
                            layout: RoPELayout) throws -> Tensor {
        let perItem = try LayoutChecks.ropeTablesPerItem(x: x.shape, cos: cos.shape, sin: sin.shape)
        _ = try LastAxis.geometry(x.shape, op: "rmsNormRope", parameters: [weight?.shape])
        guard useFusedKernels, x.dtype == .bfloat16, layout == .interleavedPairs, x.shape[3] == 128,
              perItem || x.shape[0] == 1, bf16Row(weight, 128) else {
            return try FusedReference.rmsNormRope(self, x, weight: weight, eps: eps, cos: cos, sin: sin, layout: layout)
        }
        return try profiled("norm+rope (fused)") {
            let c = try cos.cast(to: .float32), s = try sin.cast(to: .float32)
            let rows = x.count / 128
            let out = try allocate(shape: x.shape, dtype: x.dtype)
            try launch("rms_norm_rope_bf16", blocks: (rows + 7) / 8, threads: 256,
                       [.address(x.address), .address(weight?.address ?? 0), .address(c.address), .address(s.address),
                        .address(out.address), .int64(Int64(rows)), .int64(Int64(x.shape[2])), .float(eps)])
            withExtendedLifetime((c, s)) {}
            return out
        }
    }

    public func siluMultiply(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard useFusedKernels, a.shape == b.shape, a.dtype == .bfloat16, b.dtype == .bfloat16, a.count % 8 == 0 else {
            return try FusedReference.siluMultiply(self, a, b)
        }
        return try profiled("silu*mul (fused)") {
            let out = try allocate(shape: a.shape, dtype: a.dtype)
            guard a.count > 0 else { return out }
            try launch("silu_mul_bf16", blocks: gridBlocks(a.count / 8), threads: 256,
                       [.address(a.address), .address(b.address), .address(out.address), .int64(Int64(a.count))])
            return out
        }
    }

    /// Flash attention (Kernels/flash_attention.cu) for bf16 with head dim 128; nil where it does
    /// not apply (the caller takes the per-head path).
    func flashAttention(query: Tensor, key: Tensor, value: Tensor, keyMask: Tensor?, causal: Bool, scale: Float,
                        geometry g: AttentionGeometry) throws -> Tensor? {
        guard useFusedKernels, query.dtype == .bfloat16, key.dtype == .bfloat16, value.dtype == .bfloat16,
              g.headDim == 128, g.valueDim == 128, g.queryLength <= Int(Int32.max), g.keyLength <= Int(Int32.max),
              g.queryLength > 0 else { return nil }
        let mask: Tensor? = try keyMask.map { mask in
            let values = try mask.toFloats().map { $0 != 0 ? UInt8(1) : UInt8(0) }
            return try values.withUnsafeBytes { try upload($0, shape: mask.shape, dtype: .uint8) }
        }
        let out = try allocate(shape: g.outputShape, dtype: .bfloat16)
        // Long sequences: 128 query rows a block (4 warps of 32 rows); short ones: 64 (4 warps of 16).
        let (name, rowsPerBlock, keysPerTile) = g.queryLength >= 1024
            ? ("flash_attention_bf16_m128_n64_w4", 128, 64) : ("flash_attention_bf16_m64_n64", 64, 64)
        let shared = (rowsPerBlock + 4 * keysPerTile) * 136 * 2
        let (lq, lk, hq, hk) = (g.queryLength, g.keyLength, g.queryHeads, g.keyHeads)
        try launch(name, grid: ((lq + rowsPerBlock - 1) / rowsPerBlock, hq, g.batch), threads: 128,
                   sharedBytes: shared,
                   [.address(query.address), .address(key.address), .address(value.address), .address(out.address),
                    .address(mask?.address ?? 0),
                    .int64(Int64(lq * hq * 128)), .int64(Int64(hq * 128)), .int64(Int64(lk * hk * 128)),
                    .int64(Int64(hk * 128)), .int64(Int64(lk * hk * 128)), .int64(Int64(hk * 128)),
                    .int64(Int64(lq * hq * 128)), .int64(Int64(hq * 128)),
                    .int32(Int32(lq)), .int32(Int32(lk)), .int32(Int32(hq / hk)),
                    .float(scale * 1.4426950408889634), .int32(causal ? 1 : 0)])
        withExtendedLifetime(mask) {}
        return out
    }

    /// Whether cuDNN's fused attention is used where it applies (`ZIMAGE_CUDNN_ATTENTION=0` turns it off).
    static let cudnnAttentionEnabled = ProcessInfo.processInfo.environment["ZIMAGE_CUDNN_ATTENTION"] != "0"

    /// cuDNN's fused attention (CUDNNAttention) for the long unmasked bf16 attentions of the DiT
    /// (image streams: 1024 tokens at 512², 4128 at 1024²); nil elsewhere and where cuDNN has no
    /// engine for the shape, so our kernel runs. Short and causal attentions (caption refiner, text
    /// encoder) stay on our kernel: a cuDNN plan costs ~0.1-0.7 s to build the first time.
    func cudnnAttention(query: Tensor, key: Tensor, value: Tensor, keyMask: Tensor?, causal: Bool, scale: Float,
                        geometry g: AttentionGeometry) throws -> Tensor? {
        guard useFusedKernels, Self.cudnnAttentionEnabled, keyMask == nil, !causal, query.dtype == .bfloat16,
              key.dtype == .bfloat16, value.dtype == .bfloat16, g.headDim == 128, g.valueDim == 128,
              g.queryLength >= 512, g.keyLength >= 512, g.batch <= 64,
              g.queryLength <= 1 << 20, g.keyLength <= 1 << 20, let sdpa = cudnnGraph() else { return nil }
        let shape = CUDNNAttention.Key(batch: g.batch, queryHeads: g.queryHeads, keyHeads: g.keyHeads,
                                     queryLength: g.queryLength, keyLength: g.keyLength, headDim: g.headDim)
        try makeCurrent()
        guard let bytes = try? sdpa.workspaceBytes(shape) else { return nil }
        let out = try allocate(shape: g.outputShape, dtype: .bfloat16)
        let workspace = try allocate(shape: [max(bytes, 1)], dtype: .uint8)
        try makeCurrent()
        try sdpa.run(shape, query: UInt64(query.address), key: UInt64(key.address), value: UInt64(value.address),
                     output: UInt64(out.address), scale: scale, workspace: UInt64(workspace.address))
        withExtendedLifetime(workspace) {}
        return out
    }
}
