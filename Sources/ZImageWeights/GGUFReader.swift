import Foundation
import ZImageTensor

/// Reads GGUF files (llama.cpp's container; city96's ComfyUI-GGUF transformers, arch `lumina2`,
/// ComfyUI's tensor names) into a `SafetensorsFile` of the same mapped bytes.
///
/// Format (ggml `docs/gguf.md`, gguf-py 0.19): `GGUF`, version u32 (2 or 3), tensor count u64,
/// metadata count u64, metadata `(string key, u32 type, value)`, tensor entries `(string name,
/// u32 n_dims, u64 ne[n_dims], u32 type, u64 offset)`, then the data area at the next multiple of
/// `general.alignment` (default 32). `ne[0]` is the innermost extent, so the shape is `ne`
/// reversed; `comfy.gguf.orig_shape.{name}` (ComfyUI-GGUF) restores a reshaped tensor's shape.
/// Types read: F32, F16, BF16 (as they are, zero-copy), Q8_0 (widened at load, see
/// `TensorEncoding.ggmlQ8_0`), and the plain integer/F64 types; any other is
/// `GGUFError.unsupportedType` naming it. The header is hostile input: every length, count,
/// extent and offset is checked with overflow-checked arithmetic before use.
public enum GGUFReader {
    /// The ggml type names, by id (gguf-py `GGMLQuantizationType`).
    static let typeNames: [UInt32: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
        12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
        20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
        29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4", 40: "NVFP4",
    ]
    /// Types stored as plain elements.
    static let plainTypes: [UInt32: DType] = [
        0: .float32, 1: .float16, 30: .bfloat16, 24: .int8, 25: .int16, 26: .int32, 27: .int64, 28: .float64,
    ]
    static let q8_0: UInt32 = 8
    static let maximumDimensions = 4   // GGML_MAX_DIMS

    /// Whether `path` is a GGUF file: named `*.gguf` or starting with `GGUF`.
    public static func isGGUF(_ path: String) -> Bool {
        if path.lowercased().hasSuffix(".gguf") { return true }
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: 4)) == Data("GGUF".utf8)
    }

    /// Maps and validates `path`.
    public static func open(_ path: String) throws -> SafetensorsFile {
        let mapping = try MappedFile(path: path)
        var reader = Cursor(bytes: mapping.bytes, path: path)
        guard mapping.bytes.count >= 4, Data(mapping.bytes[0..<4]) == Data("GGUF".utf8) else {
            throw GGUFError.badMagic(path: path)
        }
        reader.offset = 4
        let version = try reader.u32("version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
        let tensorCount = try reader.count("tensor count", minimumBytesEach: 24)
        let metadataCount = try reader.count("metadata count", minimumBytesEach: 13)
        var metadata: [String: String] = [:]
        var originalShapes: [String: [Int]] = [:]
        var alignment = 32
        for _ in 0..<metadataCount {
            let key = try reader.string("metadata key")
            let value = try reader.value(key: key, type: reader.u32("type of '\(key)'"), depth: 0)
            switch (key, value) {
            case ("general.alignment", .integer(let a)):
                guard a > 0, a <= 1 << 20, a & (a - 1) == 0 else {
                    throw GGUFError.malformedHeader(path: path, key: key, detail: "\(a) is not a power of two up to 2^20")
                }
                alignment = a
            case ("general.alignment", _):
                throw GGUFError.malformedHeader(path: path, key: key, detail: "not an integer")
            case (let k, .integers(let dims)) where k.hasPrefix("comfy.gguf.orig_shape."):
                originalShapes[String(k.dropFirst("comfy.gguf.orig_shape.".count))] = dims
            default: break
            }
            if let text = value.text { metadata[key] = text }
        }
        var tensors: [(info: TensorInfo, offset: Int)] = []
        var names = Set<String>()
        for _ in 0..<tensorCount {
            let name = try reader.string("tensor name")
            guard names.insert(name).inserted else { throw GGUFError.duplicateTensor(path: path, tensor: name) }
            let rank = try reader.u32("rank of '\(name)'")
            guard rank >= 1, rank <= maximumDimensions else {
                throw GGUFError.invalidShape(path: path, tensor: name, detail: "\(rank) dimensions (1 to 4 are valid)")
            }
            var extents: [Int] = []
            for _ in 0..<rank {
                let extent = try reader.u64("dimensions of '\(name)'")
                guard extent <= UInt64(Int.max) else {
                    throw GGUFError.invalidShape(path: path, tensor: name, detail: "extent \(extent)")
                }
                extents.append(Int(extent))
            }
            let type = try reader.u32("type of '\(name)'")
            let offset = try reader.u64("offset of '\(name)'")
            let info = try entry(name: name, ne: extents, type: type, path: path, originalShape: originalShapes[name])
            guard offset <= UInt64(Int.max) else {
                throw GGUFError.spanOutOfBounds(path: path, tensor: name, detail: "data offset \(offset) is past the end of the file")
            }
            guard Int(offset) % alignment == 0 else {
                throw GGUFError.spanOutOfBounds(path: path, tensor: name,
                                                detail: "data offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            tensors.append((info, Int(offset)))
        }
        let (padded, overflow) = reader.offset.addingReportingOverflow(alignment - 1)
        guard !overflow else { throw GGUFError.truncated(path: path, what: "data area", offset: reader.offset) }
        let dataStart = padded / alignment * alignment
        let dataSize = max(mapping.bytes.count - dataStart, 0)
        var placed: [TensorInfo] = []
        for (var info, offset) in tensors {
            let (end, overflow) = offset.addingReportingOverflow(info.dataOffsets.count)
            guard !overflow, end <= dataSize else {
                throw GGUFError.spanOutOfBounds(
                    path: path, tensor: info.name,
                    detail: "its \(info.dataOffsets.count) bytes at data offset \(offset) reach past the end of the "
                        + "\(dataSize)-byte data area (truncated file?)")
            }
            info.dataOffsets = offset..<end
            placed.append(info)
        }
        placed.sort { ($0.dataOffsets.lowerBound, $0.name) < ($1.dataOffsets.lowerBound, $1.name) }
        for (previous, next) in zip(placed, placed.dropFirst())
        where next.dataOffsets.lowerBound < previous.dataOffsets.upperBound && !next.dataOffsets.isEmpty {
            throw GGUFError.overlappingSpans(path: path, first: previous.name, second: next.name)
        }
        return SafetensorsFile(path: path, mapping: mapping, tensors: placed, metadata: metadata,
                               dataStart: dataStart, container: "GGUF")
    }

    /// The entry of one tensor (span 0..<byte count; placed by the caller).
    static func entry(name: String, ne: [Int], type: UInt32, path: String, originalShape: [Int]?) throws -> TensorInfo {
        guard let count = Shape.checkedCount(ne) else {
            throw GGUFError.invalidShape(path: path, tensor: name, detail: "\(ne) overflows")
        }
        var shape = Shape(ne.reversed())
        let dtype: DType, encoding: TensorEncoding, bytes: Int
        if let plain = plainTypes[type] {
            let (size, overflow) = count.multipliedReportingOverflow(by: plain.byteSize)
            guard !overflow else { throw GGUFError.invalidShape(path: path, tensor: name, detail: "\(ne) overflows") }
            (dtype, encoding, bytes) = (plain, .plain, size)
        } else if type == q8_0 {
            guard ne[0] % Dequantization.q8BlockValues == 0 else {
                throw GGUFError.invalidShape(path: path, tensor: name,
                                             detail: "Q8_0 rows of \(ne[0]) values are not whole blocks of 32")
            }
            let (size, overflow) = (count / Dequantization.q8BlockValues)
                .multipliedReportingOverflow(by: Dequantization.q8BlockBytes)
            guard !overflow else { throw GGUFError.invalidShape(path: path, tensor: name, detail: "\(ne) overflows") }
            (dtype, encoding, bytes) = (.int8, .ggmlQ8_0, size)
        } else {
            throw GGUFError.unsupportedType(path: path, tensor: name, type: typeNames[type] ?? "id \(type) (unknown)")
        }
        if let originalShape {
            let original = Shape(originalShape)
            guard originalShape.allSatisfy({ $0 >= 0 }), Shape.checkedCount(originalShape) == count,
                  encoding != .ggmlQ8_0 || originalShape.last == ne[0] else {
                throw GGUFError.invalidShape(path: path, tensor: name,
                                             detail: "comfy.gguf.orig_shape \(originalShape) does not fit \(shape)")
            }
            shape = original
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: 0..<bytes, encoding: encoding)
    }
}

/// A metadata value, kept only as far as zimage reads it.
enum GGUFValue {
    case integer(Int), integers([Int]), string(String), other(String)

    /// The value as `SafetensorsFile.metadata` text (large arrays summarised).
    var text: String? {
        switch self {
        case .integer(let v): String(v)
        case .integers(let v): "\(v)"
        case .string(let s): s
        case .other(let s): s
        }
    }
}

/// Bounds-checked little-endian reads from the mapped header.
struct Cursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    mutating func take(_ count: Int, _ what: String) throws -> Int {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard count >= 0, !overflow, end <= bytes.count else { throw GGUFError.truncated(path: path, what: what, offset: offset) }
        defer { offset = end }
        return offset
    }

    mutating func u32(_ what: String) throws -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, what), as: UInt32.self))
    }

    mutating func u64(_ what: String) throws -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, what), as: UInt64.self))
    }

    /// A count of items of at least `minimumBytesEach` bytes: more than the rest of the file holds is truncation.
    mutating func count(_ what: String, minimumBytesEach: Int) throws -> Int {
        let start = offset
        let value = try u64(what)
        guard value <= UInt64(bytes.count - offset) / UInt64(minimumBytesEach) else {
            throw GGUFError.truncated(path: path, what: "\(what) \(value)", offset: start)
        }
        return Int(value)
    }

    mutating func string(_ what: String) throws -> String {
        let start = offset
        let length = try u64("length of \(what)")
        guard length <= UInt64(bytes.count - offset) else { throw GGUFError.truncated(path: path, what: what, offset: start) }
        let begin = try take(Int(length), what)
        guard let text = String(validating: bytes[begin..<(begin + Int(length))], as: UTF8.self) else {
            throw GGUFError.malformedHeader(path: path, key: what, detail: "not UTF-8")
        }
        return text
    }

    /// Bytes of one scalar of metadata type `type`, nil for strings and arrays.
    static func scalarSize(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 10, 11, 12: 8
        default: nil
        }
    }

    mutating func value(key: String, type: UInt32, depth: Int) throws -> GGUFValue {
        switch type {
        case 8: return .string(try string("value of '\(key)'"))
        case 9:
            guard depth < 2 else { throw GGUFError.malformedHeader(path: path, key: key, detail: "arrays nested too deep") }
            let elementType = try u32("array type of '\(key)'")
            let count = try self.count("array length of '\(key)'", minimumBytesEach: Self.scalarSize(elementType) ?? 8)
            if let size = Self.scalarSize(elementType), elementType != 6, elementType != 12, elementType != 7 {
                let start = try take(count * size, "array '\(key)'")   // count ≤ rest / size: no overflow
                guard count <= 16 else { return .other("[\(count) values]") }
                return .integers(try (0..<count).map { try integer(at: start + $0 * size, type: elementType, key: key) })
            }
            for _ in 0..<count { _ = try value(key: key, type: elementType, depth: depth + 1) }
            return .other("[\(count) values]")
        default:
            guard let size = Self.scalarSize(type) else {
                throw GGUFError.malformedHeader(path: path, key: key, detail: "unknown value type \(type)")
            }
            let start = try take(size, "value of '\(key)'")
            if type == 6 { return .other(String(Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self))))) }
            if type == 12 { return .other(String(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self))))) }
            if type == 7 { return .other(bytes[start] == 0 ? "false" : "true") }
            return .integer(try integer(at: start, type: type, key: key))
        }
    }

    func integer(at start: Int, type: UInt32, key: String) throws -> Int {
        switch type {
        case 0: return Int(bytes[start])
        case 1: return Int(Int8(bitPattern: bytes[start]))
        case 2: return Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt16.self)))
        case 3: return Int(Int16(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: Int16.self)))
        case 4: return Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
        case 5: return Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: Int32.self)))
        case 11: return Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: Int64.self)))
        default:
            let value = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self))
            guard value <= UInt64(Int.max) else {
                throw GGUFError.malformedHeader(path: path, key: key, detail: "integer \(value) is too large")
            }
            return Int(value)
        }
    }
}
