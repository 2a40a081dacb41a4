import ZImageTensor

/// How a tensor's bytes encode its values.
public enum TensorEncoding: Equatable, Sendable {
    /// The bytes are `dtype` values (an fp8 `dtype` without scales is a plain cast: scale 1).
    case plain
    /// FP8 values (`dtype` e4m3 or e5m2) times float32 scales: one for the whole tensor, or one
    /// per row (first axis). ComfyUI's scaled fp8 and `comfy_quant` fp8 weights.
    case scaledFloat8(scales: [Float])
    /// GGML `Q8_0` (`dtype` is `int8`): blocks of 32 values along the last axis, each stored as an
    /// f16 scale `d` then 32 signed bytes `q`; value = `d · q`.
    case ggmlQ8_0
}

extension TensorInfo {
    /// Whether the bytes are a storage form that is widened at load (fp8, GGML blocks).
    public var isStorageEncoded: Bool {
        encoding != .plain || dtype == .float8E4M3 || dtype == .float8E5M2
    }

    /// Whether a model can load this tensor: a compute dtype, or a storage form widened at load.
    public var isLoadable: Bool { dtype.isComputeType || isStorageEncoded }

    /// What the stored form is called (`"F8_E4M3×scale"`, `"Q8_0"`, or the dtype's name).
    public var storageName: String {
        switch encoding {
        case .plain: dtype.safetensorsName
        case .scaledFloat8(let scales): dtype.safetensorsName + (scales.count == 1 ? "×scale" : "×row scales")
        case .ggmlQ8_0: "Q8_0"
        }
    }
}

/// Widening of stored forms to float32, as the references do it: fp8 `w.float() * scale`
/// (ComfyUI `dequantize`), GGML Q8_0 `d * q` (gguf-py `dequantize`, ComfyUI-GGUF).
enum Dequantization {
    /// Bytes of one Q8_0 block (f16 scale + 32 int8) and the values it holds.
    static let q8BlockBytes = 34, q8BlockValues = 32

    /// The values of `raw` (the tensor's stored bytes, already checked against its shape).
    static func floats(_ raw: UnsafeRawBufferPointer, info: TensorInfo, path: String) throws -> [Float] {
        let count = info.shape.count
        switch info.encoding {
        case .ggmlQ8_0:
            guard count % q8BlockValues == 0, raw.count == count / q8BlockValues * q8BlockBytes else {
                throw WeightLoadingError.quantization(path: path, key: info.name,
                                                      detail: "Q8_0 data of \(raw.count) bytes for \(count) values")
            }
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBufferPointer { values in
                for block in 0..<(count / q8BlockValues) {
                    let base = block * q8BlockBytes
                    let bits = UInt16(raw[base]) | UInt16(raw[base + 1]) << 8
                    let d = HalfPrecision.float(float16Bits: bits)
                    for i in 0..<q8BlockValues {
                        values[block * q8BlockValues + i] = d * Float(Int8(bitPattern: raw[base + 2 + i]))
                    }
                }
            }
            return out
        case .plain, .scaledFloat8:
            let scales: [Float]
            if case .scaledFloat8(let given) = info.encoding { scales = given } else { scales = [1] }
            guard info.dtype == .float8E4M3 || info.dtype == .float8E5M2, raw.count == count else {
                throw WeightLoadingError.quantization(path: path, key: info.name,
                                                      detail: "\(info.dtype.safetensorsName) cannot carry fp8 scales")
            }
            let rows = info.shape.rank == 0 ? 1 : info.shape[0]
            guard scales.count == 1 || scales.count == rows else {
                throw WeightLoadingError.quantization(path: path, key: info.name,
                                                      detail: "\(scales.count) scales for \(rows) rows")
            }
            let perRow = rows == 0 ? 0 : count / rows
            let isE4M3 = info.dtype == .float8E4M3
            func decode(_ byte: UInt8) -> Float {   // e5m2 is the top byte of an f16
                isE4M3 ? Float8E4M3.decode(byte) : HalfPrecision.float(float16Bits: UInt16(byte) << 8)
            }
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBufferPointer { values in
                for i in 0..<count {
                    let scale = scales.count == 1 ? scales[0] : scales[perRow == 0 ? 0 : i / perRow]
                    values[i] = decode(raw[i]) * scale
                }
            }
            return out
        }
    }

    /// The float values of a small stored tensor (a scale): F32, F16 or BF16.
    static func smallFloats(_ raw: UnsafeRawBufferPointer, dtype: DType) -> [Float]? {
        switch dtype {
        case .float32: return (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
        case .float16, .bfloat16:
            return (0..<(raw.count / 2)).map { i in
                let bits = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian
                return dtype == .float16 ? HalfPrecision.float(float16Bits: bits) : HalfPrecision.float(bfloat16Bits: bits)
            }
        default: return nil
        }
    }
}

extension WeightSet {
    /// How the tensors are stored when that is not plain (nil): the container, the count of each
    /// stored form and what loading does, for `zimage inspect`.
    public var storageSummary: String? {
        var counts: [String: Int] = [:]
        for info in entries.values { counts[info.storageName, default: 0] += 1 }
        let gguf = shards.first { $0.container == "GGUF" }
        let encoded = entries.values.contains { $0.isStorageEncoded }
        guard gguf != nil || encoded else { return nil }
        let forms = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        let isLegacy = shards.contains { $0.names.contains { $0 == "scaled_fp8" || $0.hasSuffix(".scaled_fp8") } }
        let hasScales = entries.values.contains { if case .scaledFloat8 = $0.encoding { true } else { false } }
        let kind = gguf.map { "GGUF (arch " + ($0.metadata["general.architecture"] ?? "not named") + ")" }
            ?? (isLegacy ? "legacy scaled fp8" : hasScales ? "comfy_quant fp8" : "plain fp8 casts")
        return "\(kind): \(forms)"
            + (encoded ? "; quantised tensors are widened (dequantised) to the compute dtype at load" : "")
    }
}
