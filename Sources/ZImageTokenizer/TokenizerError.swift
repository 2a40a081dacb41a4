/// Errors from loading a tokenizer or encoding text.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    case fileNotFound(path: String)
    /// The file is not valid JSON or lacks a field the format requires.
    case malformed(path: String, detail: String)
    /// A well-formed tokenizer.json of a kind this tokenizer does not implement.
    case unsupported(path: String, detail: String)
    /// The input is not valid UTF-8.
    case invalidUTF8(byteOffset: Int)

    public var description: String {
        switch self {
        case .fileNotFound(let path): "\(path): no such file"
        case .malformed(let path, let detail): "\(path): not a valid tokenizer.json: \(detail)"
        case .unsupported(let path, let detail):
            "\(path): unsupported tokenizer (zimage reads byte-level BPE tokenizers of the Qwen2/Qwen3 kind): \(detail)"
        case .invalidUTF8(let offset): "text is not valid UTF-8 (first bad byte at offset \(offset))"
        }
    }
}
