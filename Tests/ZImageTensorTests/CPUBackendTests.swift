import Testing
import ZImageCPU
import ZImageTensor
import ZImageTestSupport

/// Behaviour the goldens do not reach: the streamed half-precision weight path, refusals, views.
@Suite struct CPUBackendTests {
    let backend = CPUBackend()

    /// Deterministic values in [-1, 1) (never zeros).
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000 + 0.0000005
        }
    }

    /// A bf16 weight streamed in blocks gives the same product as the widened weight in one sgemm.
    @Test(arguments: [true, false])
    func streamedHalfPrecisionWeights(transposed: Bool) throws {
        // 4096 × 700 exceeds one 1 Mi-element block, so several blocks run.
        let (rows, k, n) = (5, 4096, 700)
        let x = try backend.tensor(values(rows * k, seed: 1), shape: [rows, k])
        let shape: Shape = transposed ? [n, k] : [k, n]
        let weight = try backend.tensor(values(k * n, seed: 2), shape: shape, dtype: .bfloat16)
        let widened = try weight.cast(to: .float32)
        let streamed = try x.matmul(weight, transposeB: transposed)
        let reference = try x.matmul(widened, transposeB: transposed)
        #expect(streamed.dtype == .float32)
        #expect(relativeError(try streamed.toFloats(), try reference.toFloats()) < 1e-6)
    }

    @Test func sharedWeightOverBatchEqualsPerItemProducts() throws {
        let x = try backend.tensor(values(2 * 3 * 8, seed: 3), shape: [2, 3, 8])
        let w = try backend.tensor(values(8 * 4, seed: 4), shape: [8, 4])
        let whole = try x.matmul(w).toFloats()
        let first = try x.rows(0..<1).reshaped([3, 8]).matmul(w).toFloats()
        let second = try x.rows(1..<2).reshaped([3, 8]).matmul(w).toFloats()
        #expect(relativeError(whole, first + second) < 1e-6)
    }

    /// Strided and unpadded convolutions against a direct six-loop sum.
    @Test(arguments: [(2, 1), (1, 0), (3, 2)])
    func convolutionMatchesDirectSum(stride: Int, padding: Int) throws {
        let (n, c, h, w, o, kh, kw) = (2, 3, 9, 8, 4, 3, 3)
        let xs = values(n * c * h * w, seed: 11), ws = values(o * c * kh * kw, seed: 12), bs = values(o, seed: 13)
        let out = try backend.tensor(xs, shape: [n, c, h, w]).conv2d(
            weight: backend.tensor(ws, shape: [o, c, kh, kw]), bias: backend.tensor(bs, shape: [o]),
            stride: stride, padding: padding)
        let oh = (h + 2 * padding - kh) / stride + 1, ow = (w + 2 * padding - kw) / stride + 1
        #expect(out.shape == [n, o, oh, ow])
        var expected = [Float](repeating: 0, count: n * o * oh * ow)
        for b in 0..<n { for f in 0..<o { for y in 0..<oh { for x in 0..<ow {
            var sum = Double(bs[f])
            for ch in 0..<c { for ky in 0..<kh { for kx in 0..<kw {
                let iy = y * stride - padding + ky, ix = x * stride - padding + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                sum += Double(xs[((b * c + ch) * h + iy) * w + ix]) * Double(ws[((f * c + ch) * kh + ky) * kw + kx])
            } } }
            expected[((b * o + f) * oh + y) * ow + x] = Float(sum)
        } } } }
        #expect(relativeError(try out.toFloats(), expected) < 1e-6)
    }

    @Test func refusesMismatchedOperands() throws {
        let a = try backend.tensor(values(6, seed: 5), shape: [2, 3])
        let b = try backend.tensor(values(8, seed: 6), shape: [4, 2])
        #expect(throws: TensorError.shapeMismatch(op: "matmul", detail: "inner sizes differ: [2, 3] · [4, 2]")) {
            try a.matmul(b)
        }
        #expect(throws: TensorError.shapeMismatch(op: "add", detail: "cannot broadcast [2, 3] with [4, 2]")) {
            try a + b
        }
        #expect(throws: TensorError.self) { try a.reshaped([4, 2]).reshaped([5, -1]) }
        #expect(throws: TensorError.invalidArgument(op: "permute", detail: "[0, 0] is not a permutation of 2 axes")) {
            try a.permuted([0, 0])
        }
        #expect(throws: TensorError.self) { try a.slice(axis: 1, 2..<4) }
        let ids = try backend.tensor(ids: [0, 9], shape: [2])
        #expect(throws: TensorError.invalidArgument(op: "embedding", detail: "id 9 outside 0..<2")) {
            try a.embedding(ids)
        }
        let mask = try backend.tensor(ids: [1, 1], shape: [1, 2])
        let q = try backend.tensor(values(2 * 4, seed: 7), shape: [1, 2, 1, 4])
        let k = try backend.tensor(values(3 * 4, seed: 8), shape: [1, 3, 1, 4])
        #expect(throws: TensorError.shapeMismatch(op: "attention", detail: "key mask [1, 2] should be [1, 3]")) {
            try q.attention(key: k, value: k, keyMask: mask)
        }
        #expect(throws: TensorError.unsupportedDType(op: "silu", dtype: .int32)) { try ids.silu() }
    }

    @Test func halfPrecisionResultsAreRoundedOnce() throws {
        let x = try backend.tensor([1, 2, 3], shape: [3], dtype: .bfloat16)
        let y = try x.affine(scale: 1.0 / 3)
        #expect(y.dtype == .bfloat16)
        #expect(try y.toFloats() == [1.0 / 3, 2.0 / 3, 1].map { HalfPrecision.roundedToBFloat16(Float($0)) })
        let f16 = try backend.tensor([1, 2, 3], shape: [3], dtype: .float16).unary(.negate)
        #expect(try f16.toFloats() == [-1, -2, -3])
    }

    @Test func broadcastingWithScalarsAndLeadingAxes() throws {
        let a = try backend.tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let scalar = try backend.tensor([10], shape: [])
        #expect(try (a + scalar).toFloats() == [11, 12, 13, 14, 15, 16])
        let column = try backend.tensor([1, 2], shape: [2, 1])
        #expect(try (a * column).toFloats() == [1, 2, 3, 8, 10, 12])
        let row = try backend.tensor([1, 0, -1], shape: [1, 1, 3])
        let out = try a - row
        #expect(out.shape == [1, 2, 3])
        #expect(try out.toFloats() == [0, 2, 4, 3, 5, 7])
    }

    @Test func rowsAndReshapeShareMemory() throws {
        let a = try backend.tensor([1, 2, 3, 4, 5, 6], shape: [3, 2])
        let middle = try a.rows(1..<2)
        #expect(middle.storage === a.storage)
        #expect(try middle.toFloats() == [3, 4])
        #expect(try a.reshaped([-1]).shape == [6])
    }

    @Test func maskedSoftmaxRowOfOnlyMaskedKeysIsZero() throws {
        let q = try backend.tensor(values(4, seed: 9), shape: [1, 1, 1, 4])
        let k = try backend.tensor(values(8, seed: 10), shape: [1, 2, 1, 4])
        let mask = try backend.tensor(ids: [0, 0], shape: [1, 2])
        let out = try q.attention(key: k, value: k, keyMask: mask)
        #expect(try out.toFloats() == [0, 0, 0, 0])
    }
}

@Suite struct HalfPrecisionTests {
    @Test func bfloat16RoundsToNearestEven() {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even (1.0).
        #expect(HalfPrecision.bfloat16Bits(1 + 1.0 / 256) == 0x3F80)
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up to even.
        #expect(HalfPrecision.bfloat16Bits(1 + 3.0 / 256) == 0x3F82)
        #expect(HalfPrecision.bfloat16Bits(.infinity) == 0x7F80)
        #expect(HalfPrecision.bfloat16Bits(-0.0) == 0x8000)
        #expect(HalfPrecision.bfloat16Bits(.nan) == 0x7FC0)
        #expect(HalfPrecision.bfloat16Bits(Float.greatestFiniteMagnitude) == 0x7F80)
        #expect(HalfPrecision.float(bfloat16Bits: 0x4049) == 3.140625)
    }

    @Test func shapeArithmetic() {
        #expect(Shape.checkedCount([1 << 40, 1 << 40]) == nil)
        #expect(Shape.checkedCount([-1, 3]) == nil)
        #expect(Shape([2, 3, 4]).strides == [12, 4, 1])
        #expect(Shape.broadcast([3, 1, 5], [2, 3, 4, 1]) == [2, 3, 4, 5])
        #expect(Shape.broadcast([3], [4]) == nil)
    }
}
