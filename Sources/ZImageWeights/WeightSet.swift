import Foundation
import ZImageTensor

/// The tensors of one checkpoint: a single safetensors or GGUF file or a set of shards listed by a
/// `*.safetensors.index.json` (`{"weight_map": {key: shard file}}`), merged into one key space.
/// Pre-quantised fp8 weights get their scales attached (`Float8Scales`) and are widened at load.
public final class WeightSet {
    /// Where each key lives.
    public let files: [String: SafetensorsFile]
    /// Every tensor, by key.
    public let entries: [String: TensorInfo]
    /// The shard files in name order.
    public let shards: [SafetensorsFile]

    /// Opens one `.safetensors` file or a `.safetensors.index.json` and its shards.
    public convenience init(path: String) throws {
        if path.hasSuffix(".index.json") {
            try self.init(indexPath: path)
        } else if GGUFReader.isGGUF(path) {
            try self.init(shards: [GGUFReader.open(path)])
        } else {
            try self.init(shards: [SafetensorsFile(path: path)])
        }
    }

    /// Merges already opened shards; a key in two shards is an error.
    public init(shards: [SafetensorsFile]) throws {
        var files: [String: SafetensorsFile] = [:]
        var entries: [String: TensorInfo] = [:]
        for shard in shards {
            for info in shard.tensors {
                if let other = files[info.name] {
                    throw WeightLoadingError.duplicateKey(key: info.name, first: other.path, second: shard.path)
                }
                files[info.name] = shard
                entries[info.name] = info
            }
        }
        try Float8Scales.attach(files: &files, entries: &entries, shards: shards)
        self.files = files
        self.entries = entries
        self.shards = shards
    }

    /// A set whose entries are already merged (see `renamingKeys`).
    init(files: [String: SafetensorsFile], entries: [String: TensorInfo], shards: [SafetensorsFile]) {
        self.files = files
        self.entries = entries
        self.shards = shards
    }

    private convenience init(indexPath: String) throws {
        let json = try JSONFile.object(at: indexPath)
        guard let map = json["weight_map"] as? [String: Any] else {
            throw WeightLoadingError.malformedIndex(path: indexPath, detail: "no 'weight_map' object")
        }
        let directory = (indexPath as NSString).deletingLastPathComponent
        var placement: [String: String] = [:]
        for (key, value) in map {
            guard let file = value as? String, !file.contains("/"), !file.hasPrefix(".") else {
                throw WeightLoadingError.malformedIndex(path: indexPath, detail: "'\(key)' maps to an invalid file name")
            }
            placement[key] = file
        }
        var opened: [String: SafetensorsFile] = [:]
        for file in Set(placement.values).sorted() {
            let path = (directory as NSString).appendingPathComponent(file)
            guard FileManager.default.fileExists(atPath: path) else {
                throw WeightLoadingError.malformedIndex(path: indexPath, detail: "shard \(file) is missing")
            }
            opened[file] = try SafetensorsFile(path: path)
        }
        for (key, file) in placement where opened[file]?.info(key) == nil {
            throw WeightLoadingError.keyMissingFromShard(key: key, shard: file)
        }
        try self.init(shards: Set(placement.values).sorted().compactMap { opened[$0] })
    }

    /// All keys, sorted.
    public var keys: [String] { entries.keys.sorted() }

    /// Total bytes of tensor data.
    public var byteCount: Int { entries.values.reduce(0) { $0 + $1.byteCount } }

    /// Tensor `key` on `backend`, optionally converted to `dtype`.
    public func tensor(_ key: String, on backend: any Backend, as dtype: DType? = nil) throws -> Tensor {
        guard let file = files[key], let info = entries[key] else {
            throw SafetensorsError.tensorNotFound(path: shards.first?.path ?? "<empty>", tensor: key)
        }
        return try file.tensor(info, on: backend, as: dtype)
    }

    /// The stored bytes of `key` as the file holds them (valid while `file` lives), for reading
    /// parts of a tensor on the host; nil when the bytes are an encoding (fp8 with scales, GGML
    /// blocks) rather than plain `info.dtype` values.
    public func plainBytes(_ key: String) throws -> (bytes: UnsafeRawBufferPointer, info: TensorInfo, file: SafetensorsFile)? {
        guard let file = files[key], let info = entries[key] else {
            throw SafetensorsError.tensorNotFound(path: shards.first?.path ?? "<empty>", tensor: key)
        }
        guard !info.isStorageEncoded else { return nil }
        return (file.bytes(of: info), info, file)
    }
}

/// Reads JSON files with typed errors.
enum JSONFile {
    static func object(at path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WeightLoadingError.fileNotFound(path: path)
        }
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw WeightLoadingError.malformedJSON(path: path, detail: "the top level is not an object")
            }
            return object
        } catch let error as WeightLoadingError {
            throw error
        } catch {
            let ns = error as NSError
            throw WeightLoadingError.malformedJSON(
                path: path, detail: (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription)
        }
    }
}
