import ZImageTensor

/// What is wrong with a safetensors file. Every case names the file and, where there is one,
/// the tensor.
public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    /// Shorter than the 8-byte header length.
    case truncated(path: String, fileSize: Int)
    /// The header length points past the end of the file.
    case headerLengthOutOfBounds(path: String, headerLength: UInt64, fileSize: Int)
    /// The header is larger than any real checkpoint's (100 MB, as the reference library).
    case headerTooLarge(path: String, headerLength: UInt64)
    case headerNotUTF8(path: String)
    case malformedJSON(path: String, detail: String)
    /// A tensor entry lacks a field or has one of the wrong type.
    case malformedEntry(path: String, tensor: String, detail: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    /// Negative extents, or an element count that overflows.
    case invalidShape(path: String, tensor: String, shape: String)
    /// The byte span does not equal shape × dtype size.
    case sizeMismatch(path: String, tensor: String, expectedBytes: Int, spanBytes: Int)
    /// The byte span is reversed or reaches past the end of the data area.
    case spanOutOfBounds(path: String, tensor: String, begin: Int, end: Int, dataSize: Int)
    case overlappingSpans(path: String, first: String, second: String)
    case invalidMetadata(path: String, detail: String)
    case tensorNotFound(path: String, tensor: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "\(path): cannot open: \(reason)"
        case .truncated(let path, let size):
            "\(path): truncated: \(size) bytes, too short for the 8-byte header length of a safetensors file"
        case .headerLengthOutOfBounds(let path, let length, let size):
            "\(path): header length \(length) reaches past the end of the \(size)-byte file (truncated or not safetensors)"
        case .headerTooLarge(let path, let length): "\(path): header length \(length) exceeds the 100 MB limit"
        case .headerNotUTF8(let path): "\(path): header is not valid UTF-8"
        case .malformedJSON(let path, let detail): "\(path): header is not a valid JSON object: \(detail)"
        case .malformedEntry(let path, let tensor, let detail): "\(path): tensor '\(tensor)': \(detail)"
        case .unknownDType(let path, let tensor, let dtype): "\(path): tensor '\(tensor)': unknown dtype '\(dtype)'"
        case .invalidShape(let path, let tensor, let shape):
            "\(path): tensor '\(tensor)': invalid shape \(shape) (negative extent or too many elements)"
        case .sizeMismatch(let path, let tensor, let expected, let span):
            "\(path): tensor '\(tensor)': shape and dtype need \(expected) bytes but its data span holds \(span)"
        case .spanOutOfBounds(let path, let tensor, let begin, let end, let size):
            "\(path): tensor '\(tensor)': data span [\(begin), \(end)) is reversed or outside the \(size)-byte data area"
        case .overlappingSpans(let path, let first, let second):
            "\(path): tensors '\(first)' and '\(second)' have overlapping data spans"
        case .invalidMetadata(let path, let detail): "\(path): invalid __metadata__: \(detail)"
        case .tensorNotFound(let path, let tensor): "\(path): no tensor named '\(tensor)'"
        }
    }
}
