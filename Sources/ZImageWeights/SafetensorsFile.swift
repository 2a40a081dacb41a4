import Foundation
import ZImageTensor

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Equatable, Sendable {
    public var name: String
    public var dtype: DType
    public var shape: Shape
    /// Byte span relative to the start of the data area.
    public var dataOffsets: Range<Int>
    /// How the bytes encode the values (`.plain`: they are `dtype` values).
    public var encoding: TensorEncoding = .plain
    /// Size of the data in bytes.
    public var byteCount: Int { dataOffsets.count }
}

/// A memory-mapped `.safetensors` file with a fully validated header. GGUF files (`GGUFReader`)
/// are read into the same form: a validated header, a data area, spans into it.
///
/// Validation (every failure is a `SafetensorsError`, never a crash): the 8-byte header length lies
/// inside the file, the header is UTF-8 JSON of the documented form, every dtype is known, every
/// shape's element count is non-negative and does not overflow, shape × dtype size equals the
/// byte span, every span lies inside the data area, and no two spans overlap.
/// Format: https://github.com/huggingface/safetensors (README, "Format").
public final class SafetensorsFile {
    /// Limit on the header, as in the reference implementation.
    public static let maximumHeaderLength: UInt64 = 100_000_000

    /// Path of the file.
    public let path: String
    /// Entries in file order (by data offset).
    public let tensors: [TensorInfo]
    /// The `__metadata__` string map.
    public let metadata: [String: String]
    /// Offset of the data area from the start of the file.
    public let dataStart: Int
    /// The container: `"safetensors"`, or `"GGUF"` for files read by `GGUFReader`.
    public let container: String
    private let mapping: MappedFile
    private let index: [String: Int]

    /// Maps and validates `path`.
    public init(path: String) throws {
        let mapping = try MappedFile(path: path)
        let file = mapping.bytes
        guard file.count >= 8 else { throw SafetensorsError.truncated(path: path, fileSize: file.count) }
        let headerLength = file.loadUnaligned(as: UInt64.self).littleEndian
        guard headerLength <= Self.maximumHeaderLength else {
            throw SafetensorsError.headerTooLarge(path: path, headerLength: headerLength)
        }
        guard headerLength <= UInt64(file.count - 8) else {
            throw SafetensorsError.headerLengthOutOfBounds(path: path, headerLength: headerLength, fileSize: file.count)
        }
        let headerBytes = Data(file[8..<(8 + Int(headerLength))])
        guard String(data: headerBytes, encoding: .utf8) != nil else {
            throw SafetensorsError.headerNotUTF8(path: path)
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerBytes)
        } catch {
            throw SafetensorsError.malformedJSON(path: path, detail: Self.describe(error))
        }
        guard let object = json as? [String: Any] else {
            throw SafetensorsError.malformedJSON(path: path, detail: "the top level is not an object")
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = file.count - dataStart
        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw SafetensorsError.invalidMetadata(path: path, detail: "not an object")
                }
                for (key, entry) in map {
                    guard let text = entry as? String else {
                        throw SafetensorsError.invalidMetadata(path: path, detail: "value of '\(key)' is not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            tensors.append(try Self.parseEntry(name: name, value: value, path: path, dataSize: dataSize))
        }
        tensors.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name)
            < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        for (previous, next) in zip(tensors, tensors.dropFirst())
        where next.dataOffsets.lowerBound < previous.dataOffsets.upperBound && !next.dataOffsets.isEmpty {
            throw SafetensorsError.overlappingSpans(path: path, first: previous.name, second: next.name)
        }
        self.path = path
        self.mapping = mapping
        self.tensors = tensors
        self.metadata = metadata
        self.dataStart = dataStart
        self.container = "safetensors"
        self.index = Dictionary(uniqueKeysWithValues: tensors.enumerated().map { ($0.element.name, $0.offset) })
    }

    /// A file whose header another reader validated (GGUF): `tensors` lie inside
    /// `mapping[dataStart...]`, do not overlap and have unique names.
    init(path: String, mapping: MappedFile, tensors: [TensorInfo], metadata: [String: String], dataStart: Int,
         container: String) {
        self.path = path
        self.mapping = mapping
        self.tensors = tensors
        self.metadata = metadata
        self.dataStart = dataStart
        self.container = container
        self.index = Dictionary(tensors.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
    }

    private static func parseEntry(name: String, value: Any, path: String, dataSize: Int) throws -> TensorInfo {
        guard let entry = value as? [String: Any] else {
            throw SafetensorsError.malformedEntry(path: path, tensor: name, detail: "entry is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw SafetensorsError.malformedEntry(path: path, tensor: name, detail: "missing or non-string 'dtype'")
        }
        guard let dtype = DType(safetensorsName: dtypeName) else {
            throw SafetensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        guard let rawShape = entry["shape"] as? [Any] else {
            throw SafetensorsError.malformedEntry(path: path, tensor: name, detail: "missing or non-array 'shape'")
        }
        let dims = rawShape.compactMap(exactInteger)
        guard dims.count == rawShape.count, let count = Shape.checkedCount(dims) else {
            throw SafetensorsError.invalidShape(path: path, tensor: name, shape: "\(rawShape)")
        }
        guard let rawOffsets = entry["data_offsets"] as? [Any], rawOffsets.count == 2,
              let begin = exactInteger(rawOffsets[0]), let end = exactInteger(rawOffsets[1])
        else {
            throw SafetensorsError.malformedEntry(
                path: path, tensor: name, detail: "'data_offsets' must be two non-negative integers")
        }
        guard begin >= 0, end >= begin, end <= dataSize else {
            throw SafetensorsError.spanOutOfBounds(path: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }
        let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw SafetensorsError.invalidShape(path: path, tensor: name, shape: "\(dims)") }
        guard expected == end - begin else {
            throw SafetensorsError.sizeMismatch(path: path, tensor: name, expectedBytes: expected, spanBytes: end - begin)
        }
        return TensorInfo(name: name, dtype: dtype, shape: Shape(dims), dataOffsets: begin..<end)
    }

    /// An integer JSON number (rejects fractions, booleans and values outside `Int`).
    private static func exactInteger(_ value: Any) -> Int? {
        // JSON booleans also arrive as NSNumber; their Objective-C type code is "c".
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
        let text = number.stringValue
        guard !text.contains("."), !text.contains("e"), !text.contains("E") else { return nil }
        return Int(text)
    }

    private static func describe(_ error: any Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }

    /// The entry for `name`, if present.
    public func info(_ name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

    /// The names of all tensors, in file order.
    public var names: [String] { tensors.map(\.name) }

    /// Total bytes of tensor data.
    public var dataByteCount: Int { tensors.reduce(0) { $0 + $1.byteCount } }

    /// The raw bytes of tensor `name`, valid while this file is alive.
    public func bytes(of name: String) throws -> UnsafeRawBufferPointer {
        guard let info = info(name) else { throw SafetensorsError.tensorNotFound(path: path, tensor: name) }
        return bytes(of: info)
    }

    func bytes(of info: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: mapping.bytes[(dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)])
    }

    /// Tensor `name` on `backend`, converted to `dtype` when given. On a host backend a tensor of
    /// the stored dtype borrows the mapped bytes (no copy) when they are aligned.
    public func tensor(_ name: String, on backend: any Backend, as dtype: DType? = nil) throws -> Tensor {
        guard let info = info(name) else { throw SafetensorsError.tensorNotFound(path: path, tensor: name) }
        return try tensor(info, on: backend, as: dtype)
    }

    func tensor(_ info: TensorInfo, on backend: any Backend, as dtype: DType?) throws -> Tensor {
        let raw = bytes(of: info)
        if info.isStorageEncoded {
            // fp8 and GGML blocks are widened to float32 on the host (×scale), then to `dtype`.
            let values = try Dequantization.floats(raw, info: info, path: path)
            return try values.withUnsafeBytes { floats in
                if let dtype, dtype != .float32, let converting = backend as? any ConvertingUpload,
                   let converted = try converting.upload(floats, shape: info.shape, converting: .float32, to: dtype) {
                    return converted
                }
                let widened = try backend.upload(floats, shape: info.shape, dtype: .float32)
                guard let dtype, dtype != .float32 else { return widened }
                return try widened.cast(to: dtype)
            }
        }
        let stored: Tensor
        if let host = backend as? any HostMemoryBorrowing, let base = raw.baseAddress,
           UInt(bitPattern: base) % UInt(info.dtype.byteSize) == 0 {
            stored = host.borrow(address: base, shape: info.shape, dtype: info.dtype, owner: mapping)
        } else if let dtype, let converting = backend as? any ConvertingUpload,
                  let converted = try converting.upload(raw, shape: info.shape, converting: info.dtype, to: dtype) {
            return converted
        } else {
            stored = try backend.upload(raw, shape: info.shape, dtype: info.dtype)
        }
        guard let dtype, dtype != info.dtype else { return stored }
        return try stored.cast(to: dtype)
    }
}
