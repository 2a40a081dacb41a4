import COpenBLAS
import ZImageTensor

extension CPUBackend {
    /// Matrix product through `cblas_sgemm`. A shared bfloat16/float16 weight is widened a block of
    /// rows at a time (about 4 MiB of float32), never as a whole.
    public func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool, bias: Tensor?) throws -> Tensor {
        try checkCompute("matmul", a, b, bias)
        let g = try MatmulGeometry(a: a.shape, b: b.shape, transposeA: transposeA, transposeB: transposeB,
                                   bias: bias?.shape)
        let lhs = try input(a, "matmul")
        let out = try output(g.outputShape, a.dtype)
        let (m, n, k) = (g.m, g.n, g.k)
        let lda = transposeA ? m : k
        let ldb = transposeB ? k : n
        let opA = transposeA ? CblasTrans : CblasNoTrans
        let opB = transposeB ? CblasTrans : CblasNoTrans
        // One product over all batch rows when the weight is shared and A is not transposed.
        let folded = !g.batchedB && !transposeA
        if folded && b.dtype != .float32 {
            try streamedWeightProduct(lhs.pointer, weight: b, out: out.pointer, rows: g.batch * m, n: n, k: k,
                                      transposeB: transposeB)
        } else {
            let rhs = try input(b, "matmul")
            if folded {
                cblas_sgemm(CblasRowMajor, opA, opB, Int32(g.batch * m), Int32(n), Int32(k), 1, lhs.pointer,
                            Int32(lda), rhs.pointer, Int32(ldb), 0, out.pointer, Int32(n))
            } else {
                for item in 0..<g.batch {
                    let bOffset = g.batchedB ? item * k * n : 0
                    cblas_sgemm(CblasRowMajor, opA, opB, Int32(m), Int32(n), Int32(k), 1, lhs.pointer + item * m * k,
                                Int32(lda), rhs.pointer + bOffset, Int32(ldb), 0, out.pointer + item * m * n, Int32(n))
                }
            }
        }
        if let bias {
            let shift = try input(bias, "matmul")
            let c = out.pointer, s = shift.pointer
            parallelFor(g.batch * m, threads: threads, minimumChunk: max(1, 8192 / max(n, 1))) { range in
                for row in range {
                    let line = c + row * n
                    for j in 0..<n { line[j] += s[j] }
                }
            }
        }
        return try out.finish()
    }

    /// `C[rows, n] = A[rows, k] · op(W)` for a half-precision weight, widened in blocks.
    private func streamedWeightProduct(_ a: UnsafePointer<Float>, weight: Tensor, out: UnsafeMutablePointer<Float>,
                                       rows: Int, n: Int, k: Int, transposeB: Bool) throws {
        let source = UnsafeRawPointer(weight.hostPointer)
        let elementSize = weight.dtype.byteSize
        if transposeB {
            // W is [n, k]: widen blocks of output features; each block fills columns of C.
            let block = max(1, min(n, (1 << 20) / max(k, 1)))
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: block * k)
            defer { buffer.deallocate() }
            for start in stride(from: 0, to: n, by: block) {
                let count = min(block, n - start)
                try convertToFloat(source + start * k * elementSize, dtype: weight.dtype, buffer, count: count * k,
                                   threads: threads)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(k), 1, a,
                            Int32(k), buffer, Int32(k), 0, out + start, Int32(n))
            }
        } else {
            // W is [k, n]: widen blocks of the inner axis and accumulate.
            let block = max(1, min(k, (1 << 20) / max(n, 1)))
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: block * n)
            defer { buffer.deallocate() }
            for start in stride(from: 0, to: k, by: block) {
                let count = min(block, k - start)
                try convertToFloat(source + start * n * elementSize, dtype: weight.dtype, buffer, count: count * n,
                                   threads: threads)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(count), 1,
                            a + start, Int32(k), buffer, Int32(n), start == 0 ? 0 : 1, out, Int32(n))
            }
        }
    }

    /// Convolution as im2col + `cblas_sgemm`, a band of output rows at a time so the column
    /// buffer stays near 64 MiB even for 1024² feature maps.
    public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) throws -> Tensor {
        try checkCompute("conv2d", x, weight, bias)
        let g = try Conv2DGeometry(input: x.shape, weight: weight.shape, bias: bias?.shape, stride: stride,
                                   padding: padding)
        let source = try input(x, "conv2d"), kernel = try input(weight, "conv2d")
        let shift = try bias.map { try input($0, "conv2d") }
        let out = try output(g.outputShape, x.dtype)
        let (c, h, w) = (g.inChannels, g.height, g.width)
        let (kh, kw, oh, ow) = (g.kernelHeight, g.kernelWidth, g.outHeight, g.outWidth)
        let patch = c * kh * kw
        let pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0
        let bandRows = max(1, min(oh, scratchElements / max(patch * ow, 1)))
        let columns = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: patch * bandRows * ow)
        defer { columns?.deallocate() }
        for item in 0..<g.batch {
            let image = source.pointer + item * c * h * w
            let result = out.pointer + item * g.outChannels * oh * ow
            guard let columns else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.outChannels), Int32(oh * ow), Int32(c),
                            1, kernel.pointer, Int32(c), image, Int32(h * w), 0, result, Int32(oh * ow))
                continue
            }
            for band in Swift.stride(from: 0, to: oh, by: bandRows) {
                let rows = min(bandRows, oh - band)
                let span = rows * ow
                parallelFor(patch, threads: threads) { range in
                    for p in range {
                        let channel = p / (kh * kw), ky = (p / kw) % kh, kx = p % kw
                        let line = columns + p * span
                        for r in 0..<rows {
                            let iy = (band + r) * stride - padding + ky
                            let dst = line + r * ow
                            guard iy >= 0, iy < h else {
                                dst.update(repeating: 0, count: ow)
                                continue
                            }
                            let row = image + (channel * h + iy) * w
                            if stride == 1 {
                                // Output columns whose input column lies inside the row: one copy, zero edges.
                                let low = min(ow, max(0, padding - kx)), high = max(low, min(ow, w + padding - kx))
                                if low > 0 { dst.update(repeating: 0, count: low) }
                                if high > low { (dst + low).update(from: row + (low - padding + kx), count: high - low) }
                                if high < ow { (dst + high).update(repeating: 0, count: ow - high) }
                                continue
                            }
                            for ox in 0..<ow {
                                let ix = ox * stride - padding + kx
                                dst[ox] = ix >= 0 && ix < w ? row[ix] : 0
                            }
                        }
                    }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.outChannels), Int32(span), Int32(patch),
                            1, kernel.pointer, Int32(patch), columns, Int32(span), 0, result + band * ow,
                            Int32(oh * ow))
            }
        }
        if let shift {
            let s = shift.pointer, d = out.pointer, plane = oh * ow, channels = g.outChannels
            parallelFor(g.batch * channels, threads: threads) { range in
                for index in range {
                    let value = s[index % channels], line = d + index * plane
                    for j in 0..<plane { line[j] += value }
                }
            }
        }
        return try out.finish()
    }
}
