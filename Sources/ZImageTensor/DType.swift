/// Element types a tensor can hold.
///
/// Compute ops accept `float32`, `float16` and `bfloat16`; the integer types serve token ids and
/// masks; `float8E4M3`, `float8E5M2` and `int8` are storage types for quantized weights
/// (`Float8Rows`, `Int8Rows`). Every safetensors dtype has a case, so any file can be described.
public enum DType: String, Sendable, CaseIterable, Codable {
    case float64, float32, float16, bfloat16, float8E4M3, float8E5M2
    case int64, int32, int16, int8, uint64, uint32, uint16, uint8, bool

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .float64, .int64, .uint64: 8
        case .float32, .int32, .uint32: 4
        case .float16, .bfloat16, .int16, .uint16: 2
        case .float8E4M3, .float8E5M2, .int8, .uint8, .bool: 1
        }
    }

    /// Whether ops compute on this type (through float32 arithmetic).
    public var isFloatingPoint: Bool {
        switch self {
        case .float64, .float32, .float16, .bfloat16, .float8E4M3, .float8E5M2: true
        default: false
        }
    }

    /// The types the compute ops read and write.
    public var isComputeType: Bool { self == .float32 || self == .float16 || self == .bfloat16 }

    /// The dtype string used by the safetensors format (`"F32"`, `"BF16"`, ...).
    public var safetensorsName: String {
        switch self {
        case .float64: "F64"
        case .float32: "F32"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .float8E4M3: "F8_E4M3"
        case .float8E5M2: "F8_E5M2"
        case .int64: "I64"
        case .int32: "I32"
        case .int16: "I16"
        case .int8: "I8"
        case .uint64: "U64"
        case .uint32: "U32"
        case .uint16: "U16"
        case .uint8: "U8"
        case .bool: "BOOL"
        }
    }

    /// Parses a safetensors dtype string; `nil` for one this build does not know.
    public init?(safetensorsName: String) {
        guard let match = DType.allCases.first(where: { $0.safetensorsName == safetensorsName }) else { return nil }
        self = match
    }
}
