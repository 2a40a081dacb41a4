import Foundation
import ZImageTensor

/// Writes safetensors files (used for fixtures, the demo model and test data).
public enum SafetensorsWriter {
    /// One tensor to write.
    public struct Entry {
        public var name: String
        public var dtype: DType
        public var shape: Shape
        public var bytes: [UInt8]

        public init(name: String, dtype: DType, shape: Shape, bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// A float tensor from float32 values, stored as `dtype`.
        public init(name: String, values: [Float], shape: Shape, dtype: DType = .float32) throws {
            self.init(name: name, dtype: dtype, shape: shape, bytes: try HostConversion.encode(values, as: dtype))
        }
    }

    /// The file's bytes: header (keys sorted, padded with spaces to 8 bytes) then data in order.
    public static func serialize(_ entries: [Entry], metadata: [String: String] = [:]) throws -> [UInt8] {
        var header: [String: Any] = [:]
        var offset = 0
        for entry in entries {
            guard entry.bytes.count == entry.shape.count * entry.dtype.byteSize else {
                throw SafetensorsError.sizeMismatch(path: "<writer>", tensor: entry.name,
                                                    expectedBytes: entry.shape.count * entry.dtype.byteSize,
                                                    spanBytes: entry.bytes.count)
            }
            header[entry.name] = [
                "dtype": entry.dtype.safetensorsName,
                "shape": entry.shape.dims,
                "data_offsets": [offset, offset + entry.bytes.count],
            ] as [String: Any]
            offset += entry.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for entry in entries { out.append(contentsOf: entry.bytes) }
        return out
    }

    /// Writes `entries` to `path`.
    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to path: String) throws {
        try Data(serialize(entries, metadata: metadata)).write(to: URL(fileURLWithPath: path))
    }
}
