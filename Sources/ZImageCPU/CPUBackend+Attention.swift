import COpenBLAS
import ZImageTensor

extension CPUBackend {
    /// Attention per (batch, head): scores by `cblas_sgemm` for a block of queries, masked, softmax,
    /// times V. Works in the tokens-major layout directly through leading dimensions.
    public func attention(query: Tensor, key: Tensor, value: Tensor, keyMask: Tensor?, causal: Bool,
                          scale: Float) throws -> Tensor {
        try checkCompute("attention", query, key, value)
        let g = try AttentionGeometry(query: query.shape, key: key.shape, value: value.shape,
                                      keyMask: keyMask?.shape)
        let q = try input(query, "attention"), k = try input(key, "attention"), v = try input(value, "attention")
        let mask = try keyMask.map { try keyMaskValues($0) }
        let out = try output(g.outputShape, query.dtype)
        let (lq, lk, hq, hk, d, dv) = (g.queryLength, g.keyLength, g.queryHeads, g.keyHeads, g.headDim, g.valueDim)
        let group = hq / hk
        let block = max(1, min(lq, scratchElements / 4 / max(lk, 1)))
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(block * lk, 1))
        defer { scores.deallocate() }
        for b in 0..<g.batch {
            for h in 0..<hq {
                let qBase = q.pointer + b * lq * hq * d + h * d
                let kBase = k.pointer + b * lk * hk * d + (h / group) * d
                let vBase = v.pointer + b * lk * hk * dv + (h / group) * dv
                let oBase = out.pointer + b * lq * hq * dv + h * dv
                for start in stride(from: 0, to: lq, by: block) {
                    let rows = min(block, lq - start)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(lk), Int32(d), scale,
                                qBase + start * hq * d, Int32(hq * d), kBase, Int32(hk * d), 0, scores, Int32(lk))
                    parallelFor(rows, threads: threads, minimumChunk: max(1, 4096 / max(lk, 1))) { range in
                        for r in range {
                            let line = scores + r * lk
                            if let mask {
                                for j in 0..<lk where mask[b * lk + j] == 0 { line[j] = -.infinity }
                            }
                            if causal {
                                let limit = start + r + 1
                                if limit < lk { (line + limit).update(repeating: -.infinity, count: lk - limit) }
                            }
                            Self.softmaxRow(line, line, count: lk)
                        }
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(dv), Int32(lk), 1,
                                scores, Int32(lk), vBase, Int32(hk * dv), 0, oBase + start * hq * dv, Int32(hq * dv))
                }
            }
        }
        return try out.finish()
    }

    private func keyMaskValues(_ mask: Tensor) throws -> [UInt8] {
        switch mask.dtype {
        case .bool, .uint8: return try mask.toBytes()
        case .int32, .int64, .float32: return try mask.toFloats().map { $0 != 0 ? 1 : 0 }
        default: throw TensorError.unsupportedDType(op: "attention mask", dtype: mask.dtype)
        }
    }

    /// See `Backend.rope`.
    public func rope(_ x: Tensor, cos: Tensor, sin: Tensor, layout: RoPELayout) throws -> Tensor {
        try checkCompute("rope", x, cos, sin)
        let perItem = try LayoutChecks.ropeTablesPerItem(x: x.shape, cos: cos.shape, sin: sin.shape)
        let (batch, length, heads, dim) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let half = dim / 2
        let source = try input(x, "rope"), cosines = try input(cos, "rope"), sines = try input(sin, "rope")
        let out = try output(x.shape, x.dtype)
        let s = source.pointer, d = out.pointer, c = cosines.pointer, n = sines.pointer
        let interleaved = layout == .interleavedPairs
        parallelFor(batch * length, threads: threads, minimumChunk: max(1, 2048 / max(heads * dim, 1))) { range in
            for token in range {
                let table = (perItem ? token : token % length) * half
                for h in 0..<heads {
                    let base = (token * heads + h) * dim
                    for i in 0..<half {
                        let (ia, ib) = interleaved ? (base + 2 * i, base + 2 * i + 1) : (base + i, base + i + half)
                        let a = s[ia], b = s[ib], cs = c[table + i], sn = n[table + i]
                        d[ia] = a * cs - b * sn
                        d[ib] = a * sn + b * cs
                    }
                }
            }
        }
        return try out.finish()
    }
}
