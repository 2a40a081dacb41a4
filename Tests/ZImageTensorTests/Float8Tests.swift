import Testing
import ZImageCPU
import ZImageTensor

/// FP8 e4m3 encoding (round to nearest even, saturating at ±448) and the composed FP8 linear
/// layer every backend falls back to.
struct Float8Tests {
    @Test func everyCodeDecodesAndEncodesBack() {
        for code in 0...255 {
            let byte = UInt8(code)
            let value = Float8E4M3.decode(byte)
            if byte & 0x7f == 0x7f {
                #expect(value.isNaN)
            } else {
                #expect(Float8E4M3.encode(value) == byte, "code \(code) → \(value)")
            }
        }
    }

    @Test func knownValuesTiesAndSaturation() {
        #expect(Float8E4M3.decode(0x7e) == 448)
        #expect(Float8E4M3.decode(0x01) == 1.0 / 512)       // the smallest subnormal, 2⁻⁹
        #expect(Float8E4M3.decode(0x08) == 1.0 / 64)        // the smallest normal, 2⁻⁶
        #expect(Float8E4M3.encode(1) == 0x38)
        #expect(Float8E4M3.encode(-2) == 0xc0)
        #expect(Float8E4M3.encode(1.0625) == 0x38)          // tie between 1 and 1.125: to even
        #expect(Float8E4M3.encode(1.1875) == 0x3a)          // tie between 1.125 and 1.25: to even
        #expect(Float8E4M3.encode(1.07) == 0x39)            // above the tie: up
        #expect(Float8E4M3.encode(449) == 0x7e)             // saturates instead of overflowing
        #expect(Float8E4M3.encode(-.infinity) == 0xfe)
        #expect(Float8E4M3.encode(.nan) == 0x7f)
        #expect(Float8E4M3.encode(1.5 / 1024) == 0x01)      // 0.75 of the smallest subnormal rounds up
        #expect(Float8E4M3.encode(1.0 / 1024) == 0x00)      // half the smallest subnormal, a tie: to even (zero)
        #expect(Float8E4M3.encode(15.5 / 1024) == 0x08)     // the largest subnormal step rounds into the normals
        #expect(Float8E4M3.rowScale(amax: 0) == (1, 1))
        #expect(Float8E4M3.rowScale(amax: 896) == (0.5, 2))
    }

    @Test func quantisedRowsAndTheirProduct() throws {
        let cpu = CPUBackend()
        var random = UInt64(7)
        func next() -> Float {
            random = random &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: random >> 11) % 2001 - 1000) / 500
        }
        var xValues = [Float](repeating: 0, count: 6 * 64)
        for i in xValues.indices where i / 64 != 2 { xValues[i] = next() * Float(1 + i / 64) }
        var wValues = [Float](repeating: 0, count: 40 * 64)
        for i in wValues.indices { wValues[i] = next() * 0.1 }
        let x = try cpu.tensor(xValues, shape: [6, 64]), w = try cpu.tensor(wValues, shape: [40, 64])
        let q = try cpu.quantizeRowsFloat8(x)
        #expect(q.values.dtype == .float8E4M3 && q.values.shape == [6, 64] && q.scales.shape == [6])
        let scales: [Float] = try q.scales.toFloats(), values: [Float] = try x.toFloats()
        for row in 0..<6 {
            var amax: Float = 0
            for value in values[(row * 64)..<((row + 1) * 64)] { amax = max(amax, Swift.abs(value)) }
            let expected: Float = row == 2 ? 1 : amax / 448
            #expect(scales[row] == expected)
        }
        // Each row's largest element lands on ±448 exactly.
        let codes: [Float] = try q.values.toFloats()
        var largest: Float = 0
        for code in codes[0..<64] { largest = max(largest, Swift.abs(code)) }
        #expect(largest == 448)
        let product = try cpu.float8Linear(q, cpu.quantizeRowsFloat8(w), bias: nil, dtype: .float32)
        let exact = try x.linear(w)
        #expect(product.shape == [6, 40])
        let got: [Float] = try product.toFloats(), want: [Float] = try exact.toFloats()
        var error = 0.0, size = 0.0
        for (a, b) in zip(got, want) {
            error = max(error, Double(Swift.abs(a - b)))
            size = max(size, Double(Swift.abs(b)))
        }
        #expect(error < 0.08 * size && error > 0)   // e4m3 keeps 3 mantissa bits: a few per cent, never exact
    }
}

/// The decoded image's 8-bit conversion every backend falls back to (the GPU kernel is checked
/// against it on the GPU machine).
struct RGB8Tests {
    @Test func clampsScalesAndRoundsHalfToEven() throws {
        let cpu = CPUBackend()
        // Channel planes of a 1×2 image: R = (-1, 1), G = (0, 2), B = (-3, 1/510).
        let pixels = try cpu.tensor([-1, 1, 0, 2, -3, 1.0 / 510], shape: [1, 3, 1, 2])
        #expect(try cpu.rgb8(pixels).toBytes() == [0, 128, 0, 255, 255, 128])
        let half = try cpu.tensor([-1, 1, 0, 2, -3, 1.0 / 510], shape: [1, 3, 1, 2], dtype: .bfloat16)
        #expect(try cpu.rgb8(half).shape == [1, 2, 3])
        #expect(throws: TensorError.self) { try cpu.rgb8(cpu.tensor([0, 0], shape: [1, 2, 1, 1])) }
    }
}
