import Testing
import ZImageCPU
import ZImageTensor
import ZImageTestSupport
import ZImageWeights

/// Symmetric int8 rows (`--precision int8`) and the widening every backend falls back to: the
/// codes of a crafted matrix against torch's (tools/fixtures/make_weight_formats.py), ties to
/// even, zero rows, one scale per row, and the widened GEMM.
struct Int8Tests {
    let cpu = CPUBackend()

    static func normals(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var random = SplitMix64(seed: seed)
        return random.normals(count, scale: scale)
    }

    @Test func scalesAndTiesToEven() {
        #expect(Int8Symmetric.rowScale(amax: 0) == 1)
        #expect(Int8Symmetric.rowScale(amax: 254) == 2)
        #expect(Int8Symmetric.encode(0.5, scale: 1) == 0)      // a tie: to even
        #expect(Int8Symmetric.encode(1.5, scale: 1) == 2)
        #expect(Int8Symmetric.encode(2.5, scale: 1) == 2)
        #expect(Int8Symmetric.encode(-2.5, scale: 1) == -2)
        #expect(Int8Symmetric.encode(2.51, scale: 1) == 3)
        #expect(Int8Symmetric.encode(300, scale: 1) == 127)    // clamped, never −128
        #expect(Int8Symmetric.encode(-300, scale: 1) == -127)
        #expect(Int8Symmetric.encode(.nan, scale: 1) == 0)
    }

    /// torch's codes and scales of the crafted matrix, byte for byte: a rounding other than half
    /// to even (row 0 holds exact .5 ties) or a scale per column (row 2's large column) differs.
    @Test func codesEqualTorchs() throws {
        let golden = try SafetensorsFile(path: Fixtures.path("weight-formats/golden.safetensors"))
        let weight = try golden.tensor("ties.weight", on: cpu)
        let rows = try cpu.quantizeRowsInt8(weight)
        let expected = try golden.tensor("ties.int8.values", on: cpu)
        #expect(rows.values.dtype == .int8 && rows.values.shape == expected.shape && rows.scales.shape == [3])
        #expect(try rows.values.toBytes() == expected.toBytes())
        #expect(try rows.scales.toFloats() == golden.tensor("ties.int8.scales", on: cpu).toFloats())
    }

    @Test func widenedRowsAreCodesTimesScales() throws {
        let weight = try cpu.tensor([3, -6, 0.3, 12, 0, 0, 0, 0], shape: [2, 4])
        let rows = try cpu.quantizeRowsInt8(weight)
        #expect(try rows.scales.toFloats() == [12 / 127, 1])
        #expect(try rows.values.toFloats() == [32, -64, 3, 127, 0, 0, 0, 0])
        let widened = try cpu.dequantizeRows(rows, dtype: .float32).toFloats()
        let scale: Float = 12 / 127
        #expect(widened == [32 * scale, -64 * scale, 3 * scale, 127 * scale, 0, 0, 0, 0])
        // Rounded once to the dtype asked for.
        let half = try cpu.dequantizeRows(rows, dtype: .bfloat16)
        #expect(half.dtype == .bfloat16)
        #expect(try half.toFloats() == widened.map { HalfPrecision.roundedToBFloat16($0) })
        #expect(throws: TensorError.self) { try cpu.dequantizeRows(rows, dtype: .int8) }
    }

    @Test func widenedFloat8RowsAreCodesTimesScales() throws {
        let weight = try cpu.tensor([1, -2, 0.5, 448, 0, 0, 0, 0], shape: [2, 4])
        let rows = try cpu.quantizeRowsFloat8(weight)
        let widened = try cpu.dequantizeRows(rows, dtype: .float32).toFloats()
        #expect(widened == [1, -2, 0.5, 448, 0, 0, 0, 0])   // amax 448: scale 1, every value exact in e4m3
    }

    /// The int8 layer is weight-only: its product is the dense product with the widened weight.
    @Test func int8LinearIsTheDenseProductOfTheWidenedWeight() throws {
        let x = try cpu.tensor(Self.normals(5 * 48, seed: 3), shape: [5, 48])
        let w = try cpu.tensor(Self.normals(24 * 48, seed: 4, scale: 0.1), shape: [24, 48])
        let bias = try cpu.tensor(Self.normals(24, seed: 5), shape: [24])
        let weight = try LinearWeight(w, format: .int8)
        #expect(weight.format == .int8 && weight.storageTensors.map(\.dtype) == [.int8, .float32])
        guard case .int8(let rows) = weight else { Issue.record("not int8"); return }
        let activation = try weight.prepare(x)
        guard case .dense = activation else { Issue.record("int8 quantised the activation"); return }
        let product = try weight.apply(activation, bias: bias)
        let expected = try x.linear(cpu.dequantizeRows(rows, dtype: .float32), bias: bias)
        #expect(try product.toFloats() == expected.toFloats())
        // Close to the unquantised product (int8 keeps ~7 bits a row), never exactly it.
        let error = try relativeError(product, x.linear(w, bias: bias))
        #expect(error > 0 && error < 1e-2, "\(error)")
    }
}
