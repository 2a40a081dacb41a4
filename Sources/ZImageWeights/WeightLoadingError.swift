import ZImageTensor

/// Errors from reading checkpoints and model directories. Each names the file or key at fault.
public enum WeightLoadingError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    case malformedJSON(path: String, detail: String)
    /// A shard index is not of the `{"weight_map": {key: file}}` form or names a file that is absent.
    case malformedIndex(path: String, detail: String)
    /// The index says `key` lives in `shard`, which does not hold it.
    case keyMissingFromShard(key: String, shard: String)
    /// Two shards hold the same key.
    case duplicateKey(key: String, first: String, second: String)
    /// A component folder has no safetensors weights.
    case noWeights(directory: String)
    /// The model directory lacks a component the pipeline needs.
    case missingComponent(name: String, directory: String)
    /// Keys the model needs that the checkpoint lacks.
    case missingKeys(component: String, keys: [String])
    /// Keys the checkpoint holds that the model does not know.
    case unexpectedKeys(component: String, keys: [String])
    case shapeMismatch(component: String, key: String, expected: Shape, found: Shape)
    case dtypeNotLoadable(component: String, key: String, dtype: DType)
    /// A quantised tensor whose scales or blocks do not fit it.
    case quantization(path: String, key: String, detail: String)
    /// A quantisation format this build does not read (ComfyUI's `nvfp4`, a GGUF `Q4_K`, …).
    case unsupportedQuantization(path: String, key: String, format: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "\(path): no such file"
        case .malformedJSON(let path, let detail): "\(path): invalid JSON: \(detail)"
        case .malformedIndex(let path, let detail): "\(path): invalid shard index: \(detail)"
        case .keyMissingFromShard(let key, let shard): "the index places '\(key)' in \(shard), which lacks it"
        case .duplicateKey(let key, let first, let second): "'\(key)' appears in both \(first) and \(second)"
        case .noWeights(let directory): "\(directory): no .safetensors weights found"
        case .missingComponent(let name, let directory): "\(directory): missing component '\(name)'"
        case .missingKeys(let component, let keys):
            "\(component): checkpoint lacks \(keys.count) parameter(s): \(Self.list(keys))"
        case .unexpectedKeys(let component, let keys):
            "\(component): checkpoint has \(keys.count) unexpected tensor(s): \(Self.list(keys))"
        case .shapeMismatch(let component, let key, let expected, let found):
            "\(component): '\(key)' has shape \(found), expected \(expected)"
        case .dtypeNotLoadable(let component, let key, let dtype): "\(component): '\(key)' has unsupported dtype \(dtype)"
        case .quantization(let path, let key, let detail): "\(path): '\(key)': \(detail)"
        case .unsupportedQuantization(let path, let key, let format):
            "\(path): '\(key)' is quantised as \(format), which zimage does not read "
                + "(supported: plain, scaled and comfy_quant fp8; GGUF F32, F16, BF16, Q8_0)"
        }
    }

    private static func list(_ keys: [String]) -> String {
        keys.count <= 8 ? keys.joined(separator: ", ") : keys.prefix(8).joined(separator: ", ") + ", …"
    }
}
